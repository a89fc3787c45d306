"""The Vendure permissions are written down in three places a merchant or a reviewer reads
(``VendureConnector.meta.scopes``, manifest.yaml, the connector's README): they must agree,
and the README's table must name every Admin API field the connector calls. Whether those
permissions are really enough is checked against a real server in
tests/peer/test_vendure_permissions.py."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.manifest import load_manifest
from connectors.vendure import VendureConnector, queries

README = Path(queries.__file__).with_name("README.md").read_text()
#: fields any logged-in administrator may call (Vendure's ``Public``/``Authenticated``)
UNGATED = {"login", "activeChannel", "me"}


def _step_two() -> list[str]:
    """The permissions the installation steps tell the merchant to grant, in order."""
    found = re.search(r"create a role with the\s+permissions (.*?)\(what each", README, re.S)
    assert found, "step 2 of the README no longer lists the permissions"
    return re.findall(r"`(\w+)`", found.group(1))


def _table() -> dict[str, set[str]]:
    """The README's permission table: permission -> the Admin API fields it is for."""
    section = README.split("## Admin API permissions", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", section, re.M)
    return {perm: set(re.findall(r"`(\w+)`", fields)) for perm, fields in rows}


def _root_fields(document: str) -> set[str]:
    """The top-level fields of the operation in ``document`` (fragments left out)."""
    body = document[re.search(r"\b(?:query|mutation)\s+\w+", document).end():]
    fields, braces, parens = set(), 0, 0
    for token in re.findall(r"[{}()]|\.\.\.|\w+", body):
        if token in "{}":
            braces += 1 if token == "{" else -1
        elif token in "()":
            parens += 1 if token == "(" else -1
        elif braces == 1 and parens == 0:
            fields.add(token)
    return fields


def _called_fields() -> set[str]:
    documents = [v for k, v in vars(queries).items()  # the bare fragments are no operation
                 if k.isupper() and isinstance(v, str) and re.search(r"\b(query|mutation) ", v)]
    return set().union(*(_root_fields(d) for d in documents))


def test_root_fields_are_read_from_the_operation_only() -> None:
    assert _root_fields(queries.TAX_SETUP) == {"activeChannel", "taxRates", "promotionConditions"}
    assert _root_fields(queries.PRODUCTS) == {"products"}  # not the fragment's fields


def test_readme_and_manifest_name_exactly_the_connector_scopes() -> None:
    scopes = list(VendureConnector.meta.scopes)
    assert _step_two() == scopes
    assert list(_table()) == scopes
    assert list(load_manifest()["platforms"]["vendure"]["scopes"]) == scopes


def test_readme_table_covers_every_admin_api_field_the_connector_calls() -> None:
    documented = set().union(*_table().values())
    assert _called_fields() - UNGATED == documented
