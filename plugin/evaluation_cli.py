"""`shopkeeper evaluate`: offline evaluation of the production model against baselines.

The CSV contract (issue 3, part 4) is implemented here at the boundary: bad input becomes a
``click.BadParameter`` (exit code 2, message on stderr) before any model runs. Runnable as
``python -m plugin.evaluation_cli``; the lead attaches ``evaluate`` to the console group.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import math
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from plugin.engine.base import BaseRecommender
from plugin.engine.data import Interactions
from plugin.engine.evaluate import (
    METRICS,
    SPLITS,
    evaluate_model,
    paired_ratio_interval,
    split,
)
from plugin.timestamps import TimestampColumn

if TYPE_CHECKING:
    from plugin.engine.repurchase import RepurchaseModel

INTERACTION_COLUMNS = ("customer_id", "item_id", "timestamp")
INTERACTION_OPTIONAL = ("basket_id", "quantity", "price")
CATALOG_COLUMNS = ("item_id",)
CATALOG_OPTIONAL = ("title", "description", "category", "price")
# what an optional number column may hold for "no value" (compared stripped, lower-case)
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
# an id that is no id (compared lower-case): what SQL exports (NULL, MySQL's \N) and
# dataframes turned to text (nan, None, pandas' <NA>) write for a guest's missing one
MISSING_ID = frozenset({"na", "n/a", "nan", "null", "none", "\\n", "<na>"})
# Column order of the JSON "models" object and of the table.
MODEL_NAMES = ("shopkeeper", "g-pop", "p-topfreq", "itemknn", "als")


def model_factories() -> dict[str, Callable[[], BaseRecommender]]:
    """Fresh, default-constructed models by JSON name (imported lazily: ALS needs implicit)."""
    from plugin.engine.baselines import (
        ALSBaseline,
        GlobalPopularity,
        ItemKNNBaseline,
        PersonalTopFrequency,
    )
    from plugin.engine.blend import ShopkeeperRecommender

    return {
        "shopkeeper": ShopkeeperRecommender,
        "g-pop": GlobalPopularity,
        "p-topfreq": PersonalTopFrequency,
        "itemknn": ItemKNNBaseline,
        "als": ALSBaseline,
    }


def make_judge() -> RepurchaseModel:
    """The durable-vs-consumable judge shared by every model (production RepurchaseModel)."""
    from plugin.engine.repurchase import RepurchaseModel

    return RepurchaseModel()


# --------------------------------------------------------------------------- CSV input
# bytes cp1252 leaves undefined; read as latin-1 (the same code point as the byte)
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_not_utf8 = [0]  # bytes read by the fallback, for a note per file


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler: a byte that is not UTF-8 is read as Windows-1252 (Excel on
    Windows, latin-1 exports), so ``caf\xe9`` is ``café`` in every file that holds it."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    _not_utf8[0] += len(bad)
    return "".join(chr(b) if b in _CP1252_UNDEFINED else bytes([b]).decode("cp1252")
                   for b in bad), exc.end


codecs.register_error("shopkeeper-cp1252", _cp1252_fallback)


# binary files a CSV is exported from, by their first bytes (read as text, they would be
# garbage with a misleading complaint about the header)
_NOT_CSV = (
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook, or a zipped CSV to unzip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"PAR1", "a Parquet file"),
)


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text; gzip is told by its magic bytes, not its suffix (``.GZ``, ``.csv``).

    UTF-8 (with or without BOM), and UTF-16 with a BOM (Excel's "Unicode text"); bytes that
    are not UTF-8 are read as Windows-1252 (see ``_cp1252_fallback``).
    """
    # opened once and peeked at, not read twice: a pipe (--interactions <(zcat f.gz)) or
    # FIFO would lose what the first look consumed
    raw = open(path, "rb")  # noqa: SIM115  (closed with the text stream, by the caller)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        gz.myfileobj = raw  # closed with it, as gzip.open does for a file it opened
        raw = gz  # type: ignore[assignment]
    try:
        head = raw.peek(8)[:8]
    except _READ_ERRORS:
        head = b""  # a corrupt gzip header surfaces on the first read, with its message
    for magic, kind in _NOT_CSV:
        if head.startswith(magic):
            raw.close()
            raise OSError(f"it is {kind}, not a CSV file; save or export it as CSV")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return io.TextIOWrapper(raw, encoding="utf-16", newline="")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="shopkeeper-cp1252",
                            newline="")  # closed by the caller


