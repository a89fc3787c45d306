"""Settings validation: one marshmallow schema per section, clear field errors."""

from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from plugin.fields import BoundedDecimal
from plugin.localtime import DEFAULT_TIMEZONE, zone_named
from plugin.offers.settings import (
    CURRENCY_LIMITS,
    LIMITS,
    PRODUCT_COST_LIMIT,
    TEXT_LIMIT,
    currency_problems,
    served_problem,
)
from plugin.urls import host_ascii

PLACEMENTS = ("for_you", "product", "cart", "reorder")
SOURCES = ("repurchase", "personal", "itemknn", "collaborative", "content", "segments",
           "trending")
RULE_ACTIONS = ("pin", "boost", "exclude")
RULE_FIELDS = ("product", "tag", "category", "vendor")


#: One free-text entry (a rule's value, an excluded id): not empty, fits the column.
TEXT = [validate.Length(min=1, error="Empty."),
        validate.Length(max=TEXT_LIMIT, error="Longer than {max} characters.")]


class _Section(Schema):
    class Meta:
        unknown = EXCLUDE


class WidgetsSchema(_Section):
    for_you_enabled = fields.Boolean(load_default=True)
    subprofiles_enabled = fields.Boolean(load_default=False)
    offers_enabled = fields.Boolean(load_default=False)
    placements = fields.List(fields.String(validate=validate.OneOf(PLACEMENTS)),
                             load_default=list(PLACEMENTS))


class RecommendationsSchema(_Section):
    sources = fields.List(fields.String(validate=validate.OneOf(SOURCES)),
                          load_default=list(SOURCES),
                          validate=validate.Length(min=1, error="Pick at least one source."))
    diversity = fields.Float(load_default=0.3, validate=validate.Range(0, 1))
    holdout_share = fields.Float(load_default=0.1, validate=validate.Range(0, 0.5))


class RuleSchema(_Section):
    action = fields.String(required=True, validate=validate.OneOf(RULE_ACTIONS))
    field = fields.String(required=True, validate=validate.OneOf(RULE_FIELDS))
    value = fields.String(required=True, validate=TEXT)
    weight = fields.Float(load_default=1.0, validate=validate.Range(0, 10))


