"""`shopkeeper evaluate` contract: bad input exits 2 with a clear message; JSON shape."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from plugin import evaluation_cli
from plugin.engine.baselines import GlobalPopularity, PersonalTopFrequency
from plugin.engine.evaluate import METRICS, split
from plugin.evaluation_cli import (
    MODEL_NAMES,
    dataset_name,
    evaluate,
    load_catalog,
    load_interactions,
)

HEADER = "customer_id,item_id,timestamp,basket_id,quantity,price\n"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _run(*args: str):
    return CliRunner().invoke(evaluate, [str(a) for a in args])


@pytest.fixture
def shop_csv(tmp_path: Path) -> tuple[Path, Path]:
    """A small generated shop: 40 customers, 2-5 baskets each, two taste groups, a catalog."""
    rng = random.Random(7)
    lines, items = [HEADER], [f"i{n:02d}" for n in range(30)]
    for c in range(40):
        own = items[:15] if c % 2 else items[15:]
        for b in range(rng.randint(2, 5)):
            day = 1 + b * 7 + rng.randint(0, 2)
            for item in rng.sample(own, rng.randint(1, 4)):
                lines.append(f"c{c},{item},2024-03-{day:02d}T10:00:00,o{c}-{b},1,2.5\n")
    catalog = ["item_id,title,description,category,price\n"]
    catalog += [f"{i},Item {i},nice thing,{'tea' if n < 15 else 'soap'},2.5\n"
                for n, i in enumerate(items)]
    return (_write(tmp_path / "shop.csv", "".join(lines)),
            _write(tmp_path / "catalog.csv", "".join(catalog)))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("text", "message"), [
    pytest.param("customer_id,item_id\nc1,i1\n", "lacks required column(s): timestamp",
                 id="missing-column"),
    pytest.param("", "bad.csv is empty", id="empty-file"),
    pytest.param(HEADER, "has a header but no rows", id="header-only"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,1,1\nc1,i2,last tuesday,o2,1,1\n",
                 "line 3: unparsable timestamp 'last tuesday'", id="bad-timestamp"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,lots,1\n",
                 "line 2: quantity 'lots' is not a number", id="bad-quantity"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,1,1\nc1,i2\n", "line 3: too few fields",
                 id="short-row"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,1,1\nc2,i1,2024-01-02,o2,1,1\n",
                 "leaves no test customers (no customer has 2 or more baskets",
                 id="nobody-with-two-baskets"),
    pytest.param("customer_id,item_id,timestamp\nc1,i1,2024-01-01\nc1,i2,2024-01-01\n",
                 "no customer has 2 or more baskets; rows without a basket_id form one "
                 "basket per customer and timestamp", id="one-basket-a-day-without-basket-ids"),
    pytest.param("customer_id,item_id,timestamp,Basket_ID,basket_id\nc1,i1,2024-01-01,o1,o2\n",
                 "bad.csv has duplicate column(s): basket_id", id="duplicate-column"),
    pytest.param("customer_id,item_id,TimeStamp,timestamp \nc1,i1,2024-01-01,2024-01-02\n",
                 "bad.csv has duplicate column(s): timestamp", id="duplicate-required-column"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,0,1\nc1,i2,2024-01-02,o2,-1,1\n",
                 "bad.csv has no purchases: all 2 rows have quantity <= 0", id="only-returns"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,NA,1\nc1,i2,2024-01-02,o2,two,1\n",
                 "line 3: quantity 'two' is not a number", id="garbage-quantity-after-marker"),
    pytest.param("basket_id,customer_id,item_id,timestamp\no1,c1,i1,2024-01-01\no2,c1,i2\n",
                 "line 3: too few fields", id="short-row-missing-a-required-field"),
    pytest.param(HEADER + "c1,i1,01/02/2024,o1,1,1\nc1,i2,13/02/2024,o2,1,1\n"
                 "c1,i3,14/02/2024,o3,1,1\nc1,i4,02/15/2024,o4,1,1\n",
                 "line 5: unparsable timestamp '02/15/2024'",
                 id="day-first-and-month-first-mixed"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,1,1\nc1,i2, ,o2,1,1\n",
                 "line 3: empty timestamp", id="empty-timestamp"),
])
def test_bad_interactions_exit_2_with_a_clear_message(tmp_path, text, message):
    result = _run("--interactions", _write(tmp_path / "bad.csv", text))
    assert result.exit_code == 2
    assert message in result.stderr


@pytest.mark.parametrize("text", [
    pytest.param("customer_id,item_id\nc1,i1\n", id="bad-file"),
    pytest.param(HEADER + "c1,i1,2024-01-01,o1,1,1\n", id="no-test-customers"),
])
def test_bad_data_gives_one_line_on_stderr(tmp_path, text):
    result = _run("--interactions", _write(tmp_path / "bad.csv", text))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("Error: ")


def test_unknown_split_exits_2(shop_csv):
    result = _run("--interactions", shop_csv[0], "--split", "random")
    assert result.exit_code == 2
    assert "'random' is not one of" in result.stderr


def test_missing_columns_message_shows_the_header_found(tmp_path):
    # the Kaggle groceries file as downloaded: its columns are not yet renamed
    text = "Member_number,Date,itemDescription\n1808,21-07-2015,tropical fruit\n"
    result = _run("--interactions", _write(tmp_path / "Groceries_dataset.csv", text))
    assert result.exit_code == 2
    assert ("Groceries_dataset.csv lacks required column(s): customer_id, item_id, timestamp "
            "(header must include customer_id,item_id,timestamp; it has "
            "'Member_number,Date,itemDescription')") in result.stderr


def test_catalog_without_item_id_exits_2(shop_csv, tmp_path):
    catalog = _write(tmp_path / "cat.csv", "sku,title\n1,x\n")
    result = _run("--interactions", shop_csv[0], "--catalog", catalog)
    assert result.exit_code == 2
    assert "--catalog" in result.stderr and "item_id" in result.stderr


def test_bytes_that_are_not_utf8_are_read_as_windows_1252_with_a_note(tmp_path):
    # Excel on Windows writes cp1252; the file is streamed, so the byte may come late
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + b"c1,i1,2024-01-01,o1,1,1\n" * 5000
                     + "c1,caf\u00e9 cr\u00e8me,2024-01-02,o2,1,1\n".encode("cp1252"))
    catalog = tmp_path / "cat.csv"  # the same item in UTF-8: one item, with its title
    catalog.write_bytes("item_id,title\ncaf\u00e9 cr\u00e8me,Caf\u00e9 \u20ac\n"
                        .encode("utf-8"))
    result = _run("--interactions", path, "--catalog", catalog, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("latin1.csv: 2 byte(s) are not UTF-8 and were read as "
                             "Windows-1252 (cp1252)\n")
    data = load_interactions(path, catalog)
    assert sorted(data.item_ids) == ["caf\u00e9 cr\u00e8me", "i1"]
    assert data.catalog.title[data.item_index("caf\u00e9 cr\u00e8me")] == "Caf\u00e9 \u20ac"


@pytest.mark.parametrize("gz", [False, True])
def test_utf16_with_a_bom_is_read(tmp_path, gz):
    # Excel's "Unicode text" export: UTF-16 with a byte-order mark, tab-separated, CRLF
    text = "customer_id\titem_id\ttimestamp\r\nc1\tcaf\u00e9\t2024-01-01\r\nc1\ti2\t2024-01-02\r\n"
    blob = text.encode("utf-16")
    path = tmp_path / "u16.txt"
    path.write_bytes(gzip.compress(blob) if gz else blob)
    data = load_interactions(path)
    assert sorted(data.item_ids) == ["caf\u00e9", "i2"] and len(np.unique(data.basket)) == 2


def _zipped(tmp_path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("orders.csv", HEADER + "c1,i1,2024-01-01,o1,1,1\n")
    return (tmp_path / "z.zip").read_bytes()


@pytest.mark.parametrize(("blob", "kind"), [
    pytest.param(_zipped, "a zip archive (an .xlsx workbook, or a zipped CSV to unzip)",
                 id="zip-or-xlsx"),
    pytest.param(lambda _: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
                 "an Excel 97-2003 workbook (.xls)", id="xls"),
    pytest.param(lambda _: b"PAR1\x15\x04" + bytes(100), "a Parquet file", id="parquet"),
])
def test_workbooks_and_archives_exit_2_saying_what_they_are(tmp_path, blob, kind):
    for name, data in (("orders.xlsx", blob(tmp_path)), ("orders.csv.gz",
                                                          gzip.compress(blob(tmp_path)))):
        result = _run("--interactions", _write_bytes(tmp_path / name, data))
        assert result.exit_code == 2, result.output
        assert (f"cannot read {name}: it is {kind}, not a CSV file; save or export it as CSV"
                in result.stderr)


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_catalog_header_without_rows_exits_2(shop_csv, tmp_path):
    catalog = _write(tmp_path / "cat.csv", "item_id,title\n\n")
    result = _run("--interactions", shop_csv[0], "--catalog", catalog)
    assert result.exit_code == 2
    assert "cat.csv has a header but no rows" in result.stderr


@pytest.mark.parametrize("blob", [
    pytest.param(lambda data: data[:10] + b"\xff" * 30 + data[40:], id="corrupt"),
    pytest.param(lambda data: data[:len(data) // 2], id="truncated-mid-file"),
    pytest.param(lambda data: data[:15], id="truncated-in-header"),
])
def test_corrupt_or_truncated_gzip_exits_2_naming_the_file(tmp_path, blob):
    rng = random.Random(3)  # varied ids: compressed, the file spans several read chunks
    text = HEADER + "".join(f"c{rng.randrange(10**6)},i{rng.randrange(10**6)},2024-01-01,"
                            f"o{rng.randrange(10**6)},1,1\n" for _ in range(20000))
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(blob(gzip.compress(text.encode())))
    result = _run("--interactions", path)
    assert result.exit_code == 2, result.output
    assert "cannot read broken.csv.gz: corrupt or truncated gzip file" in result.stderr


# --------------------------------------------------------------------------- reading
def test_rows_without_basket_id_group_by_customer_and_time(tmp_path):
    text = ("customer_id,item_id,timestamp\n"
            "c1,a,2024-01-01 10:00:00\nc1,b,2024-01-01 10:00:00\nc1,c,2024-01-02\n"
            "c2,a,2024-01-01 10:00:00\n")
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert len(np.unique(data.basket)) == 3  # c1 twice, c2 once (same time, other customer)
    assert data.quantity.tolist() == [1.0] * 4


def test_a_temporal_cut_through_baskets_with_a_time_per_line_holds_them_out_whole(tmp_path):
    """Till exports stamp each line: a basket's lines are minutes apart, and with the shop
    opening at 9 the p90 of line times falls inside the last week's baskets. Each goes by
    its first line: wholly in training or wholly held out, never split between them."""
    rng = random.Random(3)
    lines, baskets = [HEADER], []
    for c in range(30):
        for b in range(rng.randint(2, 4)):
            start = datetime(2024, 3, 1 + 7 * b, 9, rng.randint(0, 2), tzinfo=UTC).timestamp()
            items = [f"i{i}" for i in rng.sample(range(40), rng.randint(2, 5))]
            baskets.append({(f"c{c}", i, start + 180 * n) for n, i in enumerate(items)})
            for n, i in enumerate(items):  # one line every 3 minutes
                when = datetime.fromtimestamp(start + 180 * n, UTC).isoformat()
                lines.append(f"c{c},{i},{when},o{c}-{b},1,1\n")
    data = load_interactions(_write(tmp_path / "till.csv", "".join(lines)))
    train, test = split(data, "temporal")
    in_train = {(str(data.user_ids[u]), str(data.item_ids[i]), float(t))
                for u, i, t in zip(train.user, train.item, train.timestamp, strict=True)}
    assert test
    for customer, items in test.items():
        held = [b for b in baskets if {(c, i) for c, i, _ in b} == {(customer, i) for i in items}]
        assert len(held) == 1, f"{customer}: {items} is not one whole basket"
        assert not held[0] & in_train


def test_basket_ids_reused_across_days_are_warned_about(tmp_path, capsys):
    # an order counter per customer that restarts: o1 on the 1st and again on the 20th
    text = ("customer_id,item_id,timestamp,basket_id\n"
            "c1,a,2024-01-01 10:00,o1\nc1,b,2024-01-01 10:05,o1\nc1,c,2024-01-08,o2\n"
            "c1,d,2024-01-20,o1\nc2,a,2024-01-02 09:00,o1\nc2,b,2024-01-02 21:00,o1\n")
    load_interactions(_write(tmp_path / "r.csv", text))
    assert ("r.csv: 1 of 3 baskets hold purchases more than a day apart"
            in capsys.readouterr().err)
    load_interactions(_write(tmp_path / "r.csv", text.replace("2024-01-20", "2024-01-01")))
    assert "more than a day apart" not in capsys.readouterr().err


def _times(tmp_path, stamps: list[str], capsys=None) -> list[str]:
    """ISO dates of one customer's baskets whose timestamps are ``stamps``, in file order."""
    rows = "".join(f"c1,i{n},{s},o{n}\n" for n, s in enumerate(stamps))
    data = load_interactions(_write(tmp_path / "t.csv",
                                    "customer_id,item_id,timestamp,basket_id\n" + rows))
    when = dict(zip(data.item.tolist(), data.timestamp.tolist(), strict=True))
    return [datetime.fromtimestamp(when[data.item_index(f"i{n}")], UTC).isoformat()[:16]
            for n in range(len(stamps))]


