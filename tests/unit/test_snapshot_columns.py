"""The snapshot blob's columns as the book's storage: equal to loading every record.

A property test builds random price lines (duplicate keys, several pages, deltas that change,
move and delete lines) once into a ``PriceIndex`` the way a table load does and once into
``SnapshotLines`` from encoded frames, found through the publisher's directory (format 3) or
grouped at load (older blobs), and compares what every item's quote would see. The item book
is checked the same way against its records, the frame decoder against the records it was
given, and the directory against the rows it lists.
"""

from __future__ import annotations

import zlib
from array import array
from decimal import Decimal
from operator import attrgetter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.stores.price_data import Record
from shared.adapters.stores.price_snapshot import (
    GroupDirectory,
    SnapshotRejected,
    decode_columns,
    decode_frame,
    encode_frame,
)
from shared.adapters.stores.snapshot_directory import DirectoryBuilder, decode_directory
from shared.domain.pricing import CampaignPolicy, CustomerPricingContext, PriceIndex
from shared.domain.pricing.index import CustomerSources
from shared.services.pricing import records
from shared.services.pricing.grouped import GroupedRecords
from shared.services.pricing.item_book import ItemBook
from shared.services.pricing.snapshot_lines import SnapshotLines

_HEADER = 8
ITEMS = ["I1", "I2", "I3", "I|4"]
GROUPS = ["G1", "G2"]


def _frame(dataset: str, rows: list[tuple[str, Record]]) -> bytes:
    return encode_frame(dataset, rows)[_HEADER:]


def _directory(pages: list[tuple[str, list[tuple[str, Record]]]]) -> dict[str, GroupDirectory]:
    """The directory a publisher writing these (dataset, rows) pages would write, decoded."""
    builder = DirectoryBuilder()
    for dataset, rows in pages:
        builder.add(dataset, rows)
    return decode_directory(builder.encode()[_HEADER:])


def _line_record(key: str, asset: tuple[str, str], source: tuple[str, str], **f: object) -> Record:
    return [
        key, f.get("code", "P1"), source[0], source[1], asset[0], asset[1], "",
        f.get("unit", ""), str(f.get("minimum", "0")), f.get("amount", "Price"),
        str(f.get("price", "1.00")), str(f.get("discount", "0")), f.get("allow", True),
        f.get("start", ""), "", f.get("currency", ""),
    ]  # fmt: skip


assets = st.one_of(
    st.sampled_from(ITEMS).map(lambda n: ("Item", n)),
    st.sampled_from(GROUPS).map(lambda g: ("Item Discount Group", g)),
)
line_sources = st.sampled_from(
    [("All Customers", ""), ("Customer", "C1"), ("Customer Price Group", "PG"), ("Campaign", "M1")]
)
line_records = st.builds(
    _line_record,
    st.sampled_from([f"K{n}" for n in range(12)]),  # few keys: duplicates are common
    assets,
    line_sources,
    minimum=st.sampled_from(["0", "0", "5", "10.5"]),
    amount=st.sampled_from(["Price", "Discount", "Any"]),
    price=st.sampled_from(["1.00", "0.995", "7", "-1"]),  # -1: an invalid line, skipped
    discount=st.sampled_from(["0", "2.5", "10"]),
    allow=st.booleans(),
    start=st.sampled_from(["", "2025-01-01"]),
)
deltas = st.lists(st.tuples(st.booleans(), line_records), max_size=6)  # (delete?, record)


def _table_load(snapshot: list[Record], changes: list[tuple[bool, Record]]) -> PriceIndex:
    index = PriceIndex(
        line for record in snapshot if (line := records.parse_line(record)) is not None
    )
    for delete, record in changes:
        if delete:
            index.delete(record[0])
        elif (line := records.parse_line(record)) is not None:
            index.upsert(line)
    return index


def _columns_load(
    snapshot: list[Record], changes: list[tuple[bool, Record]], page: int, directory: bool
) -> SnapshotLines:
    pages = [
        [(r[0], r) for r in snapshot[start : start + page]]
        for start in range(0, len(snapshot), page)
    ]
    found_by = _directory([("lines", rows) for rows in pages])["lines"] if directory else None
    lines = SnapshotLines(cached_items=3, directory=found_by)
    for rows in pages:
        lines.add(decode_columns(_frame("lines", rows)))
    lines.finish()
    for delete, record in changes:
        if delete:
            lines.delete(record[0])
        elif (line := records.parse_line(record)) is not None:
            lines.upsert(line)
    return lines


