"""The public reference cases (tests/data/footprint_public.csv, copied from /work/shared/cases).

Each case gives an activity, the kg CO2e that follows from the published factor, and a tolerance
in percent (wider for flights, whose distance rules differ between methods).
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from neutralize.footprint.service import calculate
from tests.unit.footprint.oracle import oracle_kg

CASES_FILE = Path(__file__).parents[2] / "data" / "footprint_public.csv"


def _cases() -> list[dict[str, str]]:
    with CASES_FILE.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


CASES = _cases()


def _within(got: Decimal, expected: Decimal, tolerance_pct: Decimal) -> bool:
    return abs(got - expected) <= abs(expected) * tolerance_pct / 100


def test_the_case_file_is_complete() -> None:
    # given: the copied case file
    # when: its rows are read
    ids = [case["case_id"] for case in CASES]

    # then: all ten public cases are there, once each
    assert ids == [f"P{n:02d}" for n in range(1, 11)]


@pytest.mark.parametrize("case", CASES, ids=[case["case_id"] for case in CASES])
def test_the_engine_reproduces_the_public_case(case: dict[str, str]) -> None:
    # given: a public case's activity and its expected kg CO2e
    activity = json.loads(case["inputs_json"])
    expected, tolerance = Decimal(case["expected_kg_co2e"]), Decimal(case["tolerance_pct"])

    # when: the engine computes it
    (line,) = calculate(activities=[activity]).lines

    # then: the result is within the case's tolerance
    assert _within(line.kg_co2e, expected, tolerance), (line.kg_co2e, expected, tolerance)


@pytest.mark.parametrize("case", CASES, ids=[case["case_id"] for case in CASES])
def test_the_oracle_reproduces_the_public_case(case: dict[str, str]) -> None:
    # given: a public case's activity and its expected kg CO2e
    activity = json.loads(case["inputs_json"])
    expected, tolerance = Decimal(case["expected_kg_co2e"]), Decimal(case["tolerance_pct"])

    # when: the oracle computes it
    got = oracle_kg(activity)

    # then: the oracle is within the case's tolerance too, so it cannot drift from the published factors
    assert _within(got, expected, tolerance), (got, expected, tolerance)
