"""Marshmallow fields shared by the API and admin schemas."""

from __future__ import annotations

import decimal
from typing import Any

from marshmallow import ValidationError, fields

__all__ = ["BoundedDecimal"]


class BoundedDecimal(fields.Decimal):
    """A decimal with a range that is checked before rounding to ``places``.

    ``fields.Decimal`` quantizes first, and quantizing 1e30 to 2 places overflows the
    decimal context: the shopper or merchant read "Not a valid number." for a number
    that is merely too large. Here they read the allowed range.
    """

    def __init__(self, *args: Any, minimum: decimal.Decimal | int = 0,
                 maximum: decimal.Decimal | int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.minimum = decimal.Decimal(minimum)
        self.maximum = decimal.Decimal(maximum)

    def _format_num(self, value: Any) -> decimal.Decimal:
        try:
            num = decimal.Decimal(str(value)) if not isinstance(value, decimal.Decimal) \
                else value
        except (decimal.InvalidOperation, ValueError):
            return super()._format_num(value)  # marshmallow's own "not a number"
        if num.is_finite() and not self.minimum <= num <= self.maximum:
            raise ValidationError(f"Must be between {self.minimum} and {self.maximum}.")
        return super()._format_num(num)
