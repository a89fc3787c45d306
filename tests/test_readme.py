"""The README documents every setting, and its two commands exist in the Makefile."""

from __future__ import annotations

from pathlib import Path

from plugin.config import Config

ROOT = Path(__file__).resolve().parents[1]


def test_readme_lists_every_setting_with_its_prefix():
    readme = (ROOT / "README.md").read_text()
    settings = [k for k in vars(Config) if k.isupper()]
    missing = [k for k in settings if f"`SHOPKEEPER_{k}`" not in readme]
    assert missing == []


def test_readme_commands_are_make_targets():
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in readme
        assert f"\n{target}:" in makefile
    assert "make test" in (ROOT / ".ci/run").read_text()
