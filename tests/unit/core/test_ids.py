"""Identifiers: prefix, time characters that sort as the time does, and 80 random bits."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from neutralize.core.ids import new_id, new_ids

AT = datetime(2026, 11, 25, 9, tzinfo=UTC)
ALPHABET = set("0123456789abcdefghjkmnpqrstvwxyz")


def test_an_id_is_the_prefix_ten_time_characters_and_sixteen_random_ones() -> None:
    made = new_id("ret", AT)
    prefix, rest = made.split("_")
    assert prefix == "ret"
    assert len(rest) == 26
    assert set(rest) <= ALPHABET


def test_the_time_characters_encode_the_millisecond_and_sort_with_it() -> None:
    millis = int(AT.timestamp() * 1000)
    expected = "".join(sorted(ALPHABET)[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    assert new_id("ord", AT)[4:14] == expected
    later = [new_id("ord", AT + timedelta(milliseconds=n)) for n in (1, 31, 32, 1_000, 86_400_000)]
    assert [i[4:14] for i in later] == sorted(i[4:14] for i in later)
    assert all(new_id("ord", AT)[4:14] < i[4:14] for i in later)


def test_the_random_characters_differ_and_use_the_whole_alphabet_evenly() -> None:
    made = [new_id("pay", AT)[14:] for _ in range(4_000)]
    assert len(set(made)) == len(made)
    counts = Counter("".join(made))  # 64,000 characters: about 2,000 of each
    assert set(counts) == ALPHABET
    assert all(1_700 < n < 2_300 for n in counts.values()), counts
    firsts = Counter(m[0] for m in made)  # the top character too: all 32 values, not a narrower range
    assert set(firsts) == ALPHABET


def test_ids_made_together_are_ids_of_that_millisecond_each_with_its_own_random_part() -> None:
    made = new_ids("cac", AT, 3_000)
    assert len(made) == len(set(made)) == 3_000
    assert {m[:14] for m in made} == {new_id("cac", AT)[:14]}
    counts = Counter("".join(m[14:] for m in made))  # 48,000 characters: about 1,500 of each
    assert set(counts) == ALPHABET
    assert all(1_250 < n < 1_750 for n in counts.values()), counts
    assert new_ids("cac", AT, 0) == []
