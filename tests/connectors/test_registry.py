"""Registry: built-ins, unknown keys, duplicate keys, entry points; no Flask/DB imports."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

import connectors
from connectors.base import Connector, ConnectorMeta, Credentials, header
from connectors.errors import UnknownConnector

ROOT = Path(connectors.__file__).parent


def test_unknown_key_raises_unknown_connector() -> None:
    with pytest.raises(UnknownConnector):
        connectors.get("nope")
    with pytest.raises(KeyError):  # also a KeyError, as the plugin may catch that
        connectors.get("nope")


def test_builtins_are_registered_under_their_meta_key() -> None:
    keys = connectors.available()
    assert "generic" in keys
    for key in keys:
        cls = connectors.get(key)
        assert issubclass(cls, Connector) and cls.meta.key == key


def _dummy(key: str) -> type[Connector]:
    class Dummy(Connector):
        meta = ConnectorMeta(key, "Dummy", (), (), frozenset({"webhooks"}))

        def verify_webhook(self, headers, raw_body, *, now=None):
            return None

        def parse_webhook(self, headers, raw_body):
            raise NotImplementedError

    return Dummy


def test_duplicate_key_with_another_class_is_refused() -> None:
    generic = connectors.get("generic")
    with pytest.raises(ValueError):
        connectors.register(_dummy(generic.meta.key))


def test_entry_points_are_loaded_once(monkeypatch) -> None:
    dummy = _dummy("dummy-ep")
    calls = []

    def fake_entry_points(group: str):
        calls.append(group)
        return [SimpleNamespace(name="dummy-ep", load=lambda: dummy)]

    monkeypatch.setattr(connectors, "entry_points", fake_entry_points)
    monkeypatch.setattr(connectors, "_loaded", False)
    monkeypatch.setattr(connectors, "_registry", dict(connectors._registry))
    assert connectors.get("dummy-ep") is dummy
    assert "dummy-ep" in connectors.available()
    assert calls == ["shopkeeper.connectors"]


def test_broken_entry_point_is_logged_not_fatal(monkeypatch, caplog) -> None:
    def boom():
        raise ImportError("missing dependency")

    monkeypatch.setattr(
        connectors, "entry_points", lambda group: [SimpleNamespace(name="bad", load=boom)]
    )
    monkeypatch.setattr(connectors, "_loaded", False)
    monkeypatch.setattr(connectors, "_registry", dict(connectors._registry))
    assert "generic" in connectors.available()
    assert "connectors.entry_point_failed" in caplog.text


def test_unknown_capability_rejected() -> None:
    with pytest.raises(ValueError):
        ConnectorMeta("x", "X", (), (), frozenset({"teleport"}))


def test_header_lookup_is_case_insensitive() -> None:
    from werkzeug.datastructures import Headers

    assert header({"x-shopify-topic": "a"}, "X-Shopify-Topic") == "a"
    assert header(Headers({"X-Shopify-Topic": "b"}), "x-shopify-topic") == "b"
    assert header({}, "X-Missing") is None


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("s.example", access_token="shpat_SECRET", webhook_secret="whsec_X")
    assert "SECRET" not in repr(creds) and "whsec_X" not in repr(creds)


def test_connectors_import_no_flask_or_sqlalchemy() -> None:
    banned = {"flask", "flask_sqlalchemy", "sqlalchemy", "plugin", "werkzeug"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [f"{path}:{n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []


def test_every_connector_folder_is_a_builtin() -> None:
    """A folder's ``@register`` runs only once the module is imported: one missing from
    ``BUILTINS`` passes its own tests (they import it) but is unknown to the app."""
    folders = {f"connectors.{p.name}" for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    missing = sorted(folders - set(connectors.BUILTINS))
    assert missing == [], f"add {missing} to BUILTINS in connectors/__init__.py"
