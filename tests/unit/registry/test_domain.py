"""The registry's pure core: serial-block arithmetic, buffer shares, serial strings, hash chains and
Merkle roots. No database, no clock."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neutralize.core.canonical import canonical_json as canonical
from neutralize.registry.domain import (
    GENESIS,
    BlockState,
    Span,
    entry_hash,
    label_phrases,
    merkle_root,
    parse_serial,
    serial,
    split_share,
    take_lowest,
    vintage_of,
)
from neutralize.registry.schemas import MAX_KG

MAX_UNIT = 10**12 - 1  # the largest unit a 12-digit serial can name


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@st.composite
def spans(draw: st.DrawFn, max_unit: int = 10_000) -> Span:
    start = draw(st.integers(1, max_unit))
    return Span(start, draw(st.integers(start, max_unit)))


@st.composite
def span_and_part(draw: st.DrawFn) -> tuple[Span, Span]:
    whole = draw(spans())
    start = draw(st.integers(whole.start, whole.end))
    return whole, Span(start, draw(st.integers(start, whole.end)))


@st.composite
def disjoint_spans(draw: st.DrawFn) -> list[Span]:
    """A few disjoint spans (gaps of 0 allowed: adjacent spans stay separate), in random order."""
    result, next_free = [], 1
    for gap, size in draw(
        st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50)), min_size=1, max_size=8)
    ):
        start = next_free + gap
        result.append(Span(start, start + size - 1))
        next_free = start + size
    return draw(st.permutations(result))


# --- Span ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "size"), [(1, 1, 1), (5, 14, 10), (1, 10_000, 10_000)])
def test_a_span_counts_both_ends(start: int, end: int, size: int) -> None:
    assert Span(start, end).size == size


@pytest.mark.parametrize(("start", "end"), [(0, 5), (-3, 2), (5, 4), (0, 0)])
def test_a_span_starts_at_unit_one_and_never_runs_backwards(start: int, end: int) -> None:
    with pytest.raises(ValueError, match="not a span"):
        Span(start, end)


@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        (Span(10, 20), True),  # itself
        (Span(10, 10), True),  # first unit
        (Span(20, 20), True),  # last unit
        (Span(12, 18), True),
        (Span(9, 15), False),  # sticks out on the left
        (Span(15, 21), False),  # sticks out on the right
        (Span(9, 21), False),  # covers it
        (Span(30, 40), False),
    ],
)
def test_contains_means_every_unit_of_the_other_span_is_inside(inner: Span, expected: bool) -> None:
    assert Span(10, 20).contains(inner) is expected


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (Span(20, 30), True),  # shares unit 20
        (Span(1, 10), True),  # shares unit 10
        (Span(12, 13), True),
        (Span(1, 100), True),
        (Span(21, 30), False),  # adjacent: no shared unit
        (Span(1, 9), False),
    ],
)
def test_overlaps_means_at_least_one_shared_unit_either_way(other: Span, expected: bool) -> None:
    assert Span(10, 20).overlaps(other) is expected
    assert other.overlaps(Span(10, 20)) is expected


@pytest.mark.parametrize(
    ("part", "left_over"),
    [
        (Span(18, 20), [Span(10, 17)]),  # taken from the right end: the left part stays
        (Span(10, 12), [Span(13, 20)]),  # taken from the left end: the right part stays
        (Span(14, 15), [Span(10, 13), Span(16, 20)]),  # from the middle: both sides stay
        (Span(10, 20), []),  # the whole span: nothing stays
        (Span(10, 10), [Span(11, 20)]),
        (Span(20, 20), [Span(10, 19)]),
    ],
)
def test_without_leaves_what_is_not_taken(part: Span, left_over: list[Span]) -> None:
    assert Span(10, 20).without(part) == left_over


@pytest.mark.parametrize("part", [Span(9, 12), Span(18, 21), Span(1, 5), Span(5, 30)])
def test_without_refuses_a_part_that_is_not_inside(part: Span) -> None:
    with pytest.raises(ValueError, match="is not inside"):
        Span(10, 20).without(part)


@given(span_and_part())
def test_without_preserves_size_and_never_overlaps_the_part(case: tuple[Span, Span]) -> None:
    whole, part = case
    rest = whole.without(part)
    assert sum(r.size for r in rest) + part.size == whole.size
    assert all(whole.contains(r) and not r.overlaps(part) for r in rest)
    assert rest == sorted(rest)
    assert len(rest) <= 2
    if len(rest) == 2:
        assert not rest[0].overlaps(rest[1])


# --- take_lowest -----------------------------------------------------------------------------------


def test_take_lowest_takes_across_spans_in_serial_order_whatever_order_they_come_in() -> None:
    taken = take_lowest([Span(100, 109), Span(1, 5), Span(50, 52)], 12)
    assert taken == [Span(1, 5), Span(50, 52), Span(100, 103)]


def test_take_lowest_with_an_exact_fit_takes_every_span_whole() -> None:
    given_spans = [Span(7, 9), Span(1, 3)]
    assert take_lowest(given_spans, 6) == [Span(1, 3), Span(7, 9)]


def test_take_lowest_takes_part_of_the_first_span_when_it_is_enough() -> None:
    assert take_lowest([Span(1, 10_000)], 340) == [Span(1, 340)]


def test_take_lowest_refuses_more_than_the_spans_hold() -> None:
    with pytest.raises(ValueError, match="only 6 of 7 units available"):
        take_lowest([Span(1, 3), Span(7, 9)], 7)


def test_take_lowest_from_nothing_refuses() -> None:
    with pytest.raises(ValueError, match="only 0 of 1"):
        take_lowest([], 1)


@pytest.mark.parametrize("quantity", [0, -1])
def test_take_lowest_refuses_a_quantity_that_is_not_positive(quantity: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        take_lowest([Span(1, 10)], quantity)


@given(disjoint_spans(), st.data())
def test_take_lowest_takes_exactly_the_quantity_and_the_lowest_units_first(
    given_spans: list[Span], data: st.DataObject
) -> None:
    total = sum(s.size for s in given_spans)
    quantity = data.draw(st.integers(1, total))
    taken = take_lowest(given_spans, quantity)
    units_taken = [u for s in taken for u in range(s.start, s.end + 1)]
    all_units = sorted(u for s in given_spans for u in range(s.start, s.end + 1))
    assert units_taken == all_units[:quantity]  # exactly the quantity, lowest first, in order
    assert all(any(g.contains(t) for g in given_spans) for t in taken)  # each part inside one span


@given(disjoint_spans(), st.integers(1, 50))
def test_take_lowest_refuses_any_quantity_beyond_what_is_held(given_spans: list[Span], extra: int) -> None:
    with pytest.raises(ValueError):
        take_lowest(given_spans, sum(s.size for s in given_spans) + extra)


# --- split_share -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "permille", "expected"),
    [
        (10_000, 200, (8_000, 2_000)),
        (1_001, 150, (850, 151)),  # 150.15 kg of buffer rounds up to 151
        (1, 1, (0, 1)),  # 0.001 kg rounds up to a whole kg
        (999, 1, (998, 1)),  # 0.999 kg rounds up to 1
        (1_000, 1, (999, 1)),  # exactly 1 kg: nothing to round
        (1_001, 1, (999, 2)),  # 1.001 kg rounds up to 2
        (10_000, 0, (10_000, 0)),
        (10_000, 1_000, (0, 10_000)),
        (0, 500, (0, 0)),
    ],
)
def test_split_share_rounds_the_buffer_up(total: int, permille: int, expected: tuple[int, int]) -> None:
    assert split_share(total, permille) == expected


@pytest.mark.parametrize("permille", [-1, 1_001, 10_000])
def test_split_share_refuses_a_share_outside_0_to_1000_permille(permille: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 1000"):
        split_share(1_000, permille)


@given(st.integers(0, MAX_KG), st.integers(0, 1_000))
def test_split_share_keeps_every_unit_and_the_buffer_is_the_smallest_whole_kg_covering_the_share(
    total: int, permille: int
) -> None:
    kept, buffer = split_share(total, permille)
    assert kept + buffer == total
    assert kept >= 0 and buffer >= 0
    # buffer >= total * permille / 1000 > buffer - 1, in integers
    assert buffer * 1_000 >= total * permille > (buffer - 1) * 1_000


# --- serial strings --------------------------------------------------------------------------------


def test_a_serial_names_project_vintage_and_zero_padded_units() -> None:
    text = serial("CDCER-0001", 2025, Span(1, 340))
    assert text == "NZ-CDCER-0001-2025-000000000001-000000000340"
    assert parse_serial(text) == ("CDCER-0001", 2025, Span(1, 340))


def test_the_largest_twelve_digit_serial_round_trips() -> None:
    text = serial("X1", 2100, Span(MAX_UNIT, MAX_UNIT))
    assert text == "NZ-X1-2100-999999999999-999999999999"
    assert parse_serial(text) == ("X1", 2100, Span(MAX_UNIT, MAX_UNIT))


def test_a_serial_is_read_case_insensitively_and_without_surrounding_space() -> None:
    assert parse_serial("  nz-cdcer-0001-2025-000000000001-000000000340\n") == (
        "CDCER-0001",
        2025,
        Span(1, 340),
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "NZ",
        "XX-CDCER-0001-2025-000000000001-000000000340",  # wrong prefix
        "NZ-CDCER-0001-2025-000000000001",  # no last unit
        "NZ-CDCER-0001-25-000000000001-000000000340",  # two-digit vintage
        "NZ-CDCER-0001-2025-1-340",  # units not padded
        "NZ-CDCER-0001-2025-0000000000001-000000000340",  # 13 digits
        "NZ-CDCER-0001-2025-00000000000A-000000000340",  # not a digit
        "NZ-CDCER_0001-2025-000000000001-000000000340",  # underscore in the code
        "NZ--2025-000000000001-000000000340",  # no project code
        "NZ-CDCER--0001-2025-000000000001-000000000340",  # empty code part
        "NZ-CDCER-0001-2025-000000000001-000000000340-X",  # trailing text
        "NZ-CDCER-0001-2025-000000000001-000000000340 000000000341",
        "NZ-CDCER-0001-2025-000000000340-000000000001",  # runs backwards
        "NZ-CDCER-0001-2025-000000000000-000000000340",  # unit 0 does not exist
    ],
)
def test_a_malformed_serial_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_serial(text)


project_codes = st.from_regex(r"\A[A-Z0-9]{1,8}(-[A-Z0-9]{1,8}){0,3}\Z")


@given(project_codes, st.integers(1000, 9999), spans(max_unit=MAX_UNIT))
def test_serial_and_parse_serial_round_trip(code: str, vintage: int, span: Span) -> None:
    assert parse_serial(serial(code, vintage, span)) == (code, vintage, span)


def test_every_unit_the_schema_allows_gets_a_serial_that_parses_back() -> None:
    span = Span(1, MAX_KG)  # one verification of MAX_KG kg, the most IssueCmd accepts
    try:
        text = serial("BIG-1", 2025, span)
    except ValueError:
        return  # refusing is fine too
    assert parse_serial(text) == ("BIG-1", 2025, span)


# --- canonical form, hash chains, Merkle roots -----------------------------------------------------


def test_canonical_form_sorts_keys_drops_spaces_and_keeps_unicode() -> None:
    assert canonical({"b": 1, "a": [1, 2], "名": "张三"}) == '{"a":[1,2],"b":1,"名":"张三"}'.encode()


def test_entry_hash_is_sha256_over_the_previous_hash_and_the_canonical_payload() -> None:
    payload = {"op": "issue", "kg": 10_000}
    expected = hashlib.sha256(GENESIS.encode() + b"\n" + b'{"kg":10000,"op":"issue"}').hexdigest()
    assert entry_hash(GENESIS, payload) == expected


def test_entry_hash_does_not_depend_on_key_order() -> None:
    assert entry_hash(GENESIS, {"a": 1, "b": 2}) == entry_hash(GENESIS, json.loads('{"b": 2, "a": 1}'))


def test_entry_hashes_chain_each_entry_to_all_before_it() -> None:
    # given a chain of three entries
    payloads = [{"seq": 1}, {"seq": 2}, {"seq": 3}]
    first = entry_hash(GENESIS, payloads[0])
    second = entry_hash(first, payloads[1])
    third = entry_hash(second, payloads[2])
    # when the first entry is altered, every later hash changes
    altered_first = entry_hash(GENESIS, {"seq": 1, "x": 0})
    altered_second = entry_hash(altered_first, payloads[1])
    assert altered_first != first
    assert altered_second != second
    assert entry_hash(altered_second, payloads[2]) != third
    # and swapping two entries changes the hashes too
    assert entry_hash(entry_hash(GENESIS, payloads[1]), payloads[0]) != second
    assert len({first, second, third}) == 3 and all(len(x) == 64 for x in (first, second, third))


def test_the_merkle_root_of_nothing_is_the_hash_of_nothing() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


def test_the_merkle_root_of_one_leaf_is_its_leaf_hash() -> None:
    assert merkle_root([b"a"]) == h(b"\x00a").hex()


def test_the_merkle_root_of_two_leaves_hashes_them_as_a_node() -> None:
    assert merkle_root([b"a", b"b"]) == h(b"\x01" + h(b"\x00a") + h(b"\x00b")).hex()


def test_an_odd_last_node_is_carried_up_unpaired() -> None:
    ab = h(b"\x01" + h(b"\x00a") + h(b"\x00b"))
    assert merkle_root([b"a", b"b", b"c"]) == h(b"\x01" + ab + h(b"\x00c")).hex()
    e = h(b"\x00e")  # five leaves: e is carried up twice
    cd = h(b"\x01" + h(b"\x00c") + h(b"\x00d"))
    expected = h(b"\x01" + h(b"\x01" + ab + cd) + e)
    assert merkle_root(iter([b"a", b"b", b"c", b"d", b"e"])) == expected.hex()


def test_the_merkle_root_depends_on_the_order_of_the_leaves() -> None:
    assert merkle_root([b"a", b"b"]) != merkle_root([b"b", b"a"])
    assert merkle_root([b"a", b"b", b"c"]) != merkle_root([b"a", b"c", b"b"])


def test_a_leaf_cannot_pose_as_an_inner_node() -> None:
    # a leaf whose bytes are the two child hashes does not give the parent's root (domain separation)
    forged = h(b"\x00a") + h(b"\x00b")
    assert merkle_root([forged]) != merkle_root([b"a", b"b"])


@given(st.lists(st.binary(max_size=20), min_size=1, max_size=20), st.data())
def test_changing_any_one_leaf_changes_the_merkle_root(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    changed = [*leaves]
    changed[index] = leaves[index] + b"!"
    assert merkle_root(changed) != merkle_root(leaves)


# --- small helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "final"),
    [
        (BlockState.HELD, False),
        (BlockState.RESERVED, False),
        (BlockState.BUFFER, False),
        (BlockState.RETIRED, True),
        (BlockState.CANCELLED, True),
        (BlockState.EXPORTED, True),
    ],
)
def test_retired_cancelled_and_exported_states_are_final(state: BlockState, final: bool) -> None:
    assert state.is_final is final


def test_a_vintage_is_the_year_its_monitoring_period_ends() -> None:
    assert vintage_of(date(2025, 12, 31)) == 2025
    assert vintage_of(date(2026, 1, 1)) == 2026


def test_a_mirrored_projects_labels_claim_only_what_its_home_data_says() -> None:
    # a native project's facts are the registry's own: credit type, nature, and no adjustment unless made
    native = label_phrases(standard="CCER", vintage=2024, credit_type="removal", nature_based=True, labels={})
    assert native == ["CCER", "vintage 2024", "removal", "nature-based", "no corresponding adjustment"]
    # a mirrored one's credit type, nature and adjustment are not stated unless its labels say them
    mirrored = label_phrases(
        standard="VCS", vintage=2020, credit_type=None, nature_based=None, labels={}, native=False
    )
    assert mirrored == ["VCS", "vintage 2020"]
    adjusted = label_phrases(
        standard="GS",
        vintage=2024,
        credit_type=None,
        nature_based=None,
        labels={"corresponding_adjustment": True},
        native=False,
    )
    assert adjusted == ["GS", "vintage 2024", "corresponding adjustment applied"]
