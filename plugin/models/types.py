"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: The largest INTEGER primary key (PostgreSQL's is 32-bit): ids from outside are checked
#: against it, so an oversized one is a 404/422, not a database error.
MAX_ROW_ID = 2**31 - 1


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC: SQLite drops offsets, so we never rely on them."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None,
                             dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


#: Money: exact decimals, never floats. Amounts from outside are bounded by
#: ``connectors.parsing.MAX_AMOUNT``, a tenth of what this holds, so sums stay in range.
Money = Numeric(14, 4, asdecimal=True)


def utcnow() -> datetime:
    return datetime.now(UTC)