def _unreadable(path: Path, exc: BaseException, hint: str) -> click.BadParameter:
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return click.BadParameter(
            f"cannot read {path.name}: corrupt or truncated gzip file ({exc})", param_hint=hint)
    return click.BadParameter(f"cannot read {path.name}: {exc}", param_hint=hint)


# truncated gzip raises EOFError, a corrupt stream zlib.error (neither is an OSError)
_READ_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error)
#: longest field read: a catalog's HTML description can pass csv's default of 128 KiB;
#: a longer one is a quote opened and never closed, swallowing the lines after it
FIELD_LIMIT = 1 << 24


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """csv's field size limit (process-wide) raised to ``limit`` while a file is read."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _runaway_field(path: Path, line: int, hint: str) -> click.BadParameter:
    return click.BadParameter(
        f"{path.name} line {line}: a field runs on for more than {FIELD_LIMIT:,} characters "
        '(a quote " opened and never closed?)', param_hint=hint)


def _column_name(name: str) -> str:
    """Header names match whatever their case and surrounding whitespace (or a stray BOM)."""
    return name.strip().lstrip("\ufeff").strip().lower()


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SEP_LINE = re.compile(r"sep=[,;\t|]", re.IGNORECASE)


def _delimiter(header: str) -> str:
    """``,``; or ``;`` / tab for a header that holds no comma (spreadsheet exports)."""
    if "," not in header:
        for other in ("\t", ";", "|"):
            if other in header:
                return other
    return ","


@contextmanager
def _read_csv(path: Path, required: tuple[str, ...], optional: tuple[str, ...],
              hint: str) -> Iterator[tuple[dict[str, int], Iterator[tuple[int, list[str]]], str]]:
    """Column positions, a stream of ``(line number, row)`` and the field separator; bad
    structure is a usage error.

    Rows are streamed, not held: a 6M-line file kept as lists of strings took 5.6 GB. A row
    that stops early but holds every required column gets its missing trailing fields as
    empty strings; one that lacks a required field stays short (``IndexError`` at parse).
    """
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path.name}: {exc}", param_hint=hint) from None
    before = _not_utf8[0]
    with fh, _field_limit(FIELD_LIMIT):
        try:
            first = fh.readline()
            skip = 0  # lines before the header
            if _SEP_LINE.fullmatch(first.rstrip("\r\n")):  # Excel's "sep=;" line
                delimiter, first, skip = first[4], fh.readline(), 1
            else:
                delimiter = _delimiter(first)
            reader = csv.reader(itertools.chain([first], fh), delimiter=delimiter)
            names = next(reader, [])
            header = [_column_name(h) for h in names]
        except _READ_ERRORS as exc:
            raise _unreadable(path, exc, hint) from None
        if not any(header):
            raise click.BadParameter(f"{path.name} is empty (no header)", param_hint=hint)
        missing = [c for c in required if c not in header]
        if missing:
            raise click.BadParameter(
                f"{path.name} lacks required column(s): {', '.join(missing)} "
                f"(header must include {','.join(required)}; it has "
                f"{_shorten(delimiter.join(names).strip())!r})", param_hint=hint)
        # a column read twice is ambiguous; repeated columns the CLI ignores are harmless
        twice = [c for c in (*required, *optional) if header.count(c) > 1]
        if twice:
            raise click.BadParameter(
                f"{path.name} has duplicate column(s): {', '.join(twice)} "
                "(header names are matched ignoring case and spaces)", param_hint=hint)
        col = {name: k for k, name in enumerate(header) if name in (*required, *optional)}
        width = max(col.values()) + 1  # fields the parsers index
        need = max(col[c] for c in required) + 1

        # the header again further down: files joined with their headers (cat a.csv b.csv)
        head_end = header[0]
        tail = -len(head_end) if head_end else 0
        ends = frozenset({head_end[-1:], head_end[-1:].upper()} if head_end else ())
        repeated = 0

        def rows() -> Iterator[tuple[int, list[str]]]:
            nonlocal repeated
            read = reader.line_num  # lines read before the row being read
            try:
                for row in reader:
                    # a row's line is where it starts: a quoted field may span lines, and
                    # one whose quote is never closed swallows the lines after it
                    start, read = read + 1, reader.line_num
                    # blank lines (also ",,,") are skipped; the first field settles most rows
                    if row and (row[0].strip() or any(map(str.strip, row))):
                        if (row[0][-1:] in ends and row[0][tail:].lower() == head_end
                                and [_column_name(h) for h in row] == header):
                            repeated += 1
                            continue
                        if need <= len(row) < width:  # trailing empty fields left out
                            row.extend([""] * (width - len(row)))
                        yield start + skip, row
            except csv.Error as exc:
                if "field limit" not in str(exc):
                    raise _unreadable(path, exc, hint) from None
                raise _runaway_field(path, read + 1 + skip, hint) from None
            except _READ_ERRORS as exc:
                raise _unreadable(path, exc, hint) from None
            if repeated:
                click.echo(f"{path.name}: skipped {repeated:,} repeated header line(s) "
                           "(files joined with their headers)", err=True)
            if _not_utf8[0] > before:
                click.echo(f"{path.name}: {_not_utf8[0] - before:,} byte(s) are not UTF-8 and "
                           "were read as Windows-1252 (cp1252)", err=True)

        yield col, rows(), delimiter


def _quantity(value: str, decimal_comma: bool = False) -> float:
    """A quantity; empty or a missing marker (``NA``, ``null``, ``-``, ...) means 1.

    With ``decimal_comma`` (a file not separated by commas: a locale whose decimal mark is
    the comma) ``1,5`` is 1.5.
    """
    try:
        q = float(value)
    except ValueError:
        if value.strip().lower() in MISSING:
            return 1.0
        try:
            if not (decimal_comma and value.count(",") == 1):
                raise ValueError
            q = float(value.replace(",", "."))
        except ValueError:
            raise ValueError(f"quantity {value!r} is not a number") from None
    return 1.0 if math.isnan(q) else q


class _Prices:
    """Price parser: the evaluation never uses prices, so one that does not parse (``$1.99``,
    ``1,99``) is unknown (NaN) instead of an error; such values are counted for one note."""

    def __init__(self) -> None:
        self.bad = 0
        self.example = ""

    def parse(self, value: str) -> float:
        try:
            return float(value)
        except ValueError:
            if value.strip().lower() not in MISSING:
                self.bad += 1
                self.example = self.example or value
            return math.nan

    def note(self, path: Path) -> None:
        if self.bad:
            click.echo(f"{path.name}: {self.bad:,} price value(s) are not numbers "
                       f"(e.g. {self.example!r}) and are treated as unknown", err=True)


def _rows(path: Path, rows: Iterable[tuple[int, list[str]]], hint: str,
          parse: Callable[[list[str], int], tuple]) -> Iterator[tuple]:
    """``parse`` of every row; its errors become messages with the line number.

    A file with a header and no rows is a usage error too. ``parse`` may return ``None``
    for a row it drops; that is passed on.
    """
    seen = False
    for line, row in rows:
        seen = True
        try:
            yield parse(row, line)
        except IndexError:
            raise click.BadParameter(f"{path.name} line {line}: too few fields",
                                     param_hint=hint) from None
        except ValueError as exc:
            raise click.BadParameter(f"{path.name} line {line}: {exc}", param_hint=hint) from None
    if not seen:
        raise click.BadParameter(f"{path.name} has a header but no rows", param_hint=hint)


_NO_ID = "an empty or missing (NULL, NaN, None, N/A) customer_id or item_id"


def load_interactions(path: Path, catalog_path: Path | None = None) -> Interactions:
    """Read the contract's CSVs into ``Interactions``; raise ``click.BadParameter`` on bad input."""
    hint = "'--interactions'"
    clock = TimestampColumn()
    # one string object per distinct id, not per line (millions of lines repeat them)
    names: dict[str, str] = {}
    intern = names.setdefault
    # columns, not a tuple per line: a tuple per line of a 6M-line file is 0.6 GB more
    users: list[str] = []
    items: list[str] = []
    when: list[float] = []
    baskets: list[str] = []
    qty: list[float] = []
    prices: list[float] = []
    price_notes = _Prices()
    price_of = price_notes.parse  # a bound method: called once per line
    dropped = anonymous = 0
    with _read_csv(path, INTERACTION_COLUMNS, INTERACTION_OPTIONAL, hint) as (col, rows, sep):
        cu, it, ts = col["customer_id"], col["item_id"], col["timestamp"]
        decimal_comma = sep != ","
        bk, qt, pr = col.get("basket_id"), col.get("quantity"), col.get("price")

        def parse(row: list[str], line: int) -> tuple | bool | None:
            user, item, stamp = row[cu].strip(), row[it].strip(), row[ts]
            qty = _quantity(row[qt], decimal_comma) if qt is not None else 1.0
            if qty <= 0:  # returns and cancellations are not purchases
                return None
            if (not user or not item  # a guest purchase, or an unknown product
                    or (len(user) < 5 and user.lower() in MISSING_ID)
                    or (len(item) < 5 and item.lower() in MISSING_ID)):
                return False
            when = clock.add(stamp, line)  # seconds, or a non-ISO string resolved below
            # basket ids are scoped to the customer; rows without one group by customer
            # and time (keyed once the time is known)
            basket = row[bk].strip() if bk is not None else ""
            basket = f"{user}\x1f{basket}" if basket else ""
            price = price_of(row[pr]) if pr is not None else math.nan
            return intern(user, user), intern(item, item), when, intern(basket, basket), qty, price

        for parsed in _rows(path, rows, hint, parse):
            if parsed is None:
                dropped += 1
                continue
            if parsed is False:
                anonymous += 1
                continue
            u, i, w, b, q, p = parsed
            users.append(u)
            items.append(i)
            when.append(w)
            baskets.append(b)
            qty.append(q)
            prices.append(p)
    if not users:
        why = ("have quantity <= 0" if not anonymous else f"have {_NO_ID}" if not dropped
               else f"have quantity <= 0 ({dropped:,}) or {_NO_ID} ({anonymous:,})")
        raise click.BadParameter(f"{path.name} has no purchases: all {dropped + anonymous:,} "
                                 f"rows {why}", param_hint=hint)
    if anonymous:
        click.echo(f"{path.name}: dropped {anonymous:,} row(s) with {_NO_ID}", err=True)
    if dropped:
        click.echo(f"{path.name}: dropped {dropped:,} row(s) with quantity <= 0 "
                   "(returns or cancellations)", err=True)
    _resolve_times(path, hint, clock, users, when, baskets)
    price_notes.note(path)
    _warn_scientific_ids(path, names, {"customer_id": users, "item_id": items,
                                       "basket_id": baskets})
    catalog = load_catalog(catalog_path) if catalog_path else None
    if catalog is not None and catalog_path is not None:
        bought = set(items)
        catalog = _match_numeric_ids(catalog_path, catalog, bought)
        known = sum(1 for item in bought if item in catalog)
        if 2 * known < len(bought):
            click.echo(f"{catalog_path.name}: {known:,} of {len(bought):,} bought items are "
                       "in the catalog; check that item_id values match", err=True)
    data = Interactions.from_arrays(
        users, items, when, baskets=baskets, quantities=qty, prices=prices, catalog=catalog)
    if bk is not None:
        _warn_long_baskets(path, data)
    if not clock.day_numbers:
        _warn_placeholder_dates(path, data)
    return data


