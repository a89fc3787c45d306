"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import DateTime, Numeric
from sqlalchemy.types import TypeDecorator

#: The largest INTEGER primary key (PostgreSQL's is 32-bit): ids from outside are checked
#: against it, so an oversized one is a 404/422, not a database error.
MAX_ROW_ID = 2**31 - 1


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite drops offsets, so we never rely on them."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


#: Money: exact decimals, never floats.
Money = Numeric(14, 4, asdecimal=True)
#: The largest amount accepted from outside, a price or a whole cart: a tenth of what
#: ``Money`` holds, so sums and offer values stay in range (PostgreSQL raises on overflow).
MAX_AMOUNT = Decimal(10**9)


def utcnow() -> datetime:
    return datetime.now(UTC)
