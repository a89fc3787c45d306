"""Dependencies point inward: the engine and the connectors know nothing of the web app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("package", "forbidden"), [
    ("plugin/engine", {"flask", "flask_sqlalchemy", "sqlalchemy", "connectors", "werkzeug"}),
    ("connectors", {"flask", "flask_sqlalchemy", "sqlalchemy", "plugin", "werkzeug"}),
])
def test_layer_does_not_import_outer_layers(package: str, forbidden: set[str]):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no python files under {package}"
    offenders = {}
    for f in files:
        if "node_modules" in f.parts:
            continue
        bad = {n for n in _imports(f) if n.split(".")[0] in forbidden}
        if bad:
            offenders[str(f.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_engine_may_only_import_engine_modules_from_plugin():
    for f in (ROOT / "plugin/engine").rglob("*.py"):
        for name in _imports(f):
            if name.split(".")[0] == "plugin":
                assert name == "plugin.engine" or name.startswith("plugin.engine."), (f, name)


def _settings_writes(path: Path) -> list[int]:
    """Lines assigning to an object's ``settings`` (``shop.settings = ...``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Attribute) and target.attr == "settings"]


def test_shop_settings_are_written_only_through_update_settings():
    # a JSON dict replaced whole from an earlier read loses another writer's update
    # (plugin.shops.update_settings re-reads and writes with the revision it read)
    offenders = {str(f.relative_to(ROOT)): lines for f in sorted((ROOT / "plugin").rglob("*.py"))
                 if (lines := _settings_writes(f))}
    assert offenders == {}


def test_the_settings_write_check_sees_an_assignment(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("shop.settings = {}\nshop.settings_rev = 1\nx.settings['a'] = 1\n")
    assert _settings_writes(probe) == [1]