#: purchases of one basket further apart than this are probably two orders
_BASKET_SPAN = 86_400.0


def _warn_long_baskets(path: Path, data: Interactions) -> None:
    """Warn when a basket_id holds purchases days apart: an id reused across orders (a
    receipt number restarting daily, an order counter mod something) merges them, and the
    split then holds out several orders as one basket."""
    if not len(data):
        return
    n = int(data.basket.max()) + 1
    first = np.full(n, np.inf)
    last = np.full(n, -np.inf)
    np.minimum.at(first, data.basket, data.timestamp)
    np.maximum.at(last, data.basket, data.timestamp)
    long = int(np.count_nonzero(last - first > _BASKET_SPAN))
    if long:
        click.echo(f"{path.name}: {long:,} of {len(np.unique(data.basket)):,} baskets hold "
                   "purchases more than a day apart; if basket_id values are reused across "
                   "orders, each still counts as one basket", err=True)


#: real purchase dates of a retail export fall between these (1980-01-01 and 2100-01-01)
_PLAUSIBLE = (315_532_800.0, 4_102_444_800.0)


def _warn_placeholder_dates(path: Path, data: Interactions) -> None:
    """Warn when a minority of rows carry dates no shop sold on (0001-01-01, 1970-01-01,
    9999-12-31: what systems write for "unknown"). They still count, and a far-future one
    makes its basket the customer's last, the one held out."""
    t = data.timestamp
    odd = (t < _PLAUSIBLE[0]) | (t >= _PLAUSIBLE[1])
    count = int(np.count_nonzero(odd))
    if not count or 2 * count >= len(t):  # most rows: a synthetic timeline, not placeholders
        return
    examples = sorted({_iso_date(x) for x in np.unique(t[odd])[[0, -1]].tolist()})
    click.echo(f"{path.name}: {count:,} row(s) dated before 1980 or after 2099 "
               f"({', '.join(examples)}), unlike the rest of the file: placeholder dates? "
               "They are used as given (a far-future basket is the one held out)", err=True)