@pytest.mark.parametrize(("stamps", "expected", "note"), [
    pytest.param(["01-07-2015", "21-07-2015"], ["2015-07-01T00:00", "2015-07-21T00:00"],
                 "dates in the form '%d-%m-%Y'", id="day-first-dashes"),
    pytest.param(["12/1/2010 8:26", "12/13/2010 10:05"],
                 ["2010-12-01T08:26", "2010-12-13T10:05"], "'%m/%d/%Y %H:%M'",
                 id="month-first-slashes-with-time"),
    pytest.param(["21.07.2015 13:45", "01.08.2015 08:00"],
                 ["2015-07-21T13:45", "2015-08-01T08:00"], "'%d.%m.%Y %H:%M'", id="dots"),
    pytest.param(["21 Jul 2015", "3 Aug 2015"], ["2015-07-21T00:00", "2015-08-03T00:00"],
                 "'%d %b %Y'", id="month-names"),
    pytest.param(["1493740800", "1493827200"], ["2017-05-02T16:00", "2017-05-03T16:00"],
                 "unix epoch seconds", id="epoch-seconds"),
    pytest.param(["1493740800000", "1493827200000"], ["2017-05-02T16:00", "2017-05-03T16:00"],
                 "unix epoch milliseconds", id="epoch-milliseconds"),
    pytest.param(["01/02/2015", "03/04/2015"], ["2015-01-02T00:00", "2015-03-04T00:00"],
                 "could be '%d/%m/%Y'", id="ambiguous-read-month-first-and-said-so"),
    pytest.param(["1", "8", "711"], ["1970-01-02T00:00", "1970-01-09T00:00", "1971-12-13T00:00"],
                 "day numbers (day 0 is 1970-01-01)", id="day-numbers-not-seconds"),
    pytest.param(["45413", "45414.5"], ["2024-05-01T00:00", "2024-05-02T12:00"],
                 "Excel serial dates", id="excel-serial-dates"),
    pytest.param(["2015-7-1 8:05", "2015-7-21 13:45"], ["2015-07-01T08:05", "2015-07-21T13:45"],
                 "'%Y-%m-%d %H:%M'", id="iso-order-without-zero-padding"),
    pytest.param(["2024-05-01 13:45:00 UTC", "2024-05-02T08:00:00 GMT"],
                 ["2024-05-01T13:45", "2024-05-02T08:00"], "", id="iso-with-a-utc-word"),
])
def test_common_non_iso_timestamps_are_read_in_one_form_per_file(tmp_path, capsys, stamps,
                                                                    expected, note):
    assert _times(tmp_path, stamps) == expected
    assert note in capsys.readouterr().err