@settings(max_examples=150, deadline=None)
@given(
    st.lists(line_records, max_size=30),
    deltas,
    st.integers(1, 7),
    st.lists(st.tuples(st.booleans(), line_records), max_size=3),
    st.booleans(),
)
def test_snapshot_lines_answer_what_a_full_index_answers(
    snapshot: list[Record],
    changes: list[tuple[bool, Record]],
    page: int,
    later_changes: list[tuple[bool, Record]],
    directory: bool,
) -> None:
    # One key per asset in the snapshot, as a publish writes it (the documented difference).
    asset_of: dict[str, tuple[str, str]] = {}
    snapshot = [r for r in snapshot if asset_of.setdefault(r[0], (r[4], r[5])) == (r[4], r[5])]
    full = _table_load(snapshot, changes)
    lazy = _columns_load(snapshot, changes, page, directory)
    customers = [
        CustomerPricingContext("C1", price_group="PG", active_campaigns=frozenset({"M1"})),
        CustomerPricingContext("C2"),
    ]
    for round_ in range(2):
        for customer in customers:
            for policy in CampaignPolicy:
                sources = CustomerSources(customer, policy)
                for item in ITEMS:
                    for group in ["", *GROUPS]:
                        ours = lazy.candidate_buckets(item, group, sources)
                        theirs = full.candidate_buckets(item, group, sources)
                        by_key = attrgetter("key")
                        assert [sorted(b, key=by_key) for b in ours] == [
                            sorted(b, key=by_key) for b in theirs
                        ]
                        for bucket in ours:  # the rules' early exit needs this order
                            minimums = [line.minimum_quantity for line in bucket]
                            assert minimums == sorted(minimums)
        assert len(lazy) == len(full)
        assert sorted(lazy, key=attrgetter("key")) == sorted(full, key=attrgetter("key"))
        for key in [f"K{n}" for n in range(12)]:
            assert lazy.get(key) == full.get(key)
            assert (key in lazy) == (key in full)
        if round_ == 0:  # deltas after quotes were served (and cached) must show too
            for delete, record in later_changes:
                if delete:
                    assert lazy.delete(record[0]) == full.delete(record[0])
                elif (line := records.parse_line(record)) is not None:
                    lazy.upsert(line)
                    full.upsert(line)


def test_frame_columns_give_back_every_record_as_written() -> None:
    rows: list[tuple[str, Record]] = [
        ("a", ["a", "", "ä€𝄞", True, ["M1", "M2"], "x"]),
        ("ab", ["ab", "b", "a", False]),  # shorter: padded with None in the frame
        ("", ["", "ab", "", None, [], "y"]),
    ]
    frame = decode_columns(_frame("profiles", rows))
    assert list(frame.rows()) == rows
    assert decode_frame(_frame("profiles", rows)) == ("profiles", list(frame.rows()))
    for value in ["a", "ab", "", "b", "ä€𝄞", "x", "zz", "ä"]:
        found = [frame.string(i) for i in frame.string_indexes(value)]
        # "x" sits in a column with a None, kept as JSON values, not among the strings.
        assert found == ([value] if value in {"a", "ab", "", "b", "ä€𝄞"} else [])


def test_a_frame_that_is_torn_or_points_outside_its_strings_is_rejected() -> None:
    good = b'{"d":"items","k":[0],"s":["X","PCS","1"],"c":[{"t":"s","v":[0]},{"t":"s","v":[1]}]}'
    assert len(decode_columns(zlib.compress(good), "1")) == 1  # the first release's frames
    for bad in (good.replace(b'"v":[1]', b'"v":[3]'), good.replace(b'"k":[0]', b'"k":[-1]')):
        with pytest.raises(SnapshotRejected, match="outside its strings"):
            decode_frame(zlib.compress(bad), "1")
    # Found when the row is read: a grouped dataset serves the group without it.
    grouped = GroupedRecords(0)
    grouped.add(decode_columns(zlib.compress(good.replace(b'"v":[1]', b'"v":[3]')), "1"))
    grouped.finish()
    assert "X" in grouped and grouped.rows("X") == []
    with pytest.raises(SnapshotRejected, match="outside its strings"):
        grouped.add(decode_columns(zlib.compress(good.replace(b'"v":[0]', b'"v":[7]')), "1"))
    with pytest.raises(SnapshotRejected, match="differ in length"):
        decode_columns(zlib.compress(good.replace(b'"v":[1]', b'"v":[1,2]')), "1")

    body = zlib.decompress(_frame("items", [("X", ["X", "PCS", "1", False])]))
    assert decode_columns(zlib.compress(body)).record(0) == ["X", "PCS", "1", False]
    for torn, reason in ((body[:-1], "shorter than its parts"), (body + b"\0", "left over")):
        with pytest.raises(SnapshotRejected, match=reason):
            decode_columns(zlib.compress(torn))
    with pytest.raises(SnapshotRejected, match="does not parse"):
        decode_columns(b"garbage")


@pytest.mark.parametrize("directory", [True, False], ids=["directory", "grouped at load"])
def test_grouped_records_keep_publish_order_within_a_group(directory: bool) -> None:
    pages = [[("k1", ["A", "1"]), ("k2", ["B", "2"])], [("k3", ["A", "3"]), ("k4", ["C", "4"])]]
    found_by = _directory([("units", page) for page in pages])["units"] if directory else None
    grouped = GroupedRecords(0, directory=found_by)
    for page in pages:
        grouped.add(decode_columns(_frame("units", page)))
    grouped.finish()
    assert grouped.rows("A") == [("k1", ["A", "1"]), ("k3", ["A", "3"])]
    assert grouped.rows("C") == [("k4", ["C", "4"])]
    assert grouped.rows("Z") == []
    assert grouped.rows_with_key("k3") == [("k3", ["A", "3"])]
    assert len(grouped) == 4 and set(grouped.groups()) == {"A", "B", "C"}


