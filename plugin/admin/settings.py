"""Read, validate and save a shop's settings; every change is audit-logged (names only)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import current_app
from marshmallow import ValidationError

import connectors
from plugin import crypto, shops
from plugin.admin.forms import CURRENCY_ROWS, JSON_ONLY, LABELS
from plugin.admin.schemas import SettingsSchema, ShownSchema, normalise_origin, safe_origin
from plugin.currency import catalogue_currency
from plugin.errors import BadRequest, Conflict, NotFound
from plugin.extensions import db
from plugin.localtime import DEFAULT_TIMEZONE
from plugin.models import Shop
from plugin.offers import platform as offer_platform
from plugin.offers.service import withdraw_unaccepted
from plugin.offers.settings import guardrails_from

#: Where each form section lives in ``Shop.settings`` (flat keys read by serving code).
FLAT = {
    "widgets": ("for_you_enabled", "subprofiles_enabled", "offers_enabled", "placements"),
    "recommendations": ("sources", "diversity", "holdout_share"),
    "privacy": ("consent_required", "retention_days"),
    "origins": ("allowed_origins", "admin_origin"),
    "shop": ("timezone",),
}
NESTED = ("subprofiles", "offers")
LISTS = ("merchandising", "repurchase_overrides")
#: a key the form's save removes (``_edits``)
_REMOVED = object()


@dataclass(frozen=True)
class Shown:
    """What the settings page showed: the revision (``Shop.settings_rev``) it was rendered
    at and a fingerprint of each field's value. Revisions' contents are not kept, so the
    fingerprints are what tells a field changed since from one left alone."""

    rev: int
    seen: dict[str, str]

    @property
    def seen_text(self) -> str:
        """``seen`` for the page's hidden field."""
        return json.dumps(self.seen, sort_keys=True, separators=(",", ":"))


class EditConflict(Conflict):
    """Fields the merchant changed that another tab or the worker also changed since the
    page was shown; nothing was saved. ``kept``: the merchant's other edits, to show again."""

    def __init__(self, stored: dict[str, Any], kept: dict[str, Any]):
        changes = [_change_text(name, value) for name, value in stored.items()]
        super().__init__(f"{_joined(changes)} while you were editing; nothing was saved: "
                         "check and save again.",
                         {name: [f"Changed to {_value_text(name, value)} while you were "
                                 "editing."] for name, value in stored.items()})
        self.stored, self.kept = stored, kept


def current(shop: Shop) -> dict[str, Any]:
    """The settings as form sections, defaults filled in."""
    return _sections(shop.settings or {})


def shown(shop: Shop) -> Shown:
    """The page's revision and field fingerprints for the settings as stored now."""
    return Shown(shop.settings_rev or 0,
                 {name: _fingerprint(v) for name, v in _fields(current(shop)).items()})


def shown_in(form: Mapping[str, Any]) -> Shown | None:
    """What a submitted page showed (None: a page rendered before it carried that, which
    saves as it always did). A damaged value is a ``BadRequest``."""
    try:
        loaded = ShownSchema().load({k: form[k] for k in ShownSchema().fields if k in form})
    except ValidationError as err:
        raise BadRequest("The form is damaged; reload the page.", err.messages) from None
    if loaded["settings_rev"] is None:
        return None
    return Shown(loaded["settings_rev"], loaded["settings_seen"])


def stored_problems(shop: Shop) -> dict[str, list[str]]:
    """What the schema refuses in the settings as stored (saved before a rule existed, or
    written around the page), by dotted field name: the page shows each at its field."""
    stored = shop.settings or {}
    return {**_own_currency_problems(shop, stored), **_read(stored)[1]}


def refused_lines(shop: Shop) -> dict[str, list[Any]]:
    """The stored lines of each text-box list (merchandising rules, repurchase overrides)
    the schema refuses, as stored: the page shows them in their boxes, and a line posted
    back as shown is one of these, kept as stored (``forms.parse_form``)."""
    return {name: list(lines.values()) for name, lines in _read(shop.settings or {})[2].items()}