def test_epoch_milliseconds_that_look_like_compact_iso_are_still_epoch(tmp_path, capsys):
    # fromisoformat reads 1485082800000 as 1485-08-28 00:00 (8 digits of date, a separator,
    # a time): such values were dated 500 years early among correctly read neighbours
    stamps = ["1485082800000", "1485100800000", "1493740800000"]
    assert _times(tmp_path, stamps) == ["2017-01-22T11:00", "2017-01-22T16:00",
                                        "2017-05-02T16:00"]
    assert "unix epoch milliseconds" in capsys.readouterr().err


def test_eight_digit_compact_iso_dates_are_still_dates(tmp_path):
    assert _times(tmp_path, ["20240501", "20240502"]) == ["2024-05-01T00:00",
                                                          "2024-05-02T00:00"]


@pytest.mark.parametrize(("stamps", "expected"), [
    (["20240501134500", "20240502080000"], ["2024-05-01T13:45", "2024-05-02T08:00"]),
    (["202405011345", "202405020800"], ["2024-05-01T13:45", "2024-05-02T08:00"]),
])
def test_date_and_time_as_one_number_is_a_date_not_epoch_milliseconds(tmp_path, capsys,
                                                                       stamps, expected):
    # read as milliseconds, 20240501134500 was the year 2611 and a day 1,000 seconds long
    assert _times(tmp_path, stamps) == expected
    assert "dates in the form '%Y%m%d%H%M" in capsys.readouterr().err