@pytest.mark.parametrize("directory", [True, False], ids=["directory", "grouped at load"])
def test_item_book_builds_items_from_their_records_units_and_changes(directory: bool) -> None:
    items: list[tuple[str, Record]] = [
        ("I1", ["I1", "PCS", "10.00", False]),
        ("I2", ["I2", "KG", "-1", False]),  # invalid: never served
        ("I3", ["I3", "PCS", "2.5", True]),
    ]
    units: list[tuple[str, Record]] = [
        ("I1|PCS", ["I1", "PCS", "1"]),
        ("I1|BOX", ["I1", "BOX", "12"]),
    ]
    found_by = _directory([("items", items), ("units", units)]) if directory else None
    book = ItemBook(cached_items=2, directory=found_by)
    book.add_items(decode_columns(_frame("items", items)))
    book.add_units(decode_columns(_frame("units", units)))
    book.finish()
    first = book["I1"]
    assert first.unit_price == Decimal("10.00")
    assert dict(first.sales_units_of_measure) == {"PCS": Decimal(1), "BOX": Decimal(12)}
    assert "I2" not in book and book.get("I2") is None
    assert book["I3"].blocked
    assert sorted(book) == ["I1", "I3"] and len(book) == 2

    book.set_unit("I1", "BOX", None)
    book.set_unit("I1", "PAL", "96")
    book.set_item("I3", None)
    book.set_item("I9", ["I9", "PCS", "1.25", False])
    assert dict(book["I1"].sales_units_of_measure) == {"PCS": Decimal(1), "PAL": Decimal(96)}
    assert "I3" not in book
    assert book["I9"].unit_price == Decimal("1.25")
    assert sorted(book) == ["I1", "I9"]
    with pytest.raises(KeyError):
        book["I3"]


def test_an_item_record_carries_its_category_and_an_older_four_field_record_has_none() -> None:
    """Backorders decide by item category (issue 19); records published before the category
    was added to an item have four fields and must still load, with no category."""
    units = {"PCS": Decimal(1)}
    current = records.item("1000", ["1000", "PCS", "12.50", False, "CHAIRS"], units)
    older = records.item("1000", ["1000", "PCS", "12.50", False], units)
    assert current is not None and current.category == "CHAIRS"
    assert older is not None and older.category == ""
    assert current.unit_price == older.unit_price == Decimal("12.50")


def test_the_directory_finds_every_value_by_binary_search() -> None:
    # Values that sort close to each other: prefixes, a separator, non-ASCII, the empty string.
    values = ["I1", "I10", "I1|0", "I2", "", "ä", "Z", "I1 ", "i1", "𝄞"]
    rows = [(f"k{n}", [value, str(n)]) for n, value in enumerate(values * 3)]
    pages = [("units", rows[start : start + 4]) for start in range(0, len(rows), 4)]
    units = _directory(pages)["units"]
    assert units.rows == len(rows)
    for value in values:
        listed = list(units.rows_of(value))
        assert [rows[n][1][0] for n in listed] == [value] * 3
        assert listed == sorted(listed)  # publish order within a value
    for absent in ["I", "I3", "I1|", "zz", "\x00"]:
        assert len(units.rows_of(absent)) == 0
    assert sorted(units.values()) == sorted(values)
    assert len(_directory([])["lines"].rows_of("I1")) == 0


def test_a_directory_that_does_not_fit_its_frames_serves_nothing_wrong() -> None:
    page: list[tuple[str, Record]] = [("k1", ["A", "1"]), ("k2", ["B", "2"])]
    # A directory of other rows: each row is checked against the group asked for.
    other = _directory([("units", [("k1", ["B", "1"]), ("k2", ["A", "2"])])])["units"]
    grouped = GroupedRecords(0, directory=other)
    grouped.add(decode_columns(_frame("units", page)))
    grouped.finish()
    assert grouped.rows("A") == [] and grouped.rows("B") == []
    # A directory of more rows than the frames hold is refused when the load finishes.
    longer = _directory([("units", [*page, ("k3", ["C", "3"])])])["units"]
    grouped = GroupedRecords(0, directory=longer)
    grouped.add(decode_columns(_frame("units", page)))
    with pytest.raises(SnapshotRejected, match="lists 3 rows, the frames hold 2"):
        grouped.finish()
    # As many rows as the frames hold, one of them past the frames.
    past = GroupDirectory(["A", "B"], array("I", [0, 1, 2]), array("I", [0, 2]))
    with pytest.raises(SnapshotRejected, match="names a row past the frames' 2"):
        past.check_rows(2)
    # Torn, padded or garbage directories do not decode.
    body = zlib.decompress(DirectoryBuilder().encode()[_HEADER:])
    for bad in (body[:-1], body + b"\0", b"garbage"):
        with pytest.raises(SnapshotRejected, match="the directory does not parse"):
            decode_directory(zlib.compress(bad))