def offers_paused_note(shop: Shop) -> str | None:
    """What the admin says while offers are on but serving refuses a stored guardrail
    (``Guardrails.refused``: it makes no offer rather than apply it): which, and where."""
    from plugin.offers.service import guardrails_for

    if not (shop.settings or {}).get("offers_enabled"):
        return None
    refused = guardrails_for(shop).refused
    if not refused:
        return None
    names = [LABELS.get(f"offers.{key}") or _json_label(f"offers.{key}")
             or f"offers.{key} (set in the settings JSON)" for key in refused]
    return (f"Offers are paused: the stored {_joined(names)} "
            f"{'is' if len(names) == 1 else 'are'} outside what these settings allow. "
            "Correct it in the offer guardrails and save to make offers again.")


def still_refused(shop: Shop) -> str | None:
    """After a save: the stored values it left as they were though the schema refuses
    them (``_left_as_stored``), named for the merchant, who corrects them on the page."""
    names = sorted({_unit(name) for name in stored_problems(shop)})
    if not names:
        return None
    labels = [f"Lines of {LABELS[name]}" if name in LISTS else LABELS.get(name)
              or _json_label(name) or _row_label(name) for name in names]
    one = len(labels) == 1 and names[0] not in LISTS
    return (f"{_joined(labels)} {'is' if one else 'are'} still as stored before, "
            "which these settings no longer allow: correct the fields marked below.")


def _json_label(name: str) -> str | None:
    """A key set in the settings JSON only (``JSON_ONLY``) as the page names it."""
    return f"{JSON_ONLY[name][0]} (set in the settings JSON)" if name in JSON_ONLY else None


def _row_label(name: str) -> str:
    """A currency row (``offers.currency_guardrails.EUR``) as the page names it."""
    code = name.removeprefix(f"{CURRENCY_ROWS}.")
    return f"The {code} row of Other currencies" if code != name else name


def _sections(stored: Mapping[str, Any]) -> dict[str, Any]:
    """``stored`` settings as form sections, defaults filled in (a refused value as
    stored, so the page shows it with its error instead of failing; a list's refused
    line at its place in the list)."""
    return _read(stored)[0]


#: Loads of a stored document ``_read`` tries, taking out what was refused each time.
_READ_ROUNDS = 4


def _read(stored: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]],
                                              dict[str, dict[int, Any]]]:
    """``stored`` as form sections, the schema's errors in it by dotted field name, and
    each list's refused lines by their place in the stored list.

    A refused field (a refused line of a list) is taken out and the rest loaded again,
    then the field (the line, at its place) is put back as stored for display, so a save
    of the page loses none of them; fields refused only once others were taken out (a
    rule across them) keep the first error said about them."""
    raw: dict[str, Any] = {}
    for section, keys in FLAT.items():
        raw[section] = {k: stored[k] for k in keys if k in stored}
    for section in NESTED:
        raw[section] = dict(stored.get(section) or {})
    for section in LISTS:
        raw[section] = list(stored.get(section) or [])
    raw = _jsonable(raw)
    rows = raw["offers"].get("currency_guardrails")
    if isinstance(rows, dict):
        raw["offers"]["currency_guardrails"] = upper_codes(rows)
    errors: dict[str, list[str]] = {}
    taken: dict[str, dict[str, Any]] = {}
    lines: dict[str, dict[int, Any]] = {}
    for _ in range(_READ_ROUNDS):
        try:
            values = SettingsSchema().dump(SettingsSchema().load(raw))
            break
        except ValidationError as err:
            for name, texts in _flatten(err.messages).items():
                errors.setdefault(name, texts)
            _take_out(raw, err.messages, taken, lines)
    else:
        values = SettingsSchema().dump(SettingsSchema().load({}))
    for section, fields in taken.items():
        values[section] = {**values.get(section, {}), **fields}
    for section, refused in lines.items():
        values[section] = _with_lines(values.get(section) or [], refused)
    return values, errors, lines


def _take_out(raw: dict[str, Any], messages: Any, taken: dict[str, dict[str, Any]],
              lines: dict[str, dict[int, Any]]) -> None:
    """Remove what ``messages`` refuses from ``raw``: a section's refused fields (kept in
    ``taken`` to show), a list's refused lines (in ``lines``, by their stored place; a
    list refused whole, every line), else the whole section (its defaults)."""
    for section, sub in (messages.items() if isinstance(messages, dict) else ()):
        value = raw.get(section)
        refused = set(sub) if isinstance(sub, dict) else set()
        if isinstance(value, dict) and refused and refused <= set(value):
            taken.setdefault(section, {}).update({k: value.pop(k) for k in refused})
        elif isinstance(value, list) and refused and all(isinstance(i, int) for i in refused):
            raw[section] = [line for i, line in enumerate(value) if i not in refused]
            _set_aside(lines, section, {i: value[i] for i in refused if i < len(value)})
        elif section in raw:
            gone = raw.pop(section)
            if isinstance(gone, dict):
                taken.setdefault(section, {}).update(gone)
            elif isinstance(gone, list):
                _set_aside(lines, section, dict(enumerate(gone)))