def test_the_file_not_the_value_settles_day_first(tmp_path):
    # read alone, 01-07 would be January 7th; the file's 21-07 says the form is day-first
    assert _times(tmp_path, ["01-07-2015", "02-07-2015", "21-07-2015"])[0] == "2015-07-01T00:00"


def test_month_first_file_whose_first_lines_are_early_in_a_month_is_not_called_ambiguous(
        tmp_path, capsys):
    # 600 values of January 1st to 12th, then the 13th: the file is month-first, unambiguously
    stamps = [f"1/{1 + n // 50}/2017 10:{n % 50:02d}" for n in range(600)] + ["1/13/2017 10:00"]
    assert _times(tmp_path, stamps)[-1] == "2017-01-13T10:00"
    err = capsys.readouterr().err
    assert "'%m/%d/%Y %H:%M'" in err and "could be" not in err


def test_a_non_iso_value_is_held_once_not_once_per_line():
    # a 30M-line file of "12/1/2010 8:26" values kept a string per line until resolved
    from plugin.timestamps import TimestampColumn

    clock, hour = TimestampColumn(), 8
    first = clock.add(f"12/1/2010 {hour}:26", 2)
    again = clock.add(f"12/1/2010 {hour}:26", 3)  # an equal string, not the same object
    assert first == again and first is again


def test_iso_file_gives_no_timestamp_note(tmp_path, capsys):
    _times(tmp_path, ["2015-07-01", "2015-07-21T10:00:00+02:00"])
    assert "timestamps read as" not in capsys.readouterr().err


def test_non_iso_dates_score_like_the_same_file_in_iso(tmp_path):
    """The same purchases with day-first dates and no basket ids: the same split and lists."""
    rng = random.Random(3)
    iso, dmy = ["customer_id,item_id,timestamp\n"], ["customer_id,item_id,timestamp\n"]
    for c in range(30):
        for b in range(rng.randint(2, 4)):
            day = rng.randint(1, 28)
            for item in rng.sample(range(12), 3):
                iso.append(f"c{c},i{item},2024-{b + 1:02d}-{day:02d}\n")
                dmy.append(f"c{c},i{item},{day:02d}-{b + 1:02d}-2024\n")
    reports = []
    for name, lines in (("iso.csv", iso), ("dmy.csv", dmy)):
        result = _run("--interactions", _write(tmp_path / name, "".join(lines)), "--json",
                      "--dataset", "same")
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        for metrics in report["models"].values():
            for key in [k for k in metrics if "seconds" in k or "_ms_" in k]:
                del metrics[key]
        reports.append(report)
    assert reports[0]["users"] == 30
    assert reports[0] == reports[1]


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_semicolon_tab_and_pipe_separated_files_are_read(tmp_path, sep):
    text = "".join(sep.join(row) + "\n" for row in (
        ("customer_id", "item_id", "timestamp", "price"), ("c1", "i1", "2024-01-01", "1,99"),
        ("c1", "i2", "2024-01-02", "2,50")))
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert sorted(data.item_ids) == ["i1", "i2"] and len(np.unique(data.basket)) == 2


def test_quantities_with_a_decimal_comma_are_read_in_files_not_separated_by_commas(tmp_path):
    # a German Excel export: ';' between fields, ',' as the decimal mark
    text = ("customer_id;item_id;timestamp;quantity\nc1;i1;21.07.2015;1,5\n"
            "c1;i2;22.07.2015;0,0\nc1;i3;23.07.2015;2\n")
    data = load_interactions(_write(tmp_path / "de.csv", text))
    assert sorted(data.quantity.tolist()) == [1.5, 2.0]  # 0,0 is no purchase
    # with commas between fields, "1,5" could be 1.5 or 15: still an error
    result = _run("--interactions", _write(tmp_path / "us.csv", 'customer_id,item_id,timestamp,'
                                           'quantity\nc1,i1,2024-01-01,"1,5"\n'))
    assert result.exit_code == 2 and "quantity '1,5' is not a number" in result.stderr


