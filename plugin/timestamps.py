"""Timestamps of an input file: ISO-8601, and the other forms retail exports come in.

A file's dates share one form, so a non-ISO form is inferred once per file (from all of its
distinct values), never per value: read one by one, ``01-07-2015`` and ``21-07-2015``
would come out month-first and day-first. Unix epoch numbers are read as seconds (or
milliseconds, when too large for seconds); numbers all below 100,000 are day numbers (a
``DAY`` column, or Excel serial dates from 20,000 on), since as seconds they would all fall
on 1970-01-01.
"""

from __future__ import annotations

import re
from datetime import datetime

from plugin.engine.data import to_timestamp

__all__ = ["TimestampColumn"]

_DATES = (
    # month-first before day-first with slashes (US exports: Online Retail's "12/1/2010 8:26"),
    # day-first before month-first with dashes and dots (European exports)
    "%m/%d/%Y", "%d/%m/%Y", "%d-%m-%Y", "%m-%d-%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y.%m.%d",
    # ISO order without its zero padding (Excel's yyyy-m-d h:mm): 2015-7-1 8:05
    "%Y-%m-%d",
    "%m/%d/%y", "%d/%m/%y", "%d-%m-%y", "%m-%d-%y", "%d.%m.%y",
    "%d %b %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y",
)
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", "T%H:%M", "T%H:%M:%S")
FORMATS = tuple(d + t for t in _TIMES for d in _DATES)
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?\Z")
#: digits only: an epoch number, never handed to ``fromisoformat``, which reads the first
#: 8 of 11, 13, 15... digits as a date and the rest as a time (epoch milliseconds
#: 1485082800000 came out as 1485-08-28, about one value in thirty)
_DIGITS = re.compile(r"[0-9]+")
#: date and time as one number (SAP and mainframe exports), by its number of digits
_COMPACT = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M"}
#: epoch values above this are milliseconds (1e11 s is the year 5138)
_MILLIS = 1e11
#: numbers all below this are day numbers, not seconds (1e5 s is 1970-01-02)
_DAYS = 1e5
#: day numbers from here on are Excel serial dates (20,000 is 1954-10-03)
_EXCEL_FROM = 20_000
_EXCEL_DAY_0 = -2_209_161_600.0  # 1899-12-30, Excel's day 0, in unix seconds
_DAY = 86_400.0
#: zone words some exports append to an ISO value (BigQuery: "2024-05-01 13:45:00 UTC")
_UTC_WORDS = (" UTC", " GMT")
_SAMPLE = 500