def _set_aside(lines: dict[str, dict[int, Any]], section: str, refused: dict[int, Any]) -> None:
    """Note ``refused`` (lines by their place in what is left of the list) by their place
    in the stored list, which the lines set aside before are still part of."""
    aside = lines.setdefault(section, {})
    if refused:
        left = [i for i in range(len(aside) + max(refused) + 1) if i not in aside]
        aside.update({left[i]: line for i, line in refused.items()})


def _with_lines(valid: list[Any], refused: Mapping[int, Any]) -> list[Any]:
    """``valid`` lines with the ``refused`` ones put back at their places."""
    rest = iter(valid)
    return [refused[i] if i in refused else next(rest)
            for i in range(len(valid) + len(refused))]


def upper_codes(rows: dict[str, Any]) -> dict[str, Any]:
    """Currency rows keyed by upper-case code (``eur`` stored by an API write or an older
    release is the page's ``EUR`` row); codes given twice that way stay as stored, for
    the schema to say so."""
    upper = {str(code).strip().upper(): row for code, row in rows.items()}
    return upper if len(upper) == len(rows) else rows


def other_currencies(shop: Shop, values: Mapping[str, Any]) -> list[str]:
    """The rows of the offers' "Other currencies" table: each currency the platform sells
    besides the shop's own, and each one with figures in ``values`` (stored, or typed
    in a refused save), so none is hidden. None where the platform converts the shop's
    amounts itself: a cart in another currency is then offered under the shop's own
    figures, and a row's figures would never apply (``converted_currencies`` says so)."""
    if connectors.get(shop.platform).converts_amounts:
        return []
    own = catalogue_currency(shop.id)
    rows = (values.get("offers") or {}).get("currency_guardrails")
    rows = rows if isinstance(rows, dict) else {}  # a stored non-mapping: its error shows
    return sorted({c for c in offer_platform.sold(shop) if c != own}
                  | {str(c).upper() for c in rows})


def converted_currencies(shop: Shop) -> list[str]:
    """The other currencies a platform that converts the shop's amounts sells in: the
    page names them under the figures that also apply to them."""
    if not connectors.get(shop.platform).converts_amounts:
        return []
    own = catalogue_currency(shop.id)
    return [c for c in offer_platform.sold(shop) if c != own]


def problems(shop: Shop, submitted: Mapping[str, Any]) -> dict[str, list[str]]:
    """What ``save`` would refuse, by dotted field name, without storing anything."""
    return _checked(shop, submitted).errors


@dataclass(frozen=True)
class _Checked:
    """``_checked``'s answer."""

    #: the schema's load (None: refused)
    data: dict[str, Any] | None
    #: the stored refused values left as they were (``_left_as_stored``: kept, not loaded)
    kept: set[str]
    #: each list's stored refused lines left as they were, by place (``_kept_lines``)
    lines: dict[str, dict[int, Any]]
    errors: dict[str, list[str]]


def _checked(shop: Shop, submitted: Mapping[str, Any]) -> _Checked:
    """The schema's load of the settings ``submitted`` means, what it leaves as stored,
    and its problems."""
    shown = current(shop)
    merged = _merged(shown, submitted)
    kept = _left_as_stored(shop, shown, merged)
    lines = _kept_lines(shop, merged)
    merged = _without(merged, kept)
    for section, refused in lines.items():
        merged[section] = [line for i, line in enumerate(merged[section]) if i not in refused]
    try:
        data, errors = SettingsSchema().load(merged), {}
    except ValidationError as err:
        data, errors = None, _flatten(err.messages)
    return _Checked(data, kept, lines, {**_own_currency_problems(shop, merged), **errors})