def _iso_date(seconds: float) -> str:
    try:
        return (datetime(1970, 1, 1) + timedelta(seconds=seconds)).date().isoformat()
    except OverflowError:  # beyond year 9999: an epoch in the wrong unit
        return f"{seconds:.0f} s after 1970"


# what a spreadsheet shows for a long number (4.71009E+12); a basket key ends in one
_SCIENTIFIC = re.compile(r"(?:^|\x1f)[+-]?\d(?:\.\d+)?[eE][+-]?\d+$")


def _warn_scientific_ids(path: Path, names: dict[str, str], columns: dict[str, list]) -> None:
    """Warn about ids in scientific notation: Excel writes a long numeric id (an EAN, an
    11-digit basket id) as ``4.71009E+12``, so different ids have become one."""
    odd = {k for k in names if ("E" in k or "e" in k) and _SCIENTIFIC.search(k)}
    if not odd:
        return
    for column, values in columns.items():
        found = odd.intersection(values)
        if found:
            example = min(found).rpartition("\x1f")[2]
            click.echo(f"{path.name}: {len(found):,} {column} value(s) are numbers in "
                       f"scientific notation (e.g. {example!r}): a spreadsheet rounded long "
                       "ids, so different ids may have become one; export the column as text",
                       err=True)


# a whole number written with leading zeros or a zero fraction: 001234, 1234.0
_WHOLE_NUMBER = re.compile(r"0*(\d+?)(?:\.0*)?")