def test_ids_in_scientific_notation_are_warned_about(shop_csv, tmp_path):
    # Excel shows 13-digit EANs as 4.71009E+12 and writes that: distinct items became one
    text = (HEADER + "c1,4.71009E+12,2024-01-01,o1,1,1\nc1,4.71009E+12,2024-01-02,o2,1,1\n"
            "c1,4.71E+12,2024-01-02,o2,1,1\nc2,i1,2024-01-01,3.1E+10,1,1\n"
            "c2,i2,2024-01-02,o4,1,1\n")
    result = _run("--interactions", _write(tmp_path / "sci.csv", text), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"sci.csv: {n} {column} value(s) are numbers in scientific notation (e.g. {ex!r}): a "
        "spreadsheet rounded long ids, so different ids may have become one; export the "
        "column as text" for n, column, ex in ((2, "item_id", "4.71009E+12"),
                                               (1, "basket_id", "3.1E+10"))]
    result = _run("--interactions", shop_csv[0], "--json")  # ordinary ids: no warning
    assert result.exit_code == 0 and result.stderr == ""


def test_files_joined_with_their_headers_are_read_with_a_note(tmp_path):
    part = "customer_id,item_id,timestamp\nc1,i1,2024-01-01\nc1,i2,2024-01-02\n"
    path = tmp_path / "joined.csv"  # cat a.csv b.csv, the second one with a BOM
    path.write_bytes(("\ufeff" + part + "\ufeff" + part.upper().replace("C1,I", "c2,i")
                      ).encode())
    result = _run("--interactions", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("joined.csv: skipped 1 repeated header line(s) (files joined with "
                             "their headers)\n")
    assert json.loads(result.stdout)["users"] == 2


def test_excel_sep_line_sets_the_separator_and_lines_keep_their_numbers(tmp_path):
    text = "sep=;\ncustomer_id;item_id;timestamp\nc1;i1;2024-01-01\nc1;i2;2024-01-02\n"
    data = load_interactions(_write(tmp_path / "sep.csv", text))
    assert sorted(data.item_ids) == ["i1", "i2"]
    result = _run("--interactions", _write(tmp_path / "bad.csv", text + "c1;i3;someday\n"))
    assert result.exit_code == 2 and "bad.csv line 5: unparsable timestamp" in result.stderr


def test_catalog_fields_longer_than_csvs_default_limit_are_read(shop_csv, tmp_path):
    # csv stops at 128 KiB per field; an HTML description can be longer
    long = "<p>" + "organic " * 20_000 + "</p>"
    catalog = _write(tmp_path / "long.csv", f"item_id,title,description\ni01,Tea,{long}\n")
    assert load_catalog(catalog)["i01"]["description"] == long


def test_an_unclosed_quote_is_blamed_on_the_line_where_it_opened(tmp_path, monkeypatch):
    rows = "".join(f"c{n},i{n},2024-01-0{1 + n % 9}\n" for n in range(200))
    text = "customer_id,item_id,timestamp\nc1,i1,2024-01-01\nc1,\"i2,2024-01-02\n" + rows
    result = _run("--interactions", _write(tmp_path / "q.csv", text))
    assert result.exit_code == 2 and "q.csv line 3: too few fields" in result.stderr
    # a quote left open in a large file runs into the field limit
    monkeypatch.setattr(evaluation_cli, "FIELD_LIMIT", 1_000)
    result = _run("--interactions", _write(tmp_path / "q.csv", text))
    assert result.exit_code == 2
    assert ("q.csv line 3: a field runs on for more than 1,000 characters "
            '(a quote " opened and never closed?)') in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_blank_and_comma_only_lines_are_skipped(tmp_path):
    text = HEADER + "\nc1,i1,2024-01-01,o1,1,1\n,,,,,\n  \nc1,i2,2024-01-02,o2,1,1\n"
    data = load_interactions(_write(tmp_path / "b.csv", text))
    assert sorted(data.item_ids) == ["i1", "i2"] and len(data) == 2


def test_ids_are_indexed_in_sorted_order(tmp_path):
    # models break ties by index, so the index must not depend on the order of the lines
    rows = ["c2,b,2024-01-01,o1", "c10,a,2024-01-02,o2", "c1,c,2024-01-03,o3",
            "c2,a,2024-01-04,o4"]
    one = load_interactions(_write(tmp_path / "1.csv", "customer_id,item_id,timestamp,basket_id\n"
                                   + "\n".join(rows) + "\n"))
    two = load_interactions(_write(tmp_path / "2.csv", "customer_id,item_id,timestamp,basket_id\n"
                                   + "\n".join(reversed(rows)) + "\n"))
    assert one.user_ids.tolist() == two.user_ids.tolist() == ["c1", "c10", "c2"]
    assert one.item_ids.tolist() == two.item_ids.tolist() == ["a", "b", "c"]
    assert one.user.tolist() == two.user.tolist() and one.item.tolist() == two.item.tolist()


def test_header_names_match_ignoring_case_spaces_and_bom(tmp_path):
    # a stray second BOM too (utf-8-sig strips only the first)
    text = ("\ufeff\ufeff Customer_ID ,ITEM_ID,TimeStamp,Basket_ID,Quantity,PRICE\n"
            "c1,a,2024-01-01 10:00:00,o1,3,1.5\nc1,b,2024-01-01 10:00:07,o1,2,2.5\n"
            "c1,c,2024-01-08 10:00:00,o2,1,\n")
    path = tmp_path / "upper.csv"
    path.write_text(text, encoding="utf-8-sig")
    data = load_interactions(path)
    assert len(np.unique(data.basket)) == 2  # Basket_ID is read, not one basket per line
    assert data.quantity.tolist() == [3.0, 2.0, 1.0]
    assert data.price[:2].tolist() == [1.5, 2.5] and np.isnan(data.price[2])
    catalog = load_catalog(_write(tmp_path / "cat.csv", "Item_ID,Title,DESCRIPTION,Category,"
                                  "Price\na,Apple,red,fruit,0.5\n"))
    assert catalog == {"a": {"title": "Apple", "description": "red", "category": "fruit",
                             "price": 0.5}}


def test_repeated_columns_the_cli_does_not_read_are_accepted(tmp_path):
    text = "customer_id,item_id,timestamp,note,Note,,\nc1,a,2024-01-01,x,y,,\n"
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert data.item_ids.tolist() == ["a"]


def test_rows_with_quantity_zero_or_below_are_dropped(tmp_path):
    text = (HEADER + "c1,milk,2024-01-01,o1,2,1\nc1,tv,2024-01-02,r1,0,0\n"
            "c1,milk,2024-01-03,r2,-2,1\nc1,eggs,2024-01-04,o2,1,1\n")
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert data.quantity.tolist() == [2.0, 1.0]
    assert sorted(data.item_ids) == ["eggs", "milk"]  # the returned tv is no item at all


@pytest.mark.usefixtures("stand_ins")
def test_rows_with_an_empty_customer_or_item_are_dropped_with_a_count(tmp_path):
    # a dataframe writes a missing CustomerID (guest checkout) as an empty field
    text = (HEADER + "c1,i1,2024-01-01,o1,1,1\n,i2,2024-01-01,o9,1,1\nc1, ,2024-01-02,o2,1,1\n"
            "c1,i3,2024-01-02,o2,1,1\n")
    result = _run("--interactions", _write(tmp_path / "x.csv", text), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("x.csv: dropped 2 row(s) with an empty or missing (NULL, NaN, "
                             "None, N/A) customer_id or item_id\n")
    assert sorted(load_interactions(tmp_path / "x.csv").item_ids) == ["i1", "i3"]
    result = _run("--interactions", _write(tmp_path / "none.csv", HEADER + ",i1,2024-01-01,o1,1,1\n"
                                           "c1,i1,2024-01-01,o1,0,1\n"))
    assert result.exit_code == 2
    assert ("none.csv has no purchases: all 2 rows have quantity <= 0 (1) or an empty or "
            "missing (NULL, NaN, None, N/A) customer_id or item_id (1)") in result.stderr


def test_ids_written_as_missing_markers_are_dropped_like_empty_ones(tmp_path):
    # SQL exports write NULL or \N, dataframes turned to text nan, None or <NA>: a guest,
    # not one shopper with every guest's baskets (nor an item everybody bought)
    text = (HEADER + "c1,i1,2024-01-01,o1,1,1\nNULL,i2,2024-01-01,o9,1,1\n"
            "\\N,i2,2024-01-03,o8,1,1\nnan,i2,2024-01-01,o7,1,1\n<NA>,i2,2024-01-01,o6,1,1\n"
            "c1,None,2024-01-02,o2,1,1\nc1,i3,2024-01-02,o2,1,1\nNONE,i1,2024-01-02,o5,1,1\n"
            "Nana,i4,2024-01-02,o4,1,1\n")
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert sorted(data.user_ids) == ["Nana", "c1"] and sorted(data.item_ids) == ["i1", "i3", "i4"]


def test_dropped_rows_are_counted_on_stderr_and_stdout_stays_json(shop_csv, tmp_path):
    result = _run("--interactions", shop_csv[0], "--json")
    assert result.exit_code == 0 and "dropped" not in result.stderr
    text = shop_csv[0].read_text() + "c1,i00,2024-04-01,r1,-1,2.5\nc2,i01,2024-04-01,r2,0,2.5\n"
    result = _run("--interactions", _write(tmp_path / "returns.csv", text), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["users"] == 40
    assert result.stderr.count("\n") == 1
    assert "returns.csv: dropped 2 row(s) with quantity <= 0" in result.stderr


def test_missing_markers_in_number_columns_mean_no_value(tmp_path, capsys):
    markers = ["NA", "n/a", "NaN", "null", "None", " - ", ""]
    rows = [f"c1,i{n},2024-01-0{n + 1},o{n},{m},{m}\n" for n, m in enumerate(markers)]
    data = load_interactions(_write(tmp_path / "x.csv", HEADER + "".join(rows)))
    assert data.quantity.tolist() == [1.0] * len(markers)
    assert np.isnan(data.price).all()
    assert capsys.readouterr().err == ""  # missing is not "unreadable"


def test_unreadable_prices_are_unknown_with_one_note(tmp_path, capsys):
    text = (HEADER + "c1,a,2024-01-01,o1,1,$1.99\nc1,b,2024-01-01,o1,1,\"1,99\"\n"
            "c1,c,2024-01-02,o2,1,2.5\n")
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert np.isnan(data.price[:2]).all() and data.price[2] == 2.5
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "x.csv: 2 price value(s) are not numbers (e.g. '$1.99')" in err
    catalog = load_catalog(_write(tmp_path / "cat.csv", "item_id,price\na,NA\nb,€3\nc,4\n"))
    assert np.isnan(catalog["a"]["price"]) and np.isnan(catalog["b"]["price"])
    assert catalog["c"]["price"] == 4.0
    assert "cat.csv: 1 price value(s) are not numbers" in capsys.readouterr().err


def test_rows_leaving_out_trailing_empty_fields_are_read(tmp_path):
    text = HEADER + "c1,a,2024-01-01,o1,3\nc1,b,2024-01-01,o1\nc1,c,2024-01-02\n"
    data = load_interactions(_write(tmp_path / "x.csv", text))
    assert data.quantity.tolist() == [3.0, 1.0, 1.0] and np.isnan(data.price).all()
    assert len(np.unique(data.basket)) == 2  # o1, then c1 at 2024-01-02
    catalog = load_catalog(_write(tmp_path / "cat.csv", "item_id,title,category,price\n"
                                  "a,Apple\nb\n"))
    assert catalog["a"]["title"] == "Apple" and catalog["a"]["category"] == ""
    assert np.isnan(catalog["b"]["price"])


def test_duplicate_catalog_items_merge_first_non_empty_value_wins(tmp_path):
    text = ("item_id,title,description,category,price\n"
            "milk,Whole milk 1L,,dairy,\nmilk,,fresh,,1.19\nmilk,Skimmed,stale,fridge,9\n"
            "eggs,Eggs x6,,dairy,2\n")
    catalog = load_catalog(_write(tmp_path / "cat.csv", text))
    assert catalog["milk"] == {"title": "Whole milk 1L", "description": "fresh",
                               "category": "dairy", "price": 1.19}
    assert catalog["eggs"]["title"] == "Eggs x6"


@pytest.mark.usefixtures("stand_ins")
def test_catalog_matching_few_bought_items_is_warned_about(shop_csv, tmp_path):
    result = _run("--interactions", shop_csv[0], "--catalog", shop_csv[1], "--json")
    assert result.exit_code == 0 and result.stderr == ""
    # 14 of the 30 bought ids present: under half
    text = "item_id,title\n" + "".join(f"{i},x\n" for i in [f"i{n:02d}" for n in range(14)]
                                         + ["sku-1", "sku-2"])
    result = _run("--interactions", shop_csv[0], "--catalog", _write(tmp_path / "ids.csv", text),
                  "--json")
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert result.stderr == ("ids.csv: 14 of 30 bought items are in the catalog; "
                             "check that item_id values match\n")


def test_catalog_ids_that_match_bought_items_only_as_numbers_are_those_items(tmp_path):
    # a dataframe wrote 101.0 in one file, a spreadsheet zero-padded the other
    text = ("customer_id,item_id,timestamp\n1.0,101.0,2024-01-01\n1.0,102,2024-01-02\n"
            "1.0,103,2024-01-03\n")
    catalog = ("item_id,title\n101,Milk\n000102,Eggs\n103,Tea\n0103,Tea again\n"
               "999.0,Never bought\n")
    result = _run("--interactions", _write(tmp_path / "x.csv", text), "--catalog",
                  _write(tmp_path / "cat.csv", catalog), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("cat.csv: 2 item_id value(s) match bought items only as numbers "
                             "(e.g. '101' for '101.0') and were read as those items\n")
    data = load_interactions(tmp_path / "x.csv", tmp_path / "cat.csv")
    # 103 is in the catalog as itself, so 0103 stays a catalog item of its own
    assert sorted(data.item_ids) == ["0103", "101.0", "102", "103", "999.0"]
    titles = {i: data.catalog.title[data.item_index(i)] for i in ("101.0", "102", "103")}
    assert titles == {"101.0": "Milk", "102": "Eggs", "103": "Tea"}


@pytest.mark.parametrize(("name", "expected"), [
    ("grocery.v2.csv", "grocery.v2"), ("grocery.v2.csv.gz", "grocery.v2"),
    ("Orders.CSV.GZ", "Orders"), ("orders.gz", "orders"), ("orders.tsv", "orders.tsv"),
    ("orders", "orders"),
])
def test_default_dataset_name_strips_only_gz_and_csv(name, expected):
    assert dataset_name(Path(name)) == expected


@pytest.mark.usefixtures("stand_ins")
def test_default_dataset_name_keeps_inner_dots(shop_csv, tmp_path):
    path = _write(tmp_path / "grocery.v2.csv", shop_csv[0].read_text())
    result = _run("--interactions", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["dataset"] == "grocery.v2"


@pytest.mark.parametrize("name", ["gzipped.csv", "upper.CSV.GZ"])
def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress((HEADER + "c1,a,2024-01-01,o1,2,1\n").encode()))
    assert load_interactions(path).quantity.tolist() == [2.0]


@pytest.mark.parametrize("gz", [False, True])
def test_a_pipe_is_read_from_its_first_byte(gz):
    # --interactions <(zcat orders.csv.gz): looking for gzip's magic bytes must not eat them
    import os

    text = "customer_id,item_id,timestamp\nc1,i1,2024-01-01\nc1,i2,2024-01-02\n"
    blob = gzip.compress(text.encode()) if gz else text.encode()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, blob)
        os.close(write_end)
        data = load_interactions(Path(f"/dev/fd/{read_end}"))
    finally:
        os.close(read_end)
    assert sorted(data.item_ids) == ["i1", "i2"]


def test_gzip_and_optional_columns_are_read(tmp_path):
    path = tmp_path / "x.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(HEADER + "c1,a,2024-01-01,o1,3,1.5\nc1,b,2024-01-01,o1,,\n")
    data = load_interactions(path)
    assert data.quantity.tolist() == [3.0, 1.0]
    assert data.price[0] == 1.5 and np.isnan(data.price[1])


# --------------------------------------------------------------------------- happy path
class _StandInJudge:
    """Stands in for RepurchaseModel where only the CLI mechanics are under test."""

    def fit(self, interactions, *, show_progress=False):
        self.n_ = interactions.n_items
        return self

    def is_durable(self, idx):
        return np.zeros(len(idx), bool)


@pytest.fixture
def stand_ins(monkeypatch):
    """Baselines under every model name and a no-durables judge: CLI mechanics only."""
    models = dict.fromkeys(MODEL_NAMES, PersonalTopFrequency) | {"g-pop": GlobalPopularity}
    monkeypatch.setattr(evaluation_cli, "model_factories", lambda: models)
    monkeypatch.setattr(evaluation_cli, "make_judge", _StandInJudge)


@pytest.mark.usefixtures("stand_ins")
def test_json_report_has_every_model_and_metric(shop_csv):
    result = _run("--interactions", shop_csv[0], "--catalog", shop_csv[1], "--k", "5",
                  "--json", "--dataset", "tiny")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert report["dataset"] == "tiny" and report["split"] == "last-basket"
    assert report["k"] == 5 and report["users"] == 40
    assert list(report["models"]) == list(MODEL_NAMES)
    for metrics in report["models"].values():
        assert set(METRICS) <= set(metrics)
        assert metrics["recall@5"] == metrics["recall@k"]
        assert 0.0 <= metrics["recall@k"] <= 1.0
    # personal history beats global popularity on this taste-split shop
    assert report["models"]["p-topfreq"]["hr@k"] > report["models"]["g-pop"]["hr@k"]
    # "shopkeeper" is a P-TopFreq stand-in here: the same lists, so a ratio of exactly 1
    comparison = report["comparison"]
    assert comparison["baseline"] == "p-topfreq" and comparison["metric"] == "ndcg@5"
    assert comparison["ratio"] == 1.0 and comparison["ratio_ci95"] == [1.0, 1.0]


def test_real_models_produce_the_contract_json(shop_csv):
    result = _run("--interactions", shop_csv[0], "--catalog", shop_csv[1], "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dataset"] == "shop" and report["k"] == 10 and report["users"] == 40
    assert list(report["models"]) == ["shopkeeper", "g-pop", "p-topfreq", "itemknn", "als"]
    for metrics in report["models"].values():
        assert set(METRICS) <= set(metrics)
        assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.usefixtures("stand_ins")
def test_temporal_split_and_table_output(shop_csv):
    result = _run("--interactions", shop_csv[0], "--split", "temporal")
    assert result.exit_code == 0, result.stderr
    assert "split=temporal" in result.stdout
    for name in MODEL_NAMES:
        assert name in result.stdout
    assert "ndcg@10" in result.stdout
    assert "shopkeeper / p-topfreq ndcg@10: 1.000x (95 % interval 1.000 to 1.000)" \
        in result.stdout


def test_comparison_is_null_not_nan_when_every_baseline_scores_zero():
    per_user = {"shopkeeper": {"a": 0.5, "b": 0.0}, "g-pop": {"a": 0.0, "b": 0.0}}
    comparison = evaluation_cli.compare(per_user, 10)
    assert comparison["baseline"] == "g-pop"
    assert comparison["ratio"] is None and comparison["ratio_ci95"] == [None, None]
    json.dumps(comparison, allow_nan=False)  # strict JSON


@pytest.mark.parametrize("rows", [
    # one customer: every candidate row of a tiny history can be a purchase
    ["c1,milk,2024-01-01", "c1,bread,2024-01-01", "c1,milk,2024-01-08", "c1,eggs,2024-01-08",
     "c1,milk,2024-01-15", "c1,butter,2024-01-15"],
    # two customers who share no item: nothing for segments or neighbours to learn from
    [f"c{c},{i}{c},2024-01-{d:02d}" for c in (0, 1) for d in (1 + c, 8 + c, 15 + c, 22 + c)
     for i in ("milk", "bread")],
])
def test_tiny_files_are_scored_not_crashed(tmp_path, rows):
    path = _write(tmp_path / "tiny.csv", "customer_id,item_id,timestamp\n" + "\n".join(rows))
    result = _run("--interactions", path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["users"] >= 1
    assert 0.0 <= report["models"]["shopkeeper"]["ndcg@10"] <= 1.0


def test_epoch_seconds_next_to_milliseconds_is_an_error_naming_the_odd_line(tmp_path):
    # one millisecond value used to turn the whole column into milliseconds: every other
    # date became January 1970
    stamps = ["1493740800", "1493827200", "1493913600000", "1494000000"]
    with pytest.raises(click.BadParameter, match=r"line 4: timestamp '1493913600000' reads "
                                                 r"as epoch milliseconds"):
        _times(tmp_path, stamps)


@pytest.mark.parametrize("placeholder", ["0001-01-01", "1970-01-01", "9999-12-31 00:00:00"])
def test_placeholder_dates_among_real_ones_are_warned_about(tmp_path, capsys, placeholder):
    _times(tmp_path, ["2024-05-01", "2024-05-02", placeholder])
    err = capsys.readouterr().err
    assert "1 row(s) dated before 1980 or after 2099" in err
    assert placeholder[:10] in err


@pytest.mark.parametrize("stamps", [
    ["2024-05-01", "2024-05-02"],  # real dates
    ["1970-01-03", "1970-01-09", "1970-02-01"],  # a synthetic timeline, all early
    ["1", "8", "711"],  # a DAY column: its dates are 1970's by construction
])
def test_no_placeholder_warning_for_ordinary_or_synthetic_timelines(tmp_path, capsys, stamps):
    _times(tmp_path, stamps)
    assert "placeholder" not in capsys.readouterr().err