def _kept_lines(shop: Shop, merged: Mapping[str, Any]) -> dict[str, dict[int, Any]]:
    """The lines of ``merged``'s lists that are stored lines the schema refuses, as the
    page showed them, by place: a save keeps them as stored (still flagged), as it does a
    field's refused value; a line the merchant changed is checked like any other."""
    out: dict[str, dict[int, Any]] = {}
    for section, stored in _read(shop.settings or {})[2].items():
        left = list(stored.values())
        given = merged.get(section)
        for i, line in enumerate(given if isinstance(given, list) else ()):
            same = next((j for j, old in enumerate(left)
                         if _as_typed(old) == _as_typed(line)), None)
            if same is not None:
                out.setdefault(section, {})[i] = left.pop(same)
    return out


def _left_as_stored(shop: Shop, shown: dict[str, Any], merged: dict[str, Any]) -> set[str]:
    """The stored values the schema refuses (``stored_problems``) that ``merged`` has as
    the page showed them, by field or currency row: a save leaves them as stored (still
    flagged) instead of failing over a value the merchant did not touch. A list's refused
    line is not among them: the page shows the list without it."""
    units = {_unit(name) for name in stored_problems(shop)}
    return {unit for unit in units if unit.partition(".")[0] not in LISTS
            and _at(shown, unit) is not _REMOVED
            and _as_typed(_at(shown, unit)) == _as_typed(_at(merged, unit))}


def _unit(name: str) -> str:
    """What a problem's dotted field name is kept as: a field, or a whole currency row."""
    parts = name.split(".")
    return ".".join(parts[:3]) if parts[:2] == ["offers", "currency_guardrails"] else name


def _at(doc: Mapping[str, Any], name: str) -> Any:
    """The value at a dotted field name of form sections (``_REMOVED``: none)."""
    value: Any = doc
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _REMOVED
        value = value[part]
    return value


def _as_typed(value: Any) -> Any:
    """A value as the page shows it and its form posts it back (text; empty: none)."""
    if isinstance(value, Mapping):
        return {str(k): _as_typed(v) for k, v in value.items() if _as_typed(v) != ""}
    if isinstance(value, list | tuple):
        return [_as_typed(v) for v in value]
    if value is None or value is _REMOVED:
        return ""
    return value if isinstance(value, bool) else str(value).strip()


