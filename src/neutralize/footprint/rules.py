"""Validation rules: what makes an activity row unusable, in a fixed order of precedence.

Each rule is a Polars condition that is true on the rows it rejects, with the code, field,
message and hint it reports. The first rule a row fails is the one reported. Rules are built
per activity type, so each row is checked only against the rules of its own type.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from neutralize.core.errors import ErrorCode
from neutralize.footprint.vocabulary import ACTIVITIES, ACTIVITY_TYPES, FACTOR_SETS, FIELDS, choices_for

UNKNOWN_FIELD_COLUMN = "_unknown_field"
GIVEN_COLUMN = "_given"  # one bit per vocabulary field the row gave a value for
FIELD_BITS = {name: 1 << position for position, name in enumerate(FIELDS)}
MALFORMED_COLUMN = "_malformed"
NUMERIC = ("number", "integer")
CODE_KINDS = ("country", "region")


@dataclass(frozen=True, eq=False)  # identity equality: rules are built once and cached
class Rule:
    """A check that fails a row: ``when`` is true on the rows it rejects."""

    when: pl.Expr
    code: ErrorCode
    field: str | None
    message: str
    hint: str | None = None

    def reported(self) -> tuple[str, str | None, str, str | None]:
        return (self.code.value, self.field, self.message, self.hint)


def is_typed(kind: str) -> bool:
    """Whether values of a field of this kind can be of the wrong type (and get a ``_bad_`` flag)."""
    return kind in (*NUMERIC, "boolean")


def given(name: str, present: frozenset[str]) -> pl.Expr:
    """True where the input gave ``name`` a value, even one of the wrong type."""
    if name not in present:
        return pl.lit(False)
    if not is_typed(FIELDS[name].kind):
        return pl.col(name).is_not_null()
    return pl.col(name).is_not_null() | pl.col(f"_bad_{name}")


def untyped_rules(present: frozenset[str]) -> list[Rule]:
    """Rules for rows without a usable type: malformed, missing or unknown type."""
    types = "one of: " + ", ".join(ACTIVITY_TYPES)
    return [
        Rule(
            pl.col(MALFORMED_COLUMN).is_not_null(),
            ErrorCode.INVALID_REQUEST,
            None,
            "each activity must be a JSON object",
            '{"type": "...", ...}',
        ),
        Rule(~given("type", present), ErrorCode.MISSING_FIELD, "type", "every activity needs a type", types),
        Rule(pl.lit(True), ErrorCode.UNKNOWN_ACTIVITY_TYPE, "type", "unknown activity type", types),
    ]


def type_rules(activity_type: str, present: frozenset[str], iso_codes: tuple[str, ...]) -> list[Rule]:
    """Every rule for rows of ``activity_type``, in the order of precedence of their codes."""
    rules = [
        Rule(
            pl.col(UNKNOWN_FIELD_COLUMN).is_not_null(),
            ErrorCode.UNKNOWN_FIELD,
            None,
            "the activity has a key the vocabulary does not know",
            "see docs/activities.md",
        ),
    ]
    rules += _structure_rules(activity_type, present)
    rules += _value_rules(activity_type, present)
    rules += _iso_rules(activity_type, present, iso_codes)
    rules += _conflict_rules(activity_type, present)
    rules += _reference_rules(activity_type)
    return rules


def _structure_rules(activity_type: str, present: frozenset[str]) -> list[Rule]:
    spec = ACTIVITIES[activity_type]
    rules = []
    for name in FIELDS:
        if name != "type" and name in present and name not in spec.allowed:
            allowed_in = ", ".join(t for t, other in ACTIVITIES.items() if name in other.allowed)
            rules.append(
                Rule(
                    (pl.col(GIVEN_COLUMN) & FIELD_BITS[name]) != 0,
                    ErrorCode.UNKNOWN_FIELD,
                    name,
                    f"{name} does not apply to a {activity_type} activity",
                    f"{name} applies to: {allowed_in}",
                )
            )
    for name in spec.required:
        rules.append(
            Rule(
                ~given(name, present),
                ErrorCode.MISSING_FIELD,
                name,
                f"a {activity_type} activity needs {name}",
                FIELDS[name].doc,
            )
        )
    for group in spec.one_of:
        count = pl.sum_horizontal([given(n, present).cast(pl.Int8) for n in group])
        rules.append(
            Rule(
                count == 0,
                ErrorCode.MISSING_FIELD,
                group[0],
                f"a {activity_type} activity needs one of {', '.join(group)}",
            )
        )
        for position, name in enumerate(group[1:], start=1):
            earlier = pl.any_horizontal([given(n, present) for n in group[:position]])
            rules.append(
                Rule(
                    given(name, present) & earlier,
                    ErrorCode.CONFLICTING_FIELDS,
                    name,
                    f"give only one of {', '.join(group)}",
                )
            )
    return rules


def _value_rules(activity_type: str, present: frozenset[str]) -> list[Rule]:
    allowed = ACTIVITIES[activity_type].allowed
    rules: list[Rule] = []
    for name, spec in FIELDS.items():
        if name not in present or name not in allowed or name == "type":
            continue
        column = pl.col(name)
        if spec.kind in NUMERIC:
            rules += _number_rules(name)
        elif spec.kind == "boolean":
            rules.append(
                Rule(pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE, name, f"{name} must be true or false")
            )
        elif spec.kind == "choice":
            choices = choices_for(activity_type, name)
            rules.append(
                Rule(
                    column.is_not_null() & ~column.is_in(choices),
                    ErrorCode.UNKNOWN_VALUE,
                    name,
                    f"unknown {name} for a {activity_type} activity",
                    "one of: " + ", ".join(choices),
                )
            )
    return rules


def _number_rules(name: str) -> list[Rule]:
    spec = FIELDS[name]
    column = pl.col(name)
    assert spec.minimum is not None and spec.maximum is not None, name
    minimum, maximum = float(spec.minimum), float(spec.maximum)
    too_low = column < minimum if spec.min_inclusive else column <= minimum
    rules = [
        Rule(pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE, name, f"{name} must be a number"),
        Rule(
            column.is_nan() | column.is_infinite(),
            ErrorCode.NOT_FINITE,
            name,
            f"{name} must be a finite number",
            spec.bounds_text(),
        ),
    ]
    if spec.kind == "integer":
        rules.append(
            Rule(column != column.floor(), ErrorCode.WRONG_TYPE, name, f"{name} must be a whole number")
        )
    rules.append(
        Rule(
            too_low | (column > maximum),
            ErrorCode.OUT_OF_RANGE,
            name,
            f"{name} is out of range",
            f"{name} must be {spec.bounds_text()}",
        )
    )
    return rules


def _iso_rules(activity_type: str, present: frozenset[str], iso_codes: tuple[str, ...]) -> list[Rule]:
    """Codes must exist in ISO 3166 (countries and their subdivisions)."""
    allowed = ACTIVITIES[activity_type].allowed
    return [
        Rule(
            pl.col(name).is_not_null() & ~pl.col(name).is_in(iso_codes),
            ErrorCode.UNKNOWN_REGION,
            name,
            f"{name} is not an ISO 3166 code",
            "an ISO 3166-1 alpha-2 country (CN) or ISO 3166-2 subdivision (CN-SC)",
        )
        for name, spec in FIELDS.items()
        if spec.kind in CODE_KINDS and name in present and name in allowed
    ]


def _conflict_rules(activity_type: str, present: frozenset[str]) -> list[Rule]:
    if activity_type == "taxi":
        vehicle_basis = pl.col("basis").fill_null("vehicle") == "vehicle"
        return [
            Rule(
                vehicle_basis & given("passengers", present),
                ErrorCode.CONFLICTING_FIELDS,
                "passengers",
                "passengers apply only with basis 'passenger': a vehicle-km factor covers the whole taxi",
                'set "basis": "passenger" or drop passengers',
            ),
        ]
    if activity_type == "freight":
        empty = pl.col("load") == "empty"
        return [
            Rule(
                empty & given("tonnes", present),
                ErrorCode.CONFLICTING_FIELDS,
                "tonnes",
                "an empty vehicle carries no tonnes",
                "drop tonnes, or choose another load",
            ),
            Rule(
                ~empty.fill_null(False) & ~given("tonnes", present),
                ErrorCode.MISSING_FIELD,
                "tonnes",
                "a laden freight activity needs tonnes",
                FIELDS["tonnes"].doc,
            ),
        ]
    return []


def _reference_rules(activity_type: str) -> list[Rule]:
    factor_set = pl.col("factor_set")
    rules = [
        Rule(
            factor_set.is_not_null() & ~factor_set.is_in(FACTOR_SETS),
            ErrorCode.UNKNOWN_FACTOR_SET,
            "factor_set",
            "unknown factor set",
            "one of: " + ", ".join(FACTOR_SETS),
        ),
    ]
    if activity_type == "flight":
        rules += [
            Rule(
                pl.col("origin").is_not_null() & pl.col("_o_lat").is_null(),
                ErrorCode.UNKNOWN_AIRPORT,
                "origin",
                "unknown IATA airport code",
            ),
            Rule(
                pl.col("destination").is_not_null() & pl.col("_d_lat").is_null(),
                ErrorCode.UNKNOWN_AIRPORT,
                "destination",
                "unknown IATA airport code",
            ),
            Rule(
                pl.col("origin") == pl.col("destination"),
                ErrorCode.SAME_AIRPORT,
                "destination",
                "origin and destination are the same airport",
                "a flight needs two different airports",
            ),
        ]
    return rules