class RepurchaseOverrideSchema(_Section):
    field = fields.String(required=True, validate=validate.OneOf(("product", "category")))
    value = fields.String(required=True, validate=TEXT)
    kind = fields.String(required=True, validate=validate.OneOf(("durable", "consumable")))
    cycle_days = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(1, 730))

    @validates_schema
    def _cycle(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["kind"] == "consumable" and not data.get("cycle_days"):
            raise ValidationError("A consumable needs a repurchase cycle in days.",
                                  "cycle_days")


class SubprofilesSchema(_Section):
    prompt_enabled = fields.Boolean(load_default=True)
    # 0.6: precision 0.83 / recall 0.76 on the grafted-shopper benchmark (bench/subprofiles.py)
    threshold = fields.Float(load_default=0.6, validate=validate.Range(0.05, 0.99))
    cooldown_days = fields.Integer(load_default=14, validate=validate.Range(0, 365))


def _amount(default: int | None, low: int, high: int) -> BoundedDecimal:
    """A money or percent field: two places, and "Must be between" even for 1e30."""
    return BoundedDecimal(load_default=default, allow_none=default is None, places=2,
                          as_string=True, minimum=low, maximum=high)


#: The figures a currency row of the offers section takes on the page (``product_costs``
#: has no field there: it is set in the settings JSON, and a save keeps it).
CURRENCY_FIGURES = ("daily_budget", "monthly_budget", "min_cart_value", "shipping_cost",
                    "free_shipping_threshold")
#: The figures an offer in another currency cannot do without (``offers.settings``).
CURRENCY_REQUIRED = ("daily_budget", "monthly_budget", "min_cart_value")


class _Costs(fields.Dict):
    """``{product id: cost}`` whose errors are keyed by the product alone
    (``...product_costs.p1``), not by marshmallow's ``key``/``value`` of the pair."""

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dict[str, Any]:
        try:
            return super()._deserialize(value, attr, data, **kwargs)
        except ValidationError as err:
            if not isinstance(err.messages, dict):
                raise
            raise ValidationError({
                product: [*parts.get("key", []), *parts.get("value", [])]
                if isinstance(parts, dict) else parts
                for product, parts in err.messages.items()}) from None


class CurrencyGuardrailsSchema(_Section):
    """One other currency's money guardrails, in that currency (we keep no exchange rate)."""

    daily_budget = _amount(None, 0, CURRENCY_LIMITS["daily_budget"])
    monthly_budget = _amount(None, 0, CURRENCY_LIMITS["monthly_budget"])
    min_cart_value = _amount(None, 0, CURRENCY_LIMITS["min_cart_value"])
    shipping_cost = _amount(None, 0, CURRENCY_LIMITS["shipping_cost"])
    free_shipping_threshold = _amount(None, 0, CURRENCY_LIMITS["free_shipping_threshold"])
    product_costs = _Costs(keys=fields.String(validate=TEXT),
                           values=BoundedDecimal(places=2, as_string=True, minimum=0,
                                                 maximum=PRODUCT_COST_LIMIT))

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _figures(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        """Each missing figure of the three gets its own message (a row has three inputs),
        beside any other figure's error."""
        missing = {k: ["Needed for offers in this currency (or empty the whole row)."]
                   for k in CURRENCY_REQUIRED if original.get(k) in (None, "")}
        if missing:
            raise ValidationError(missing)
        problems = currency_problems(data)
        if problems:
            raise ValidationError({k: [text] for k, text in problems.items()})


class CurrencyGuardrailsField(fields.Field):
    """``{ISO 4217 code: figures}``: codes upper-cased, errors by code then figure, so the
    page puts each next to its input (``offers.currency_guardrails.EUR.daily_budget``)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> dict[str, dict[str, Any]]:
        if not isinstance(value, dict):
            raise ValidationError("Not a mapping of currency codes to figures.")
        out: dict[str, dict[str, Any]] = {}
        errors: dict[str, Any] = {}
        for raw_code, row in value.items():
            code = str(raw_code).strip().upper()
            if not _CURRENCY.fullmatch(code):
                errors[str(raw_code)] = [f"{raw_code!r} is not a currency code (ISO 4217: "
                                         "three letters, such as EUR)."]
            elif code in out:
                errors[code] = [f"{code} is given twice."]
            elif not isinstance(row, dict):
                errors[code] = ["Not a mapping of figures."]
            else:
                try:  # an input left empty is a figure not given
                    out[code] = CurrencyGuardrailsSchema().load(
                        {k: v for k, v in row.items() if v not in (None, "")})
                except ValidationError as err:
                    errors[code] = err.messages
        if errors:
            raise ValidationError(errors)
        return out

    def _serialize(self, value: Any, attr: str | None, obj: Any,
                   **kwargs: Any) -> dict[str, dict[str, Any]] | None:
        if value is None:
            return None
        return {code: CurrencyGuardrailsSchema().dump(row) for code, row in value.items()}


_CURRENCY = re.compile(r"[A-Z]{3}")


class _Served(fields.Field):
    """A key of the offers settings set in the settings JSON only (no input on the page),
    checked by serving's own rule (``offers.settings.served_problem``): a document the page
    saves cannot hold one serving refuses, and a stored one is flagged on the page."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        problem = served_problem(attr or "", value)
        if problem:
            raise ValidationError(problem)
        return value


class OffersSchema(_Section):
    """The offer guardrails; their ranges are serving's too (``LIMITS``)."""

    max_discount_pct = _amount(15, *LIMITS["max_discount_pct"])
    margin_floor_pct = _amount(20, *LIMITS["margin_floor_pct"])
    default_margin_pct = _amount(40, *LIMITS["default_margin_pct"])
    daily_budget = _amount(100, *LIMITS["daily_budget"])
    monthly_budget = _amount(1500, *LIMITS["monthly_budget"])
    frequency_cap_days = fields.Integer(load_default=7,
                                        validate=validate.Range(*LIMITS["frequency_cap_days"]))
    min_cart_value = _amount(20, *LIMITS["min_cart_value"])
    free_shipping_threshold = _amount(None, *LIMITS["free_shipping_threshold"])
    excluded_products = fields.List(fields.String(validate=TEXT), load_default=list)
    excluded_categories = fields.List(fields.String(validate=TEXT), load_default=list)
    currency_guardrails = CurrencyGuardrailsField(load_default=dict)
    # set in the settings JSON only; absent, they stay absent (serving's defaults)
    stages = _Served(allow_none=True)
    cart_url = _Served(allow_none=True)
    nudge_webhook_url = _Served(allow_none=True)

    @validates_schema
    def _budgets(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["monthly_budget"] < data["daily_budget"]:
            raise ValidationError("The monthly budget cannot be below the daily budget.",
                                  "monthly_budget")


class PrivacySchema(_Section):
    consent_required = fields.Boolean(load_default=False)
    retention_days = fields.Integer(load_default=730, validate=validate.Range(30, 3650))


#: An origin as typed: scheme, host (a name, an IPv4 address or a bracketed IPv6 one) and
#: an optional port, then at most a "/"; nothing else (no user, path, query, spaces).
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]/:@?#\s]+)"
                     r"(?::(?P<port>\d{1,5}))?/?", re.IGNORECASE)


def _origin(value: str) -> str:
    """``value`` as a normalised origin (lower case, IDNA host, no default port).

    Strict: it ends up in the admin's Content-Security-Policy header (``admin_origin``)
    and in CORS answers, so a host with ``;`` or a space (another CSP directive) or
    anything beyond scheme, host and port is refused."""
    match = _ORIGIN.fullmatch(value.strip())
    host = host_ascii(match["host"]) if match else None
    port = int(match["port"]) if match and match["port"] else None
    if match is None or host is None or port == 0 or (port or 0) > 65535:
        raise ValidationError(f"{value!r} is not an origin like https://shop.example "
                              "(scheme, host and an optional port, nothing else)")
    scheme = match["scheme"].lower()
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def safe_origin(value: object) -> str | None:
    """A stored origin fit for a header, or None (one saved before origins were checked
    strictly)."""
    try:
        return _origin(value) if isinstance(value, str) else None
    except ValidationError:
        return None


class OriginsSchema(_Section):
    allowed_origins = fields.List(fields.String(), load_default=list)
    admin_origin = fields.String(load_default=None, allow_none=True)

    @validates("allowed_origins")
    def _check_origins(self, value: list[str], **kwargs: Any) -> None:
        """Every bad origin at once, keyed by position like other list-item errors."""
        bad: dict[int, list[str]] = {}
        for i, v in enumerate(value):
            try:
                _origin(v)
            except ValidationError as err:
                bad[i] = err.messages if isinstance(err.messages, list) else [str(err)]
        if bad:
            raise ValidationError(bad)

    @validates("admin_origin")
    def _check_admin(self, value: str | None, **kwargs: Any) -> None:
        if value:
            _origin(value)


class ShopSchema(_Section):
    """The shop itself: its time zone cuts the dashboard's days at local midnight."""

    timezone = fields.String(load_default=DEFAULT_TIMEZONE,
                             validate=validate.Length(max=64, error="Longer than {max} "
                                                                     "characters."))

    @validates("timezone")
    def _check_timezone(self, value: str, **kwargs: Any) -> None:
        if zone_named(value) is None:
            raise ValidationError(f"{value!r} is not a time zone name; use an IANA name such "
                                  "as America/Los_Angeles, Europe/Paris or UTC.")


#: A text box's list past its number of lines (a line is one rule or override; a blank
#: one is skipped).
_TOO_MANY_LINES = "At most {max} lines: one entry a line, blank lines not counted."


class SettingsSchema(_Section):
    """The whole settings document stored in ``Shop.settings`` (section keys flattened
    where serving code already reads them)."""

    widgets = fields.Nested(WidgetsSchema, load_default=dict)
    recommendations = fields.Nested(RecommendationsSchema, load_default=dict)
    # counted in lines: marshmallow's "Longer than maximum length 500." read as characters
    merchandising = fields.List(fields.Nested(RuleSchema), load_default=list,
                                validate=validate.Length(max=500, error=_TOO_MANY_LINES))
    repurchase_overrides = fields.List(fields.Nested(RepurchaseOverrideSchema),
                                       load_default=list,
                                       validate=validate.Length(max=500, error=_TOO_MANY_LINES))
    subprofiles = fields.Nested(SubprofilesSchema, load_default=dict)
    offers = fields.Nested(OffersSchema, load_default=dict)
    privacy = fields.Nested(PrivacySchema, load_default=dict)
    origins = fields.Nested(OriginsSchema, load_default=dict)
    shop = fields.Nested(ShopSchema, load_default=dict)


def normalise_origin(value: str) -> str:
    return _origin(value)


class RotateCustomerTokenSchema(Schema):
    """The customer-token rotation form: ``revoke_old`` (a leaked secret) skips the grace
    period in which the old secret still verifies tokens."""

    class Meta:
        unknown = EXCLUDE

    revoke_old = fields.Boolean(load_default=False)


class _Fingerprints(fields.Field):
    """The page's field fingerprints, posted as one JSON object of short hex digests."""

    default_error_messages = {"invalid": "Not the settings page's field fingerprints."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            seen = json.loads(value) if isinstance(value, str) and len(value) < 20_000 else None
        except ValueError:
            seen = None
        if not isinstance(seen, dict) or len(seen) > 100 or not all(
                isinstance(k, str) and isinstance(v, str) and _DIGEST.fullmatch(v)
                for k, v in seen.items()):
            raise self.make_error("invalid")
        return seen


_DIGEST = re.compile(r"[0-9a-f]{1,64}")


class ShownSchema(Schema):
    """The settings page's hidden fields: the revision it was rendered at and what each
    field showed. A page without them (cached before they existed) saves as before."""

    class Meta:
        unknown = EXCLUDE

    settings_rev = fields.Integer(load_default=None, allow_none=True,
                                  validate=validate.Range(min=0))
    settings_seen = _Fingerprints(load_default=None, allow_none=True)

    @validates_schema
    def _both(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data["settings_rev"] is None) != (data["settings_seen"] is None):
            raise ValidationError("The page's revision and its fingerprints go together.")