class TimestampColumn:
    """Collects one file's timestamp strings, then resolves them to unix seconds.

    ISO-8601 values (naive = UTC) are parsed as they come; anything else waits for
    ``resolve``, which infers the file's form from those values. ``note`` says how a
    non-ISO column was read, for stderr.
    """

    def __init__(self) -> None:
        self._seconds: dict[str, float | str] = {}  # value -> seconds, or its deferred text
        self._pending: dict[str, int] = {}  # value -> first line it was seen on
        self.note = ""
        #: the column counts days from 1970-01-01 (a ``DAY`` column): early dates are its own
        self.day_numbers = False

    def add(self, value: str, line: int) -> float | str:
        """Seconds for an ISO value; else the stripped value itself, to ``resolve`` later."""
        got = self._seconds.get(value)
        if got is not None:
            return got
        text = value.strip()
        if text[-4:].upper() in _UTC_WORDS:
            text = text[:-4].rstrip()
        try:
            if _DIGITS.fullmatch(text) and len(text) != 8:  # 8 digits: ISO's 20240501
                raise ValueError("a number, not an ISO date")  # see _DIGITS
            parsed = datetime.fromisoformat(text)
        except ValueError:
            if not text:
                raise ValueError("empty timestamp") from None
            self._pending.setdefault(text, line)
            # one string per distinct value, not per line, and no second parse attempt
            self._seconds[value] = text
            return text
        self._seconds[value] = _seconds(parsed)
        return self._seconds[value]

    def resolve(self) -> dict[str, float]:
        """Seconds of every value ``add`` deferred; ``ValueError`` names the first bad line."""
        values = list(self._pending)
        if not values:
            return {}
        compact = self._compact(values)
        if compact is not None:
            return compact
        if all(_NUMBER.match(v) for v in values):
            numbers = [float(v) for v in values]
            if max(abs(n) for n in numbers) < _DAYS:
                # seconds would all fall on 1970-01-01: day numbers (a "DAY" column,
                # Excel serial dates when the formatting is lost)
                excel = min(numbers) >= _EXCEL_FROM
                self.note = ("day numbers: Excel serial dates (day 0 is 1899-12-30)" if excel
                             else "day numbers (day 0 is 1970-01-01)")
                origin = _EXCEL_DAY_0 if excel else 0.0
                self.day_numbers = not excel
                return {v: origin + n * _DAY for v, n in zip(values, numbers, strict=True)}
            big = [v for v, n in zip(values, numbers, strict=True) if abs(n) > _MILLIS]
            if big and len(big) < len(values):
                raise self._mixed_epochs(values, set(big))
            millis = bool(big)
            self.note = ("unix epoch milliseconds" if millis else "unix epoch seconds")
            return {v: n / 1000.0 if millis else n for v, n in zip(values, numbers, strict=True)}
        by_line = sorted(values, key=self._pending.__getitem__)
        formats = _formats_of(by_line[:_SAMPLE] + _witnesses(values))
        for fmt in formats:
            out = _parse_all(values, fmt)
            if out is not None:
                self.note = f"dates in the form {fmt!r}"
                if _swapped(fmt) in formats:
                    self.note += (" (no day above 12: could be "
                                  f"{_swapped(fmt)!r}; ISO-8601 dates say which)")
                return out
        bad = _first_bad(by_line)
        raise _Unparsable(bad, self._pending[bad])


    def _mixed_epochs(self, values: list[str], big: set[str]) -> _Unparsable:
        """Epoch seconds next to epoch milliseconds: no single unit reads both right (one
        large value used to turn the whole column into milliseconds, every other date 1970),
        so blame the first value of the rarer kind."""
        odd = big if 2 * len(big) < len(values) else set(values) - big
        first = min(odd, key=self._pending.__getitem__)
        unit = "milliseconds" if first in big else "seconds"
        error = _Unparsable(first, self._pending[first])
        error.args = (f"timestamp {first!r} reads as epoch {unit}, unlike most of the file's "
                      "numbers; one unit per file (seconds, or milliseconds above 1e11)",)
        return error

    def _compact(self, values: list[str]) -> dict[str, float] | None:
        """Seconds of a column of ``yyyymmddHHMMSS`` (or ``yyyymmddHHMM``) numbers, else None.

        Read as epoch milliseconds such numbers fall in the 27th century, with a day 1,000
        seconds long; every value must read as a date of 1900-2099 in one of these forms.
        """
        width = len(values[0])
        fmt = _COMPACT.get(width)
        if fmt is None or not all(len(v) == width and _DIGITS.fullmatch(v)
                                  and v[:2] in ("19", "20") for v in values):
            return None
        out = _parse_all(values, fmt)
        if out is not None:
            self.note = f"dates in the form {fmt!r}"
        return out


class _Unparsable(ValueError):
    def __init__(self, value: str, line: int) -> None:
        super().__init__(f"unparsable timestamp {value!r} (expected ISO-8601, e.g. 2024-05-01 "
                         "or 2024-05-01T13:45:00, or one date form throughout the file)")
        self.line = line


def _seconds(parsed: datetime) -> float:
    return to_timestamp(parsed)  # type: ignore[return-value]  # naive = UTC


def _swapped(fmt: str) -> str:
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _first_bad(by_line: list[str]) -> str:
    """The value to blame: the first no form reads, else the first the likeliest form fails."""
    for v in by_line[:10_000]:
        if not any(_try(v, fmt) is not None for fmt in FORMATS):
            return v
    sample = by_line[:_SAMPLE]
    likeliest = max(FORMATS, key=lambda f: sum(_try(v, f) is not None for v in sample))
    return next((v for v in by_line if _try(v, likeliest) is None), by_line[0])


def _try(value: str, fmt: str) -> float | None:
    try:
        return _seconds(datetime.strptime(value, fmt))
    except ValueError:
        return None


def _witnesses(values: list[str]) -> list[str]:
    """A few values whose first, and a few whose second, number is a day above 12: they
    settle day-first against month-first (also when the file's first lines are all early
    in a month)."""
    out: list[list[str]] = [[], []]
    for v in values:
        for place, number in enumerate(re.findall(r"\d+", v)[:2]):
            if 12 < int(number) <= 31 and len(out[place]) < 20:
                out[place].append(v)
        if len(out[0]) == len(out[1]) == 20:
            break
    return out[0] + out[1]


def _formats_of(sample: list[str]) -> list[str]:
    """Formats that parse every value of the sample, in ``FORMATS`` order."""
    return [fmt for fmt in FORMATS if all(_try(v, fmt) is not None for v in sample)]


def _parse_all(values: list[str], fmt: str) -> dict[str, float] | None:
    out = {}
    for v in values:
        seconds = _try(v, fmt)
        if seconds is None:
            return None
        out[v] = seconds
    return out