def _match_numeric_ids(path: Path, catalog: dict[str, dict], bought: set[str]) -> dict[str, dict]:
    """``catalog`` with ids that name a bought item only as a number renamed to that item.

    Spreadsheets and dataframes write one numeric id as ``1234`` in one file and ``1234.0``
    or zero-padded ``001234`` in the other. A catalog id is renamed only when it is not
    bought itself, its number is that of exactly one bought id missing from the catalog, and
    that id is not claimed by another catalog row; a count goes to stderr.
    """
    missing: dict[str, str | None] = {}
    for item in bought:
        if item not in catalog and (m := _WHOLE_NUMBER.fullmatch(item)):
            key = m.group(1)
            missing[key] = None if key in missing else item  # two bought ids: ambiguous
    if not missing:
        return catalog
    renamed: dict[str, str] = {}
    for cid in catalog:
        if cid not in bought and (m := _WHOLE_NUMBER.fullmatch(cid)):
            target = missing.get(m.group(1))
            if target is not None:
                missing[m.group(1)] = None  # one catalog row per bought item
                renamed[cid] = target
    if not renamed:
        return catalog
    cid, target = next(iter(renamed.items()))
    click.echo(f"{path.name}: {len(renamed):,} item_id value(s) match bought items only as "
               f"numbers (e.g. {cid!r} for {target!r}) and were read as those items", err=True)
    return {renamed.get(k, k): v for k, v in catalog.items()}