def _without(doc: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """``doc`` with the values at ``names`` taken out (the schema loads the rest)."""
    doc = copy.deepcopy(doc)
    for name in names:
        *path, last = name.split(".")
        parent = _at(doc, ".".join(path))
        if isinstance(parent, dict):
            parent.pop(last, None)
    return doc


def _keep_stored(before: dict[str, Any], after: dict[str, Any], names: set[str]) -> None:
    """Put the values ``_left_as_stored`` kept back into ``after`` as ``before`` has them."""
    for name in names:
        section, _, rest = name.partition(".")
        if section in FLAT:
            source, target, key = before, after, rest
        else:
            source, target = before.get(section), after.setdefault(section, {})
            key, _, code = rest.partition(".")
            if code:  # one currency row of the stored mapping (written upper-case)
                rows = source.get(key) if isinstance(source, dict) else None
                source = upper_codes(rows) if isinstance(rows, dict) else {}
                target, key = target.setdefault(key, {}), code
        if isinstance(source, dict) and key in source:
            target[key] = copy.deepcopy(source[key])
        else:
            target.pop(key, None)


def _own_currency_problems(shop: Shop, doc: Mapping[str, Any]) -> dict[str, list[str]]:
    """Figures in ``offers.currency_guardrails`` under the shop's own currency would
    replace its own for carts in it: refused (the figures above are in it)."""
    own = catalogue_currency(shop.id)
    rows = (doc.get("offers") or {}).get("currency_guardrails")
    if not own or not isinstance(rows, dict):
        return {}
    return {f"offers.currency_guardrails.{own}": [
        f"{own} is the shop's own currency: its figures are the ones above (empty this "
        "row)."] for code in rows if str(code).strip().upper() == own}


def save(shop: Shop, submitted: Mapping[str, Any],
         page: Shown | None = None) -> dict[str, Any]:
    """Validate every section (raises ``ValidationError`` with dotted field names), then
    store and audit. Sections not submitted stay as they are; keys of other features
    inside a section (e.g. offer stages) are kept. Only what the form changed is written,
    onto the settings as they are now: a key the worker stored since the page read them
    (the platform's currencies, training's mark) is neither reverted nor dropped.

    With ``page`` (what the page showed) a field the merchant left as shown is not written
    at all, so a value another tab or the worker stored meanwhile stays; one they changed
    that was also changed meanwhile raises ``EditConflict`` and nothing is stored (a field
    the page has no fingerprint of is written as without ``page``)."""
    checked = _checked(shop, submitted)  # absent sections unchanged
    data, kept, lines = checked.data, checked.kept, checked.lines
    if checked.errors or data is None:
        raise ValidationError(checked.errors)
    before = copy.deepcopy(shop.settings or {})
    after = copy.deepcopy(before)
    for section, keys in FLAT.items():
        for k in keys:
            after[k] = data[section][k]
    after["allowed_origins"] = [normalise_origin(o) for o in after["allowed_origins"]]
    if after.get("admin_origin"):
        after["admin_origin"] = normalise_origin(after["admin_origin"])
    _keep_zone_unchosen(before, after)
    for section in NESTED:
        after[section] = {**(before.get(section) or {}), **_jsonable(data[section])}
    for section in LISTS:
        after[section] = _with_lines(_jsonable(data[section]), lines.get(section, {}))
    _keep_stored(before, after, kept)
    # Serving reads the product exclusions as a plain list (of the rules it may apply).
    after["exclude_products"] = sorted({r["value"] for r in data["merchandising"]
                                        if r["action"] == "exclude" and r["field"] == "product"})
    edits = _edits(before, after)
    change = partial(_apply, edits)
    if page is not None:
        mine = _fields(SettingsSchema().dump(data))
        mine.update({section: _with_lines(mine[section], lines.get(section, {}))
                     for section in LISTS})
        touched = {name for name in mine if name.partition(".")[0] in submitted
                   and name not in kept and _fingerprint(mine[name]) != page.seen.get(name)}
        edits = {path: v for path, v in edits.items() if _field_of(path) in touched}
        unchanged = before if shop.settings_rev == page.rev else None
        change = partial(_apply_unless_changed, edits,
                         partial(_check_conflicts, page, touched, mine, unchanged))
    update = shops.update_settings(shop.id, change)
    if update.changed:
        shops.audit(shop.id, "settings.changed", keys=update.changed)
    # offers quoted under other guardrails must not become discounts (compared as parsed,
    # so a save that only writes the defaults out withdraws nothing)
    if _guardrails_changed(update.before.get("offers"), update.after.get("offers")):
        withdrawn = withdraw_unaccepted(shop.id)
        if withdrawn:
            shops.audit(shop.id, "offers.withdrawn", count=withdrawn, why="guardrails changed")
    db.session.commit()
    _forget_api_caches()
    return current(shop)


def _merged(shown: dict[str, Any], submitted: Mapping[str, Any]) -> dict[str, Any]:
    """The settings the form's save means: ``submitted`` sections over the ``shown`` ones.

    An offers section without the "Other currencies" table (no row on the page) keeps the
    stored figures, and a currency row keeps that currency's product costs: the page has
    no input for them (they are set in the JSON)."""
    merged = {**shown, **_jsonable(dict(submitted))}
    offers = merged.get("offers")
    if "offers" in submitted and isinstance(offers, dict):
        stored = (shown.get("offers") or {}).get("currency_guardrails") or {}
        merged["offers"] = {**offers, "currency_guardrails": _with_stored_costs(
            offers.get("currency_guardrails", stored), stored)}
    return merged


def _with_stored_costs(rows: Any, stored: dict[str, Any]) -> Any:
    """Each currency row with the product costs stored for it, unless it gives its own."""
    if not isinstance(rows, dict):
        return rows  # the schema says what is wrong with it
    out = {}
    for code, row in rows.items():
        costs = (stored.get(str(code).strip().upper()) or {}).get("product_costs")
        out[code] = {"product_costs": costs, **row} if isinstance(row, dict) and costs \
            else row
    return out


def _edits(before: dict[str, Any], after: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """What the form changed, by key path (a nested section's own keys one by one, so
    another feature's key inside it is not written back); ``_REMOVED`` for a key dropped."""
    edits: dict[tuple[str, ...], Any] = {}
    for key in set(before) | set(after):
        old, new = before.get(key, _REMOVED), after.get(key, _REMOVED)
        if old == new:
            continue
        section = {} if old is _REMOVED else old
        if key in NESTED and isinstance(section, dict) and isinstance(new, dict):
            edits.update({(key, k): v for k, v in new.items() if section.get(k, _REMOVED) != v})
        else:
            edits[(key,)] = new
    return edits


def _apply(edits: dict[tuple[str, ...], Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as stored now, with the form's ``edits`` made (for ``update_settings``)."""
    for path, value in edits.items():
        if len(path) == 2:
            section = settings.get(path[0])
            settings[path[0]] = {**(section if isinstance(section, dict) else {}),
                                 path[1]: value}
        elif value is _REMOVED:
            settings.pop(path[0], None)
        else:
            settings[path[0]] = value
    return settings


def _apply_unless_changed(edits: dict[tuple[str, ...], Any],
                          check: Callable[[dict[str, Any]], None],
                          settings: dict[str, Any]) -> dict[str, Any]:
    """``_apply`` after ``check`` found no field changed both here and meanwhile (it runs
    on the settings as they are when written, so a write in between is seen too)."""
    check(settings)
    return _apply(edits, settings)


def _check_conflicts(page: Shown, touched: set[str], mine: dict[str, Any],
                     unchanged: dict[str, Any] | None, settings: dict[str, Any]) -> None:
    """Raise ``EditConflict`` for the fields the merchant changed whose stored value is
    no longer the one the page showed (and not what the merchant typed either)."""
    if settings == unchanged:  # still the revision the page was rendered at
        return
    now = _fields(_sections(settings))
    stored = {name: now[name] for name in sorted(touched) if name in page.seen
              and now[name] != mine[name] and _fingerprint(now[name]) != page.seen[name]}
    if stored:
        raise EditConflict(stored, {name: mine[name] for name in touched
                                    if name not in stored})


def _fields(sections: Mapping[str, Any]) -> dict[str, Any]:
    """Form sections (as ``current`` gives them) by form field name, origins normalised
    as ``save`` stores them."""
    out = {f"{section}.{k}": v for section in (*FLAT, *NESTED)
           for k, v in (sections.get(section) or {}).items()}
    out.update({name: sections.get(name) for name in LISTS})
    out["origins.allowed_origins"] = [safe_origin(o) or o
                                      for o in out.get("origins.allowed_origins") or []]
    admin_origin = out.get("origins.admin_origin")
    out["origins.admin_origin"] = safe_origin(admin_origin) or admin_origin
    return out


#: the form field each stored top-level key comes from (nested keys: ``section.key``)
_FIELD_OF_KEY = {**{k: f"{section}.{k}" for section, keys in FLAT.items() for k in keys},
                 **{name: name for name in LISTS}, "exclude_products": "merchandising"}


def _field_of(path: tuple[str, ...]) -> str | None:
    return ".".join(path) if len(path) == 2 else _FIELD_OF_KEY.get(path[0])


def _fingerprint(value: Any) -> str:
    """A short digest of a field's value as the form shows it."""
    text = json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _value_text(name: str, value: Any) -> str:
    """A stored value as the merchant reads it in a message."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == []:
        return "nothing"
    if name in LISTS:
        return f"{len(value)} line{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):  # currency rows: their codes
        return ", ".join(sorted(str(code) for code in value)) or "nothing"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    if name.endswith("_pct"):
        return text.removesuffix(".00") + " %"
    return text


def _change_text(name: str, value: Any) -> str:
    if name in LISTS or isinstance(value, dict):
        return f"{LABELS.get(name, name)} were changed (now {_value_text(name, value)})"
    return f"{LABELS.get(name, name)} was changed to {_value_text(name, value)}"


def _joined(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _keep_zone_unchosen(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Saving the form with the default zone shown is not choosing it: leave it unset so
    an install can still fill in the platform's zone (Shopify's ``ianaTimezone``)."""
    if "timezone" not in before and after.get("timezone") == DEFAULT_TIMEZONE:
        after.pop("timezone", None)


def _guardrails_changed(before: Any, after: Any) -> bool:
    try:
        return guardrails_from(before) != guardrails_from(after)
    except (TypeError, ValueError, ArithmeticError):  # an unreadable old value: it changed
        return True


def rotate_widget_key(shop: Shop) -> str:
    """A new public widget key; the old one stops working at once."""
    shop.widget_key = crypto.new_token("pk", 18)
    shops.audit(shop.id, "keys.widget_key_rotated")
    db.session.commit()
    _forget_api_caches()
    return shop.widget_key


def owns_webhook_secret(shop: Shop) -> bool:
    """Whether Shopkeeper issued the shop's webhook secret (generic, Vendure). A platform
    installed through its own handshake signs with its app secret (Shopify) or its keys
    (Saleor): replacing the stored secret would only break every delivery."""
    import connectors

    return "install" not in connectors.get(shop.platform).meta.capabilities


def rotate_webhook_secret(shop: Shop) -> str:
    """A new webhook secret. The storefront must switch to it (the generic protocol accepts
    several signatures at once, so a store can send both during its own rollout)."""
    if not owns_webhook_secret(shop):
        raise BadRequest(f"{shop.platform.capitalize()} signs its webhooks itself; there is "
                         "no Shopkeeper secret to rotate.")
    creds = shops.credentials_for(shop)
    secret = crypto.new_token("whsec", 24)
    shops.save_credentials(shop, replace(creds, webhook_secret=secret))
    shops.audit(shop.id, "keys.webhook_secret_rotated")
    db.session.commit()
    _forget_api_caches()  # customer tokens signed with the old secret stop working here
    return secret


def customer_token_secret(shop: Shop) -> str | None:
    """The secret the storefront signs customer tokens with; created (and audited) the
    first time a shop installed before it existed needs it. None without installation."""
    try:
        secret, created = shops.ensure_customer_token_secret(shop)
    except NotFound:
        return None
    if created:
        db.session.commit()
        _forget_api_caches()
    return secret


def rotate_customer_token_secret(shop: Shop, *, keep_previous: bool = True) -> str:
    """A new customer-token secret. The old one keeps verifying tokens for
    ``CUSTOMER_TOKEN_SECRET_GRACE_HOURS``, so customers stay recognised while the
    storefront's backend switches over; ``keep_previous=False`` (a leaked secret) refuses it
    at once in this process, in other web workers within ``API_SHOP_CACHE_SECONDS``. (A
    generic shop's webhook secret still verifies tokens until it is rotated too.)"""
    hours = float(current_app.config["CUSTOMER_TOKEN_SECRET_GRACE_HOURS"]) \
        if keep_previous else 0.0
    creds = shops.with_new_customer_token_secret(shops.credentials_for(shop),
                                                 timedelta(hours=max(hours, 0.0)))
    shops.save_credentials(shop, creds)
    shops.audit(shop.id, "keys.customer_token_secret_rotated", grace_hours=max(hours, 0.0))
    db.session.commit()
    _forget_api_caches()
    return creds.extra[shops.CUSTOMER_TOKEN_SECRET]


def previous_customer_token_secret_until(shop: Shop) -> datetime | None:
    """Until when the secret the last rotation replaced still verifies tokens (None: it
    does not)."""
    try:
        previous = shops.previous_customer_token_secret(shops.credentials_for(shop))
    except NotFound:
        return None
    return None if previous is None else previous[1]


def end_customer_token_grace(shop: Shop) -> None:
    """Stop accepting the replaced customer-token secret now (it leaked, or the storefront
    has switched over)."""
    shops.save_credentials(shop, shops.without_previous_customer_token_secret(
        shops.credentials_for(shop)))
    shops.audit(shop.id, "keys.customer_token_secret_grace_ended")
    db.session.commit()
    _forget_api_caches()


def _forget_api_caches() -> None:
    """This process forgets cached shops and verified tokens at once; other web workers
    do within ``API_SHOP_CACHE_SECONDS``."""
    from plugin.api.access import forget_shops
    from plugin.api.identity import forget_verified_tokens

    forget_shops()
    forget_verified_tokens()


def _jsonable(value: Any) -> Any:
    """Decimals to strings so the JSON column and the schema agree."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _flatten(messages: Any, prefix: str = "", where: str = "") -> dict[str, list[str]]:
    """Dotted field names for the form; list positions fold onto their field as "line N: "
    (and a rule's own fields as "weight: "), since one textarea holds the whole list."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, sub in messages.items():
            if isinstance(key, int) or str(key).isdigit():
                found = _flatten(sub, prefix, f"{where}line {int(key) + 1}: ")
            elif where:
                found = _flatten(sub, prefix, where if key == "_schema" else f"{where}{key}: ")
            else:
                found = _flatten(sub, f"{prefix}.{key}" if prefix else str(key))
            for name, texts in found.items():
                out.setdefault(name, []).extend(texts)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_schema"] = [where + m for m in messages]
    else:
        out[prefix or "_schema"] = [where + str(messages)]
    return out
