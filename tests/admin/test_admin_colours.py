"""The admin's colour custom properties meet WCAG contrast in both schemes, read from the
stylesheet itself (no browser: the chart and axe browser tests cover the rendered page)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.widgets.helpers import contrast

CSS = (Path(__file__).resolve().parents[2] / "plugin/static/admin/admin.css").read_text()


def _block(selector: str) -> dict[str, str]:
    """The custom properties of the first rule whose selector is ``selector``."""
    block = re.search(re.escape(selector) + r"\s*{([^}]*)}", CSS)[1]
    return dict(re.findall(r"(--sk-[\w-]+):\s*(#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b)", block))


#: the system's dark scheme, unless the Saleor Dashboard shows a light one
SYSTEM_DARK = ':root:not([data-sk-theme="light"])'
#: the Saleor Dashboard's dark theme, whatever the system's
DASHBOARD_DARK = ':root[data-sk-theme="dark"]'


def _scheme(dark: bool) -> dict[str, str]:
    """The custom properties of light (first ``:root``) or dark (light, overridden)."""
    return {**_block(":root"), **(_block(SYSTEM_DARK) if dark else {})}


def _rgb(hex_colour: str) -> str:
    if len(hex_colour) == 4:  # #fff
        hex_colour = "#" + "".join(c * 2 for c in hex_colour[1:])
    return "rgb({}, {}, {})".format(*(int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)))


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
@pytest.mark.parametrize(("name", "minimum"), [
    ("--sk-fg", 4.5), ("--sk-muted", 4.5),
    # a text field's edge is all that shows where to type (WCAG 1.4.11: 3:1)
    ("--sk-field-line", 3.0),
])
def test_admin_colours_keep_their_contrast_against_the_page(dark, name, minimum):
    colours = _scheme(dark)
    assert contrast(_rgb(colours[name]), _rgb(colours["--sk-bg"])) >= minimum


def test_the_dark_scheme_overrides_the_light_one():
    assert _scheme(dark=True)["--sk-bg"] != _scheme(dark=False)["--sk-bg"]


def test_the_saleor_dashboards_dark_theme_is_the_systems_dark_scheme():
    """The dark block is written twice (a media query cannot share a rule with a
    selector): the copy the Saleor Dashboard's theme switches on must not drift."""
    assert _block(DASHBOARD_DARK) == _block(SYSTEM_DARK)
    assert len(_block(DASHBOARD_DARK)) >= 10