def _resolve_times(path: Path, hint: str, clock: TimestampColumn, users: list[str],
                   when: list, baskets: list[str]) -> None:
    """Turn deferred (non-ISO) timestamps into seconds and key baskets left without an id."""
    try:
        later = clock.resolve()
    except ValueError as exc:
        raise click.BadParameter(f"{path.name} line {getattr(exc, 'line', '?')}: {exc}",
                                 param_hint=hint) from None
    if clock.note:
        click.echo(f"{path.name}: timestamps read as {clock.note}", err=True)
    if not later and all(baskets):
        return
    keys: dict[str, str] = {}
    for k, w in enumerate(when):
        if w.__class__ is str:
            when[k] = w = later[w]
        if not baskets[k]:
            key = f"{users[k]}\x1f@{w!r}"
            baskets[k] = keys.setdefault(key, key)


def load_catalog(path: Path) -> dict[str, dict]:
    """Catalog CSV (``item_id`` + optional ``title,description,category,price``) as a dict.

    An item listed twice is merged: per field, the first non-empty value wins.
    """
    hint = "'--catalog'"
    prices = _Prices()
    catalog: dict[str, dict] = {}
    with _read_csv(path, CATALOG_COLUMNS, CATALOG_OPTIONAL, hint) as (col, rows, _):
        text = [name for name in ("title", "description", "category") if name in col]

        def parse(row: list[str], line: int) -> tuple[str, dict]:
            meta: dict = {name: row[col[name]].strip() for name in text}
            if "price" in col:
                meta["price"] = prices.parse(row[col["price"]])
            return row[col["item_id"]].strip(), meta

        for item, meta in _rows(path, rows, hint, parse):
            earlier = catalog.setdefault(item, meta)
            if earlier is not meta:
                for name, value in meta.items():
                    old = earlier[name]
                    if old == "" or (isinstance(old, float) and math.isnan(old)):
                        earlier[name] = value
    prices.note(path)
    return catalog


def dataset_name(path: Path) -> str:
    """The file name without ``.gz`` and then ``.csv`` (any case): ``grocery.v2.csv.gz`` ->
    ``grocery.v2``."""
    name = path.name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


# --------------------------------------------------------------------------- run and report
# why a split can leave nobody to test, in the file's terms
_NO_TEST = {
    "last-basket": "no customer has 2 or more baskets; rows without a basket_id form one "
                   "basket per customer and timestamp",
    "temporal": "need customers with purchases on both sides of the split",
}


def run_evaluation(data: Interactions, split_name: str, k: int, *, dataset: str,
                   progress: bool = False) -> dict:
    """Split once, fit the judge once, evaluate every model on the same split."""
    from tqdm import tqdm

    train, test = split(data, split_name)
    if not test:
        raise click.UsageError(f"the {split_name} split leaves no test customers "
                               f"({_NO_TEST.get(split_name, _NO_TEST['temporal'])})")
    judge = make_judge().fit(train)
    report = {"dataset": dataset, "split": split_name, "k": k, "users": len(test), "models": {}}
    per_user: dict[str, dict[str, float]] = {}
    for name, factory in model_factories().items():
        def bar(users: Iterable[str], name: str = name) -> Iterable[str]:
            return tqdm(users, desc=name, file=sys.stderr, disable=not progress, leave=False)

        per_user[name] = {}
        metrics = evaluate_model(factory(), train, test, k, judge=judge, progress=bar,
                                 ndcg_per_user=per_user[name])
        report["models"][name] = _named(metrics, k)
    report["comparison"] = compare(per_user, k)
    return report


