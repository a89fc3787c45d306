"""Small, strict converters shared by connectors: JSON bodies, Decimal money, UTC datetimes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import ValidationError, validate

from connectors.errors import InvalidPayload

__all__ = ["MAX_AMOUNT", "MAX_JSON_DEPTH", "FullMatch", "as_object", "check_amount",
           "currency_codes", "decode_json", "holds_nul", "load_json_object", "parse_datetime",
           "scan_json", "to_decimal", "too_deep", "unstorable", "utc_from_timestamp"]


class FullMatch(validate.Regexp):
    """``validate.Regexp`` that must match the whole value.

    ``Regexp`` uses ``re.match``, where ``$`` also matches before a final newline, so
    ``"GBP\\n"`` passed ``^[A-Z]{3}$``. The pattern is kept as written (``^...$``) because
    the OpenAPI document publishes it, and JSON Schema patterns have no ``\\Z``.
    """

    def __call__(self, value: str | bytes) -> str | bytes:
        if self.regex.fullmatch(value) is None:  # type: ignore[arg-type]
            raise ValidationError(self._format_error(value))
        return value


def as_object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: for the parts of an answer no
    schema shapes (a GraphQL answer's ``errors`` entries and ``extensions``), which a proxy
    or a broken server may fill with anything."""
    return value if isinstance(value, dict) else {}


def currency_codes(values: Any) -> frozenset[str] | None:
    """The upper-case currency codes in a platform's list of them; None when ``values`` is
    no list of strings (a garbled answer, which must not read as "sells nothing"). An
    entry that is no three-letter code (a platform's own non-ISO one) is left out: the
    settings keep no figures under it."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        return None
    return frozenset(v.upper() for v in values
                     if len(v) == 3 and v.isascii() and v.isalpha())


#: The largest amount a record may carry. The database's money columns (numeric(14,4))
#: hold ten times this, so order totals built from such amounts stay in range; a larger
#: one would be acknowledged and then fail on apply on PostgreSQL until dead.
MAX_AMOUNT = Decimal(10**9)


#: Deepest nesting a JSON body may have. Real payloads stay under ten levels; a body
#: nested hundreds deep made the decoder (or a recursive walk) raise RecursionError: a 500.
MAX_JSON_DEPTH = 64


def unstorable(text: str) -> bool:
    """NUL, which PostgreSQL text cannot hold, or a lone surrogate (JSON's ``"\\ud800"``
    decodes to one), which no UTF-8 encodes: every database write of it raised."""
    if "\x00" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def scan_json(value: Any, limit: int = MAX_JSON_DEPTH) -> tuple[bool, bool]:
    """(nested deeper than ``limit``, holds a NUL or a lone surrogate) for a decoded JSON
    value, in one iterative walk (keys included): recursion is what made deep bodies a
    500."""
    deep = nul = False
    stack = [(value, 1)]
    while stack and not (deep and nul):
        node, depth = stack.pop()
        if isinstance(node, str):
            nul = nul or unstorable(node)
        elif isinstance(node, dict | list):
            deep = deep or depth > limit
            if isinstance(node, dict):
                stack.extend((k, depth) for k in node)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict)
                                                  else node))
    return deep, nul


def holds_nul(value: Any) -> bool:
    """True if any string in a decoded JSON value (keys included) holds U+0000, which
    PostgreSQL text cannot store, or a lone surrogate, which no database can."""
    return scan_json(value)[1]


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if containers in a decoded JSON value nest deeper than ``limit``."""
    return scan_json(value, limit)[0]


def _loads(raw: bytes | str) -> tuple[Any, bool, bool]:
    """Decoded value, too deep, holds NUL or a lone surrogate (``ValueError`` for what is
    not JSON)."""
    try:
        data = json.loads(raw)
    except RecursionError:
        return None, True, False
    return (data, *scan_json(data))


def decode_json(raw: bytes | str) -> Any:
    """``json.loads`` that refuses, as ``ValueError``, what would otherwise recurse too deep."""
    data, deep, _ = _loads(raw)
    if deep:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return data


def load_json_object(raw_body: bytes) -> dict[str, Any]:
    """Decode a webhook body that must be a JSON object, else ``InvalidPayload``."""
    try:
        data, deep, nul = _loads(raw_body)
        if deep:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidPayload("body is not valid JSON", {"_body": [str(exc)]}) from None
    if not isinstance(data, dict):
        raise InvalidPayload("body must be a JSON object", {"_body": ["expected an object"]})
    if nul:  # refused at receipt: applying it would fail (on PostgreSQL, or on both) forever
        raise InvalidPayload("body holds a NUL character or a lone surrogate",
                             {"_body": ["NUL and lone surrogates (\\ud800-\\udfff) are not "
                                        "allowed"]})
    return data


def check_amount(amount: Decimal, field: str) -> Decimal:
    """``amount`` if it is within ``MAX_AMOUNT`` either way, else ``InvalidPayload``."""
    if abs(amount) > MAX_AMOUNT:
        raise InvalidPayload(f"{field} is out of range", {field: [f"at most {MAX_AMOUNT}"]})
    return amount


def to_decimal(value: Any, *, field: str = "amount", bounded: bool = True) -> Decimal:
    """Money from a decimal string or int (never via float, which loses cents).

    ``bounded=False`` leaves the range check to the caller (minor units, scaled after).
    """
    if isinstance(value, bool) or value is None:
        raise InvalidPayload(f"{field} is not a number", {field: ["not a number"]})
    try:
        amount = Decimal(value if isinstance(value, str | int) else str(value))
    except (InvalidOperation, ValueError):
        raise InvalidPayload(f"{field} is not a number", {field: ["not a number"]}) from None
    if not amount.is_finite():
        raise InvalidPayload(f"{field} is not finite", {field: ["not a finite number"]})
    return check_amount(amount, field) if bounded else amount


def parse_datetime(value: Any, *, field: str = "updated_at") -> datetime:
    """ISO-8601 (with ``Z`` or offset; naive means UTC) to an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{field} is not a datetime", {field: ["not an ISO-8601 string"]})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPayload(
            f"{field} is not a datetime", {field: ["not an ISO-8601 string"]}
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 at +01:00, year 9999 at -05:00: no UTC datetime exists
        raise InvalidPayload(f"{field} is out of range", {field: ["out of range"]}) from None


def utc_from_timestamp(seconds: float) -> datetime:
    """An aware UTC datetime from unix seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC)
