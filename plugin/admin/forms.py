"""HTML form fields <-> the settings document (``section.field`` names, one rule a line)."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from marshmallow import Schema

from plugin.admin.schemas import (
    CURRENCY_FIGURES,
    OffersSchema,
    OriginsSchema,
    PrivacySchema,
    RecommendationsSchema,
    RepurchaseOverrideSchema,
    RuleSchema,
    ShopSchema,
    SubprofilesSchema,
    WidgetsSchema,
)

SECTIONS = {
    "widgets": WidgetsSchema,
    "recommendations": RecommendationsSchema,
    "subprofiles": SubprofilesSchema,
    "offers": OffersSchema,
    "privacy": PrivacySchema,
    "origins": OriginsSchema,
    "shop": ShopSchema,
}
BOOLEANS = {"for_you_enabled", "subprofiles_enabled", "offers_enabled", "prompt_enabled",
            "consent_required"}
#: How the page names each field: its label there begins with this, and messages about
#: the field (a conflict, a value still refused) name it so.
LABELS = {
    "shop.timezone": "Time zone",
    "widgets.for_you_enabled": "“For you” recommendations",
    "widgets.subprofiles_enabled": "“Who are you shopping for?” widget",
    "widgets.offers_enabled": "Cart offers",
    "widgets.placements": "Placements",
    "recommendations.sources": "Sources",
    "recommendations.diversity": "Diversity",
    "recommendations.holdout_share": "Control group share",
    "merchandising": "Merchandising rules",
    "repurchase_overrides": "Repurchase overrides",
    "subprofiles.prompt_enabled": "Asking after an out-of-profile purchase",
    "subprofiles.threshold": "Detection threshold",
    "subprofiles.cooldown_days": "Days between asks",
    "offers.max_discount_pct": "Max discount",
    "offers.margin_floor_pct": "Margin floor",
    "offers.default_margin_pct": "Margin when a product's cost is unknown",
    "offers.daily_budget": "Daily budget",
    "offers.monthly_budget": "Monthly budget",
    "offers.frequency_cap_days": "Days between offers to a shopper",
    "offers.min_cart_value": "Minimum cart value",
    "offers.free_shipping_threshold": "Free shipping from",
    "offers.excluded_products": "Excluded products",
    "offers.excluded_categories": "Excluded collections / categories",
    "offers.currency_guardrails": "Other currencies",
    "privacy.consent_required": "Shopper consent",
    "privacy.retention_days": "Retention days",
    "origins.allowed_origins": "Allowed storefront origins",
    "origins.admin_origin": "Admin origin",
}
#: What the page's label says after the name (plain text; the template adds markup).
DETAILS = {
    "shop.timezone": " (an IANA name such as America/Los_Angeles or Europe/Paris): the "
                     "dashboard's days start at midnight here",
    "widgets.subprofiles_enabled": " (sub-profiles for shoppers; its asking is set under "
                                   "Sub-profiles)",
    "recommendations.sources": ", tried in this order:",
    "widgets.placements": ":",
    "recommendations.diversity": " (0 = most relevant only, 1 = most varied)",
    "recommendations.holdout_share": " (0\u20130.5), drawn separately for recommendations and "
                                     "for offers",
    "subprofiles.prompt_enabled": " (only while the “Who are you shopping for?” widget "
                                  "is on)",
    "subprofiles.threshold": " (higher asks less often)",
    "subprofiles.cooldown_days": ": a shopper is asked at most once in this many days",
    "offers.max_discount_pct": " (%)",
    "offers.margin_floor_pct": " (%)",
    "offers.default_margin_pct": " (%)",
    "offers.frequency_cap_days": ": at most one offer per shopper in this many days",
    "offers.free_shipping_threshold": " (empty: none)",
    "offers.excluded_products": " (one id a line)",
    "offers.excluded_categories": " (one a line)",
    "privacy.consent_required": ": required before storing events or personalizing",
    "privacy.retention_days": ": shopper events, carts and offer reminders are kept this "
                              "many days",
    "origins.allowed_origins": " (one a line, e.g. https://shop.example)",
    "origins.admin_origin": ": your admin's origin (may frame this page)",
}

#: Keys set in the settings JSON only (no input on the page), which the page flags when
#: the stored value is refused: how it names each, and what serving does meanwhile.
JSON_ONLY = {
    "offers.stages": ("Offer kinds by funnel stage", "no offer is made until it is corrected"),
    "offers.cart_url": ("Cart URL of nudges' offer links",
                        "no nudge is sent until it is corrected"),
    "offers.nudge_webhook_url": ("Nudge webhook URL", "no nudge is sent until it is corrected"),
}

#: The offers section's table of figures per other currency (``_currency_rows``).
CURRENCY_ROWS = "offers.currency_guardrails"
LIST_FIELDS = {"placements", "sources", "excluded_products", "excluded_categories",
               "allowed_origins"}
#: Text boxes whose entries are names that may hold a comma ("Bags, Purses & Wallets"):
#: one entry a line, as their label says; the others (ids, origins) also split on commas.
ONE_A_LINE = {"excluded_categories"}


def _lines(text: str, *, commas: bool = True) -> list[str]:
    """A text box's entries: one a line (and, with ``commas``, comma-separated too)."""
    text = (text or "").replace(",", "\n") if commas else (text or "")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def parse_form(form: Mapping[str, str], getlist: Callable[[str], list[str]],
               stored_lines: Mapping[str, Iterable[Any]] | None = None,
               ) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Form -> settings document plus parse errors (validation itself is the schema's).

    Each fieldset posts a hidden ``_section`` marker; only marked sections are read, so an
    unchecked box means "off" there and an absent section means "unchanged".
    ``stored_lines``: the text boxes' stored lines the schema refuses (shown in them): a
    line posted as the page shows one is that line as stored, not parsed (a save keeps it,
    still flagged, instead of refusing the form over a line the merchant left alone).
    """
    doc: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    present = set(getlist("_section"))
    for section, schema in SECTIONS.items():
        if section not in present:
            continue
        values: dict[str, Any] = {}
        for name in schema().fields:
            key = f"{section}.{name}"
            if key == CURRENCY_ROWS:
                rows = _currency_rows(form)
                if rows is not None:  # no row on the page: the stored figures stay
                    values[name] = rows
            elif name in BOOLEANS:
                values[name] = form.get(key) in ("on", "true", "1")
            elif name in ("placements", "sources"):
                values[name] = getlist(key)
            elif name in LIST_FIELDS:
                values[name] = _lines(form.get(key, ""), commas=name not in ONE_A_LINE)
            elif key in form:
                raw = form.get(key, "").strip()
                values[name] = None if raw == "" and name in (
                    "free_shipping_threshold", "admin_origin") else raw
        doc[section] = values
    stored = stored_lines or {}
    if "merchandising" in form:
        doc["merchandising"] = _rules(form.get("merchandising", ""), errors,
                                      _as_shown(stored.get("merchandising", ()), rule_line))
    if "repurchase_overrides" in form:
        doc["repurchase_overrides"] = _overrides(
            form.get("repurchase_overrides", ""), errors,
            _as_shown(stored.get("repurchase_overrides", ()), override_line))
    return doc, errors


def _as_shown(lines: Iterable[Any], text: Callable[[Any], str]) -> dict[str, list[Any]]:
    """Stored lines by their text in the box (a text shown twice: each in turn)."""
    out: dict[str, list[Any]] = {}
    for line in lines:
        out.setdefault(text(line), []).append(line)
    return out


_NOT_STORED = object()


def _stored_line(words: list[str], shown: dict[str, list[Any]]) -> Any:
    """The stored line the page showed as ``words``, once (``_NOT_STORED``: none)."""
    same = shown.get(" ".join(words))
    return copy.deepcopy(same.pop(0)) if same else _NOT_STORED


def _currency_rows(form: Mapping[str, str]) -> dict[str, dict[str, str]] | None:
    """The "Other currencies" table: ``offers.currency_guardrails.EUR.daily_budget`` ...,
    one row a currency. A row left empty removes that currency's figures; None when the
    page had no row at all."""
    prefix = CURRENCY_ROWS + "."
    codes = sorted({key[len(prefix):].partition(".")[0] for key in form
                    if key.startswith(prefix)})
    if not codes:
        return None
    rows = {}
    for code in codes:
        row = {name: form.get(f"{prefix}{code}.{name}", "").strip()
               for name in CURRENCY_FIGURES}
        if any(row.values()):
            rows[code] = {name: value for name, value in row.items() if value}
    return rows


def _is_number(word: str) -> bool:
    try:
        return math.isfinite(float(word))
    except ValueError:
        return False


def _check(schema: Schema, row: dict[str, Any], key: str, n: int,
           errors: dict[str, list[str]]) -> None:
    """Validate one line now, so every bad line is reported in one save (with its real line
    number: blank lines are skipped, so list positions would not match the textarea)."""
    for name, messages in sorted(schema.validate(row).items()):
        label = "" if name == "_schema" else f"{name}: "
        errors.setdefault(key, []).extend(f"line {n}: {label}{m}" for m in messages)


#: A boost's last word written with a decimal comma ("1,5"): not a number to Python, so it
#: was read as the end of the value, and the rule saved with weight 1 under another value.
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")


def _rules(text: str, errors: dict[str, list[str]],
           shown: dict[str, list[Any]]) -> list[Any]:
    """``ACTION FIELD VALUE [WEIGHT]``: the last word is a boost's weight only if it is a
    number, so a multi-word value ("boost category Home Decor") is read whole."""
    rules: list[Any] = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        stored = _stored_line(words, shown)
        if stored is not _NOT_STORED:
            rules.append(stored)
            continue
        if len(words) < 3:
            errors.setdefault("merchandising", []).append(
                f"line {n}: write 'pin|boost|exclude product|tag|category|vendor VALUE [WEIGHT]'")
            continue
        if words[0] == "boost" and len(words) > 3 and _DECIMAL_COMMA.fullmatch(words[-1]):
            errors.setdefault("merchandising", []).append(
                f"line {n}: weight: write {words[-1]} with a decimal point "
                f"({words[-1].replace(',', '.')}); if it is part of the value, end the "
                "line with a weight (1)")
            continue
        rule = {"action": words[0], "field": words[1], "value": " ".join(words[2:])}
        if words[0] == "boost" and len(words) > 3 and _is_number(words[-1]):
            rule["value"], rule["weight"] = " ".join(words[2:-1]), words[-1]
        _check(RuleSchema(), rule, "merchandising", n, errors)
        rules.append(rule)
    return rules


def _overrides(text: str, errors: dict[str, list[str]],
               shown: dict[str, list[Any]]) -> list[Any]:
    rows: list[Any] = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        stored = _stored_line(words, shown)
        if stored is not _NOT_STORED:
            rows.append(stored)
            continue
        if len(words) < 3 or (words[-1] not in ("durable", "consumable") and len(words) < 4):
            errors.setdefault("repurchase_overrides", []).append(
                f"line {n}: write 'product|category VALUE durable' or "
                "'product|category VALUE consumable DAYS'")
            continue
        if words[-2] == "consumable":
            row = {"field": words[0], "kind": "consumable",
                   "value": " ".join(words[1:-2]), "cycle_days": words[-1]}
        else:
            row = {"field": words[0], "kind": words[-1], "value": " ".join(words[1:-1])}
        _check(RepurchaseOverrideSchema(), row, "repurchase_overrides", n, errors)
        rows.append(row)
    return rows


def rules_text(rules: list[Any]) -> str:
    return "\n".join(rule_line(r) for r in rules)


def overrides_text(rows: list[Any]) -> str:
    return "\n".join(override_line(r) for r in rows)


def rule_line(rule: Any) -> str:
    """A merchandising rule as its line in the text box; a stored one the schema refuses
    too, as near its grammar as it goes (one line, never empty), so the merchant sees it
    with its error and fixes or deletes it."""
    if not isinstance(rule, Mapping):
        return _line([], rule)
    words = [rule.get("action"), rule.get("field"), rule.get("value")]
    if rule.get("action") == "boost" and rule.get("weight") is not None:
        words.append(rule["weight"])
    return _line(words, rule)


def override_line(row: Any) -> str:
    """A repurchase override as its line in the text box (a refused one as ``rule_line``)."""
    if not isinstance(row, Mapping):
        return _line([], row)
    words = [row.get("field"), row.get("value"), row.get("kind")]
    if row.get("kind") == "consumable":
        words.append(row.get("cycle_days"))
    return _line(words, row)


def _line(words: list[Any], raw: Any) -> str:
    """``words`` as one line of text (numbers as typed: 2, not 2.0); JSON of ``raw`` when
    they say nothing, so no stored line is shown empty, and lost by the next save."""
    text = " ".join(f"{w:g}" if isinstance(w, float) else str(w) for w in words
                    if w is not None and str(w).strip())
    if not text.split():
        text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    return " ".join(text.split()) or json.dumps(raw)