def compare(per_user: dict[str, dict[str, float]], k: int,
            model: str = "shopkeeper") -> dict:
    """``model`` against the best other model by NDCG@k, with a paired 95 % interval."""
    users = sorted(per_user[model])
    scores = {name: np.array([v[u] for u in users]) for name, v in per_user.items()}
    best = max((n for n in scores if n != model), key=lambda n: scores[n].mean())
    ratio, low, high = (round(v, 4) if math.isfinite(v) else None  # null, not NaN, in JSON
                        for v in paired_ratio_interval(scores[model], scores[best]))
    return {"model": model, "baseline": best, "metric": f"ndcg@{k}",
            "ratio": ratio, "ratio_ci95": [low, high],
            "method": "paired bootstrap over test customers, 1000 resamples"}


def _named(metrics: dict[str, float], k: int) -> dict[str, float]:
    """Contract names (``recall@k``) plus the concrete ones (``recall@10``), rounded."""
    out = {name: round(float(metrics[name]), 6) for name in METRICS}
    out.update({name.replace("@k", f"@{k}"): out[name] for name in METRICS if "@k" in name})
    return out


def format_table(report: dict) -> str:
    """A readable fixed-width table of every model's metrics."""
    k = report["k"]
    columns = [name.replace("@k", f"@{k}") for name in METRICS]
    widths = [max(len(c), 7) + 2 for c in columns]
    lines = [f"dataset={report['dataset']} split={report['split']} k={k} "
             f"users={report['users']}",
             "model".ljust(12) + "".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    for name, metrics in report["models"].items():
        lines.append(name.ljust(12) + "".join(
            f"{metrics[c]:.4f}".rjust(w) for c, w in zip(columns, widths, strict=True)))
    if report.get("comparison", {}).get("ratio") is not None:
        c = report["comparison"]
        lines.append(f"{c['model']} / {c['baseline']} {c['metric']}: {c['ratio']:.3f}x "
                     f"(95 % interval {c['ratio_ci95'][0]:.3f} to {c['ratio_ci95'][1]:.3f})")
    return "\n".join(lines)


class InputError(click.ClickException):
    """Bad input data: exit code 2 with one line on stderr (``Error: ...``), without the
    usage text click prints for a bad command line."""

    exit_code = 2


@click.command("evaluate")
@click.option("--interactions", "interactions_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV (or .csv.gz): customer_id,item_id,timestamp[,basket_id,quantity,price]")
@click.option("--catalog", "catalog_path", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV (or .csv.gz): item_id[,title,description,category,price]")
@click.option("--split", "split_name", type=click.Choice(sorted(SPLITS)), default="last-basket",
              show_default=True, help="last basket per customer, or a global time cut at p90")
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True,
              help="length of each recommendation list")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object on stdout")
@click.option("--dataset", default=None,
              help="name for the report (default: file name without .gz and .csv)")
def evaluate(interactions_path: Path, catalog_path: Path | None, split_name: str, k: int,
             as_json: bool, dataset: str | None) -> None:
    """Evaluate shopkeeper and the baselines (G-Pop, P-TopFreq, ItemKNN, ALS) on one split."""
    try:
        data = load_interactions(interactions_path, catalog_path)
        name = dataset or dataset_name(interactions_path)
        report = run_evaluation(data, split_name, k, dataset=name,
                                progress=sys.stderr.isatty())
    except click.UsageError as exc:  # bad data, not a bad command line: no usage text
        raise InputError(exc.format_message()) from None
    click.echo(json.dumps(report) if as_json else format_table(report))


if __name__ == "__main__":
    evaluate(prog_name="shopkeeper evaluate")
