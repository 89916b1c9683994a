"""The footprint engine: activities in, one line of kg CO2e per activity out, column-wise.

Single requests and batch files take the same path: a table of raw activity fields (strings
from JSON or CSV, or typed Parquet columns) is coerced, validated rule by rule in a fixed order
of precedence, keyed, joined against the resolution table and multiplied. The engine computes
in float64 and rounds once, at its output, to 6 decimal places half to even; the factor values
themselves are exact in the catalogue. A row that fails keeps its place and gets an error code,
the field at fault and a hint; the other rows still compute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from neutralize.core.errors import ErrorCode
from neutralize.footprint.tables import EngineTables
from neutralize.footprint.vocabulary import (
    ACTIVITIES,
    ACTIVITY_TYPES,
    FACTOR_SETS,
    FIELDS,
    MILES_TO_KM,
    choices_for,
)

EARTH_RADIUS_KM = 6371.0
MICRO = 1_000_000
_TIE_ULPS = 4 * 2.0**-52  # four units in the last place of a float64, relative
UNKNOWN_FIELD_COLUMN = "_unknown_field"
MALFORMED_COLUMN = "_malformed"
TYPE_CODE_COLUMN = "_t"
TYPE_CODES = {name: code for code, name in enumerate(ACTIVITY_TYPES)}
_SET_CODES = {name: code for code, name in enumerate(("", *FACTOR_SETS))}
# Keys of resolution problems (see _resolution_problem).
_FROM_TABLE, _NOT_COVERED, _NO_FACTOR = 1, 1_000, 2_000
ROW = "row"

_MILES = float(MILES_TO_KM)
_HOTEL_SUBDIVISIONS = ("GB-LND",)
_NUMERIC = ("number", "integer")
_DISTINCT_CHECK_LIMIT = 100_000

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    ROW: pl.Int64(),
    "ref": pl.String(),
    "type": pl.String(),
    "factor_set": pl.Categorical(),
    "factor_id": pl.Categorical(),
    "kg_co2e": pl.Decimal(38, 6),
    "amount": pl.Float64(),
    "amount_unit": pl.Categorical(),
    "unit_multiplier": pl.Categorical(),
    "distance_km": pl.Float64(),
    "uncertainty_low_kg": pl.Decimal(38, 6),
    "uncertainty_high_kg": pl.Decimal(38, 6),
    "notes": pl.Categorical(),
    "geography_differs": pl.Boolean(),
    "year_differs": pl.Boolean(),
    "error_code": pl.String(),
    "error_field": pl.String(),
    "error_message": pl.String(),
    "error_hint": pl.String(),
    "error_value": pl.String(),
}


@dataclass(frozen=True)
class Rule:
    """A check that fails a row: ``when`` is true on the rows it rejects."""

    when: pl.Expr
    code: ErrorCode
    field: str | None
    message: str
    hint: str | None = None

    def reported(self) -> tuple[str, str | None, str, str | None]:
        return (self.code.value, self.field, self.message, self.hint)


def evaluate(raw: pl.DataFrame, tables: EngineTables) -> pl.DataFrame:
    """Compute every row of ``raw``; returns one output row per input row, in order."""
    present = set(raw.columns)
    frame = raw.lazy()
    if ROW not in present:
        frame = frame.with_row_index(ROW, offset=0).with_columns(pl.col(ROW).cast(pl.Int64))
    frame = _coerce(frame, raw)
    frame = _with_airports(frame, tables)
    frame = _with_first_failure(frame, frozenset(present), tables)
    frame = _with_defaults(frame)
    frame = _with_keys_and_amount(frame)
    frame = _resolve(frame, tables, hotel_fallback="fallback_country" in present)
    frame = _with_emissions(frame)
    return frame.select([pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items()]).collect()


def activities_frame(records: Sequence[object]) -> pl.DataFrame:
    """The raw table for activities given as JSON values: one text column per key used.

    Anything that is not a JSON object keeps its row and is reported as malformed.
    """
    objects = [r if isinstance(r, Mapping) else {} for r in records]
    used = [name for name in FIELDS if any(name in record for record in objects)]
    data: dict[str, list[str | None]] = {
        name: [_as_text(record.get(name)) for record in objects] for name in used
    }
    data[UNKNOWN_FIELD_COLUMN] = [next((k for k in record if k not in FIELDS), None) for record in objects]
    data[MALFORMED_COLUMN] = [None if isinstance(r, Mapping) else "not a JSON object" for r in records]
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


def _as_text(value: object) -> str | None:
    # JSON scalars become the text a CSV cell would hold, so both take the same path;
    # objects and arrays become text no field accepts.
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return "<" + type(value).__name__ + ">"


def first_match(cases: Sequence[tuple[pl.Expr, pl.Expr]], default: pl.Expr) -> pl.Expr:
    """``when c1 then v1 when c2 then v2 ... otherwise default``: the value of the first true case."""
    chain: Any = pl
    for condition, value in cases:
        chain = chain.when(condition).then(value)
    result: pl.Expr = chain.otherwise(default) if cases else default
    return result


# --- coercion -------------------------------------------------------------------------------


def _coerce(frame: pl.LazyFrame, raw: pl.DataFrame) -> pl.LazyFrame:
    """Typed columns for every vocabulary field; ``_bad_<field>`` marks values of the wrong type."""
    columns: list[pl.Expr] = []
    for name, spec in FIELDS.items():
        if name not in raw.columns:
            columns.append(pl.lit(None, dtype=_dtype(spec.kind)).alias(name))
            continue
        column = pl.col(name)
        is_text = raw.schema[name] == pl.String
        if spec.kind in _NUMERIC:
            typed = (column.str.strip_chars() if is_text else column).cast(pl.Float64, strict=False)
        elif spec.kind == "boolean":
            typed = _boolean(column) if is_text else column.cast(pl.Boolean, strict=False)
        else:
            columns.append(_normalised_text(name, raw[name]).alias(name))
            continue
        columns.append(typed.alias(name))
        columns.append((column.is_not_null() & typed.is_null()).alias(f"_bad_{name}"))
    for reserved in (UNKNOWN_FIELD_COLUMN, MALFORMED_COLUMN):
        if reserved not in raw.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(reserved))
    type_code = pl.col("type").replace_strict(TYPE_CODES, default=None, return_dtype=pl.Int8)
    return frame.with_columns(columns).with_columns(type_code.alias(TYPE_CODE_COLUMN))


def _normalised_text(name: str, values: pl.Series) -> pl.Expr:
    """Codes upper case, vocabulary words lower case, both trimmed; ``ref`` as given.

    Most files are already clean: when every distinct value is, the column is used as it is.
    """
    column = pl.col(name).cast(pl.String)
    if name == "ref":
        return column
    kind = FIELDS[name].kind
    upper = kind in ("airport", "country", "region") or name == "factor_set"

    def normalise(text: pl.Expr) -> pl.Expr:
        trimmed = text.str.strip_chars()
        return trimmed.str.to_uppercase() if upper else trimmed.str.to_lowercase()

    distinct = values.cast(pl.String).drop_nulls().unique()
    if distinct.len() <= _DISTINCT_CHECK_LIMIT and distinct.equals(
        distinct.to_frame().select(normalise(pl.col(distinct.name))).to_series(), check_names=False
    ):
        return column
    return normalise(column)


def _dtype(kind: str) -> pl.DataType:
    if kind in _NUMERIC:
        return pl.Float64()
    if kind == "boolean":
        return pl.Boolean()
    return pl.String()


def _boolean(raw: pl.Expr) -> pl.Expr:
    text = raw.str.strip_chars().str.to_lowercase()
    return (
        pl.when(text.is_in(["true", "1", "yes"]))
        .then(True)
        .when(text.is_in(["false", "0", "no"]))
        .then(False)
        .otherwise(None)
    )


def is_type(*names: str) -> pl.Expr:
    """True on rows of the given activity types (compared as small integer codes: cheap)."""
    codes = [TYPE_CODES[name] for name in names]
    column = pl.col(TYPE_CODE_COLUMN)
    return column == codes[0] if len(codes) == 1 else column.is_in(codes)


def _present(name: str, present: frozenset[str]) -> pl.Expr:
    """True where the input gave ``name`` a value (even one of the wrong type)."""
    if name not in present:
        return pl.lit(False)
    if FIELDS[name].kind not in (*_NUMERIC, "boolean"):
        return pl.col(name).is_not_null()  # text cannot be of the wrong type
    return pl.col(name).is_not_null() | pl.col(f"_bad_{name}")


# --- flights ----------------------------------------------------------------------------------


def _with_airports(frame: pl.LazyFrame, tables: EngineTables) -> pl.LazyFrame:
    """Coordinates and countries of both ends, and the great-circle distance (3 decimals, km)."""
    return frame.with_columns(_airport_columns(tables)).with_columns(_flight_km=_great_circle_km())


@lru_cache(maxsize=4)
def _airport_columns(tables: EngineTables) -> list[pl.Expr]:
    airports = tables.airports
    rows = {code: row for row, code in enumerate(airports["iata"])}
    columns = []
    for end, prefix in (("origin", "_o"), ("destination", "_d")):
        row = pl.col(end).replace_strict(rows, default=None, return_dtype=pl.UInt32)
        for field in ("lat", "lon", "country"):
            columns.append(pl.lit(airports[field]).gather(row).alias(f"{prefix}_{field}"))
    return columns


def _great_circle_km() -> pl.Expr:
    lat1, lat2 = pl.col("_o_lat").radians(), pl.col("_d_lat").radians()
    dlat = lat2 - lat1
    dlon = (pl.col("_d_lon") - pl.col("_o_lon")).radians()
    a = (dlat / 2).sin().pow(2) + lat1.cos() * lat2.cos() * (dlon / 2).sin().pow(2)
    return (2 * EARTH_RADIUS_KM * a.sqrt().arcsin()).round(3)


# --- validation -------------------------------------------------------------------------------


def _with_first_failure(frame: pl.LazyFrame, present: frozenset[str], tables: EngineTables) -> pl.LazyFrame:
    """Error code, field, message and hint of the first rule each row fails (null if none)."""
    first_failure, reported = _failure_expressions(present, tables)
    return frame.with_columns(first_failure.alias("_rule")).with_columns(reported)


@lru_cache(maxsize=64)
def _failure_expressions(present: frozenset[str], tables: EngineTables) -> tuple[pl.Expr, list[pl.Expr]]:
    # Building the expressions costs more than evaluating them on a small request: keep them.
    rules = _rules(present, tables)
    conditions = [rule.when.fill_null(False) for rule in rules]
    cases = [(condition, pl.lit(i, dtype=pl.Int16)) for i, condition in enumerate(conditions)]
    first_failure = first_match(cases, pl.lit(None, dtype=pl.Int16))
    reported = []
    for position, column in enumerate(("error_code", "error_field", "error_message", "error_hint")):
        values = {i: rule.reported()[position] for i, rule in enumerate(rules)}
        lookup = pl.col("_rule").replace_strict(values, default=None, return_dtype=pl.String)
        reported.append(lookup.alias(column))
    # The one rule without a fixed field names the unknown key itself.
    reported[1] = reported[1].fill_null(pl.col(UNKNOWN_FIELD_COLUMN)).alias("error_field")
    return first_failure, reported


def _rules(present: frozenset[str], tables: EngineTables) -> list[Rule]:
    """Every check, in the order of precedence of the codes it reports."""
    known_type = pl.col(TYPE_CODE_COLUMN).is_not_null()
    rules = [
        Rule(
            pl.col(MALFORMED_COLUMN).is_not_null(),
            ErrorCode.INVALID_REQUEST,
            None,
            "each activity must be a JSON object",
            '{"type": "...", ...}',
        ),
        Rule(
            ~_present("type", present),
            ErrorCode.MISSING_FIELD,
            "type",
            "every activity needs a type",
            "one of: " + ", ".join(ACTIVITY_TYPES),
        ),
        Rule(
            ~known_type,
            ErrorCode.UNKNOWN_ACTIVITY_TYPE,
            "type",
            "unknown activity type",
            "one of: " + ", ".join(ACTIVITY_TYPES),
        ),
        Rule(
            pl.col(UNKNOWN_FIELD_COLUMN).is_not_null(),
            ErrorCode.UNKNOWN_FIELD,
            None,
            "the activity has a key the vocabulary does not know",
            "see docs/activities.md",
        ),
    ]
    rules += _structure_rules(present, known_type)
    rules += _value_rules(present)
    rules += _iso_rules(present, tables)
    rules += _conflict_rules(present)
    rules += _reference_rules(tables)
    return rules


def _iso_rules(present: frozenset[str], tables: EngineTables) -> list[Rule]:
    """Well-formed codes must also exist in ISO 3166 (countries and their subdivisions)."""
    return [
        Rule(
            pl.col(name).is_not_null() & ~pl.col(name).is_in(tables.iso_codes),
            ErrorCode.UNKNOWN_REGION,
            name,
            f"{name} is not an ISO 3166 code",
            "an ISO 3166-1 alpha-2 country (CN) or ISO 3166-2 subdivision (CN-SC)",
        )
        for name, spec in FIELDS.items()
        if spec.kind in ("country", "region") and name in present
    ]


def _structure_rules(present: frozenset[str], known_type: pl.Expr) -> list[Rule]:
    rules = []
    for name in FIELDS:
        if name == "type" or name not in present:
            continue
        allowed_in = [t for t, spec in ACTIVITIES.items() if name in spec.allowed]
        rules.append(
            Rule(
                known_type & _present(name, present) & ~is_type(*allowed_in),
                ErrorCode.UNKNOWN_FIELD,
                name,
                f"{name} does not apply to this activity type",
                f"{name} applies to: {', '.join(allowed_in)}",
            )
        )
    for t, spec in ACTIVITIES.items():
        for name in spec.required:
            rules.append(
                Rule(
                    is_type(t) & ~_present(name, present),
                    ErrorCode.MISSING_FIELD,
                    name,
                    f"a {t} activity needs {name}",
                    FIELDS[name].doc,
                )
            )
        for group in spec.one_of:
            given = pl.sum_horizontal([_present(n, present).cast(pl.Int8) for n in group])
            rules.append(
                Rule(
                    is_type(t) & (given == 0),
                    ErrorCode.MISSING_FIELD,
                    group[0],
                    f"a {t} activity needs one of {', '.join(group)}",
                    None,
                )
            )
            for position, name in enumerate(group[1:], start=1):
                earlier = pl.any_horizontal([_present(n, present) for n in group[:position]])
                rules.append(
                    Rule(
                        is_type(t) & _present(name, present) & earlier,
                        ErrorCode.CONFLICTING_FIELDS,
                        name,
                        f"give only one of {', '.join(group)}",
                        None,
                    )
                )
    return rules


def _value_rules(present: frozenset[str]) -> list[Rule]:
    rules = []
    for name, spec in FIELDS.items():
        if name not in present:
            continue
        col = pl.col(name)
        if spec.kind in _NUMERIC:
            rules.append(
                Rule(pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE, name, f"{name} must be a number", None)
            )
            rules.append(
                Rule(
                    col.is_nan() | col.is_infinite(),
                    ErrorCode.NOT_FINITE,
                    name,
                    f"{name} must be a finite number",
                    spec.bounds_text(),
                )
            )
            if spec.kind == "integer":
                rules.append(
                    Rule(
                        col != col.floor(), ErrorCode.WRONG_TYPE, name, f"{name} must be a whole number", None
                    )
                )
            assert spec.minimum is not None and spec.maximum is not None, name
            minimum, maximum = float(spec.minimum), float(spec.maximum)
            low = col < minimum if spec.min_inclusive else col <= minimum
            rules.append(
                Rule(
                    low | (col > maximum),
                    ErrorCode.OUT_OF_RANGE,
                    name,
                    f"{name} is out of range",
                    f"{name} must be {spec.bounds_text()}",
                )
            )
        elif spec.kind == "boolean":
            rules.append(
                Rule(
                    pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE, name, f"{name} must be true or false", None
                )
            )
        elif spec.kind == "choice" and name != "type":
            for t, activity in ACTIVITIES.items():
                if name in activity.allowed:
                    allowed = choices_for(t, name)
                    rules.append(
                        Rule(
                            is_type(t) & col.is_not_null() & ~col.is_in(allowed),
                            ErrorCode.UNKNOWN_VALUE,
                            name,
                            f"unknown {name} for a {t} activity",
                            "one of: " + ", ".join(allowed),
                        )
                    )
    return rules


def _conflict_rules(present: frozenset[str]) -> list[Rule]:
    return [
        Rule(
            is_type("taxi")
            & (pl.col("basis").fill_null("vehicle") == "vehicle")
            & _present("passengers", present),
            ErrorCode.CONFLICTING_FIELDS,
            "passengers",
            "passengers apply only with basis 'passenger': a vehicle-km factor covers the whole taxi",
            'set "basis": "passenger" or drop passengers',
        ),
        Rule(
            is_type("freight") & (pl.col("load") == "empty") & _present("tonnes", present),
            ErrorCode.CONFLICTING_FIELDS,
            "tonnes",
            "an empty vehicle carries no tonnes",
            "drop tonnes, or choose another load",
        ),
        Rule(
            is_type("freight")
            & (pl.col("load").fill_null("average_laden") != "empty")
            & ~_present("tonnes", present),
            ErrorCode.MISSING_FIELD,
            "tonnes",
            "a laden freight activity needs tonnes",
            FIELDS["tonnes"].doc,
        ),
    ]


def _reference_rules(tables: EngineTables) -> list[Rule]:
    flight = is_type("flight")
    return [
        Rule(
            pl.col("factor_set").is_not_null() & ~pl.col("factor_set").is_in(tables.factor_sets),
            ErrorCode.UNKNOWN_FACTOR_SET,
            "factor_set",
            "unknown factor set",
            "one of: " + ", ".join(tables.factor_sets),
        ),
        Rule(
            flight & pl.col("origin").is_not_null() & pl.col("_o_lat").is_null(),
            ErrorCode.UNKNOWN_AIRPORT,
            "origin",
            "unknown IATA airport code",
            None,
        ),
        Rule(
            flight & pl.col("destination").is_not_null() & pl.col("_d_lat").is_null(),
            ErrorCode.UNKNOWN_AIRPORT,
            "destination",
            "unknown IATA airport code",
            None,
        ),
        Rule(
            flight & (pl.col("origin") == pl.col("destination")),
            ErrorCode.SAME_AIRPORT,
            "destination",
            "origin and destination are the same airport",
            "a flight needs two different airports",
        ),
    ]


# --- defaults, keys, amounts ------------------------------------------------------------------


def _with_defaults(frame: pl.LazyFrame) -> pl.LazyFrame:
    columns = []
    for name, spec in FIELDS.items():
        by_type = {t: a.defaults[name] for t, a in ACTIVITIES.items() if name in a.defaults}
        if not by_type:
            continue
        expr = pl.col(name)
        for t, value in by_type.items():
            typed = _default_literal(spec.kind, value)
            expr = pl.when(is_type(t) & pl.col(name).is_null()).then(typed).otherwise(expr)
        columns.append(expr.alias(name))
    return frame.with_columns(columns)


def _default_literal(kind: str, value: str) -> pl.Expr:
    if kind in _NUMERIC:
        return pl.lit(float(value))
    if kind == "boolean":
        return pl.lit(value == "true")
    return pl.lit(value)


def _with_keys_and_amount(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.with_columns(**_keys_and_amount())


@lru_cache(maxsize=1)
def _keys_and_amount() -> dict[str, pl.Expr]:
    distance = pl.coalesce(pl.col("distance_km"), pl.col("distance_miles") * _MILES)
    distance = pl.when(is_type("flight")).then(pl.col("_flight_km")).otherwise(distance)
    uk = pl.lit("GB")
    is_epa = pl.col("factor_set") == "EPA-2025"
    miles = pl.col("_flight_km") / _MILES
    haul = (
        pl.when(is_epa)
        .then(
            pl.when(miles < 300)
            .then(pl.lit("short_haul"))
            .when(miles < 2300)
            .then(pl.lit("medium_haul"))
            .otherwise(pl.lit("long_haul"))
        )
        .when((pl.col("_o_country") == uk) & (pl.col("_d_country") == uk))
        .then(pl.lit("domestic"))
        .when((pl.col("_o_country") == uk) | (pl.col("_d_country") == uk))
        .then(pl.when(pl.col("_flight_km") < 3700).then(pl.lit("short_haul")).otherwise(pl.lit("long_haul")))
        .otherwise(pl.lit("international"))
    )
    rf = (
        pl.when(pl.col("radiative_forcing").is_null())
        .then(pl.lit("default"))
        .when(pl.col("radiative_forcing"))
        .then(pl.lit("on"))
        .otherwise(pl.lit("off"))
    )
    fuel_unit = (
        pl.when(pl.col("litres").is_not_null())
        .then(pl.lit("litres"))
        .when(pl.col("kg").is_not_null())
        .then(pl.lit("kg"))
        .when(pl.col("m3").is_not_null())
        .then(pl.lit("m3"))
        .otherwise(pl.lit("kwh"))
    )
    region_key = pl.when(pl.col("region").str.starts_with("GB")).then(uk).otherwise(pl.col("region"))
    hotel_key = _hotel_key(pl.col("country"))
    k1 = (
        pl.when(is_type("flight"))
        .then(haul)
        .when(is_type("car", "fuel"))
        .then(pl.col("fuel"))
        .when(is_type("taxi"))
        .then(pl.col("basis"))
        .when(is_type("motorbike"))
        .then(pl.col("size"))
        .when(is_type("bus", "rail", "ferry"))
        .then(pl.col("mode"))
        .when(is_type("hotel"))
        .then(hotel_key)
        .when(is_type("meal"))
        .then(pl.col("diet"))
        .when(is_type("electricity"))
        .then(region_key)
        .when(is_type("freight"))
        .then(pl.col("vehicle"))
    )
    k2 = (
        pl.when(is_type("flight"))
        .then(pl.col("cabin"))
        .when(is_type("car"))
        .then(pl.col("size"))
        .when(is_type("electricity"))
        .then(pl.col("year").cast(pl.Int32).cast(pl.String).fill_null(""))
        .when(is_type("fuel"))
        .then(fuel_unit)
        .when(is_type("freight"))
        .then(pl.col("load"))
        .otherwise(pl.lit(""))
    )
    k3 = pl.when(is_type("flight")).then(rf).when(is_type("fuel")).then(pl.col("blend")).otherwise(pl.lit(""))
    passengers = pl.col("passengers")
    amount = (
        pl.when(is_type("flight"))
        .then(distance * passengers * pl.when(pl.col("round_trip")).then(2.0).otherwise(1.0))
        .when(is_type("car", "motorbike"))
        .then(distance)
        .when(is_type("taxi"))
        .then(distance * pl.when(pl.col("basis") == "passenger").then(passengers).otherwise(1.0))
        .when(is_type("bus", "rail", "ferry"))
        .then(distance * passengers)
        .when(is_type("hotel"))
        .then(pl.col("nights") * pl.col("rooms"))
        .when(is_type("meal"))
        .then(pl.col("count"))
        .when(is_type("electricity"))
        .then(pl.col("kwh"))
        .when(is_type("fuel"))
        .then(pl.coalesce("litres", "kg", "m3", "kwh"))
        .when(is_type("freight"))
        .then(distance * pl.when(pl.col("load") == "empty").then(1.0).otherwise(pl.col("tonnes")))
    )
    return {
        "requested_set": pl.col("factor_set").fill_null(""),
        "k1": k1.fill_null(""),
        "k2": k2.fill_null(""),
        "k3": k3.fill_null(""),
        "k1_alt": pl.when(is_type("hotel")).then(_hotel_key(pl.col("fallback_country"))),
        "amount": amount,
        "distance_km": pl.when(is_type("hotel", "meal", "electricity", "fuel"))
        .then(None)
        .otherwise(distance),
        "activity_region": pl.when(is_type("electricity"))
        .then(pl.col("region"))
        .otherwise(pl.col("country")),
    }


def _hotel_key(country: pl.Expr) -> pl.Expr:
    return pl.when(country.is_in(_HOTEL_SUBDIVISIONS)).then(country).otherwise(country.str.slice(0, 2))


# --- resolution and arithmetic ----------------------------------------------------------------

_JOIN_KEYS = ["requested_set", "type", "k1", "k2", "k3"]
_RESOLVED = [
    "factor_set_used",
    "factor_id",
    "multiplier",
    "kg_per_amount",
    "unc_low_per_amount",
    "unc_high_per_amount",
    "amount_unit",
    "notes",
    "factor_region",
    "factor_year",
    "resolution_error",
    "resolution_message",
    "resolution_hint",
]


def _resolve(frame: pl.LazyFrame, tables: EngineTables, *, hotel_fallback: bool) -> pl.LazyFrame:
    frame = frame.with_columns(_res=_resolution_index("k1", tables))
    if hotel_fallback:
        alt = _resolution_index("k1_alt", tables)
        unmatched = pl.col("_res").is_null() & is_type("hotel")
        frame = frame.with_columns(
            _use_alt=unmatched & alt.is_not_null(),
            _res=pl.when(unmatched).then(alt).otherwise(pl.col("_res")),
        )
    frame = frame.with_columns(_resolved_columns(tables))
    if hotel_fallback:
        fallback_note = pl.format(
            "no hotel factor for {}: the stated fallback country {} is used",
            pl.col("country"),
            pl.col("fallback_country"),
        )
        frame = frame.with_columns(
            notes=pl.when(pl.col("_use_alt"))
            .then(fallback_note.cast(pl.Categorical))
            .otherwise(pl.col("notes"))
        )
    return frame.with_columns(_problem=_resolution_problem(tables)).with_columns(_resolution_errors(tables))


def _resolution_problem(tables: EngineTables) -> pl.Expr:
    """For a valid row no factor answers: a small key naming why (null on every other row)."""
    unresolved = pl.col("error_code").is_null() & pl.col("factor_id").is_null()
    set_code = pl.col("requested_set").replace_strict(_SET_CODES, default=None, return_dtype=pl.Int32)
    type_code = pl.col(TYPE_CODE_COLUMN).cast(pl.Int32)
    pairs = [
        _SET_CODES[fs] * 16 + TYPE_CODES[kind] for kind, sets in tables.covering.items() for fs in (*sets, "")
    ]
    set_covers_type = (set_code * 16 + type_code).is_in(pairs)
    return (
        pl.when(~unresolved)
        .then(None)
        .when(pl.col("resolution_error").is_not_null())
        .then(_FROM_TABLE)
        .when(is_type("hotel", "electricity") & set_covers_type)
        .then(_NOT_COVERED + set_code * 16 + type_code)
        .otherwise(_NO_FACTOR + type_code)
    )


@lru_cache(maxsize=4)
def _resolution_errors(tables: EngineTables) -> list[pl.Expr]:
    """Code, field, message and hint of a resolution problem, looked up by its key."""
    problems: dict[int, tuple[str, str | None, str, str | None]] = {}
    for kind, code in TYPE_CODES.items():
        sets = ", ".join(tables.covering.get(kind, ()))
        problems[_NO_FACTOR + code] = (ErrorCode.FACTOR_SET_NOT_APPLICABLE.value, "factor_set",
                                       "the factor set has no factor for this activity",
                                       f"factor sets for this type: {sets}")  # fmt: skip
    for fs, set_code in _SET_CODES.items():
        for kind, covered in (("hotel", tables.hotel_countries), ("electricity", tables.electricity_regions)):
            what = "countries with a hotel factor" if kind == "hotel" else "regions covered"
            problems[_NOT_COVERED + set_code * 16 + TYPE_CODES[kind]] = (
                ErrorCode.REGION_NOT_COVERED.value,
                "country" if kind == "hotel" else "region",
                "no factor for this country or region in the factor set",
                f"{what}: " + ", ".join(covered.get(fs, ())),
            )
    key = pl.col("_problem")
    from_table = key == _FROM_TABLE
    columns = []
    for position, (column, table_column) in enumerate(
        (("error_code", "resolution_error"), ("error_field", None), ("error_message", "resolution_message"),
         ("error_hint", "resolution_hint"))
    ):  # fmt: skip
        looked_up = key.replace_strict({k: v[position] for k, v in problems.items()}, default=None,
                                       return_dtype=pl.String)  # fmt: skip
        from_row = pl.col(table_column) if table_column else pl.lit(None, dtype=pl.String)
        resolved = pl.when(from_table).then(from_row).otherwise(looked_up)
        columns.append(pl.coalesce(pl.col(column), resolved).alias(column))
    return columns


def _resolution_index(k1: str, tables: EngineTables) -> pl.Expr:
    """The row of the resolution table that answers each activity (null if none does)."""
    key = pl.concat_str(pl.col("requested_set"), pl.col("type"), pl.col(k1), pl.col("k2"), pl.col("k3"),
                        separator="|")  # fmt: skip
    return key.replace_strict(tables.resolution_keys, default=None, return_dtype=pl.UInt32)


@lru_cache(maxsize=4)
def _resolved_columns(tables: EngineTables) -> list[pl.Expr]:
    table = tables.resolutions
    return [pl.lit(table[name]).gather(pl.col("_res")).alias(name) for name in _RESOLVED]


def _round_micro(kg: pl.Expr) -> pl.Expr:
    """Integer micro-kilograms, half to even.

    A product that lands within a few float steps of a half is taken to be an exact half (the
    inputs are short decimals, so true ties are common and float64 misses them by one step).
    """
    scaled = kg * MICRO
    floor = scaled.floor()
    near_tie = ((scaled - floor) - 0.5).abs() <= scaled.abs() * _TIE_ULPS
    tie = floor + (floor % 2)
    return pl.when(near_tie).then(tie).otherwise(scaled.round(0, mode="half_to_even")).cast(pl.Int64)


def _to_kg(micro: pl.Expr) -> pl.Expr:
    return micro.cast(pl.Decimal(38, 0)).cast(pl.Decimal(38, 6)) / MICRO


def _error_value() -> pl.Expr:
    """The offending value, as text, for the field an error names."""
    text = [name for name, spec in FIELDS.items() if _dtype(spec.kind) == pl.String()]
    cases = [(pl.col("error_field") == name, pl.col(name)) for name in text]
    return first_match(cases, pl.lit(None, dtype=pl.String))


def _with_emissions(frame: pl.LazyFrame) -> pl.LazyFrame:
    ok = pl.col("error_code").is_null()
    amount = pl.col("amount")
    region = pl.col("activity_region")
    factor_region = pl.col("factor_region")
    same_code = (
        pl.when(is_type("electricity"))
        .then(region == factor_region)
        .otherwise(region.str.slice(0, 2) == factor_region.str.slice(0, 2))
    )
    return frame.with_columns(
        factor_set=pl.when(ok).then(pl.col("factor_set_used")),
        factor_id=pl.when(ok).then(pl.col("factor_id")),
        kg_co2e=pl.when(ok).then(_to_kg(_round_micro(amount * pl.col("kg_per_amount")))),
        uncertainty_low_kg=pl.when(ok).then(_to_kg(_round_micro(amount * pl.col("unc_low_per_amount")))),
        uncertainty_high_kg=pl.when(ok).then(_to_kg(_round_micro(amount * pl.col("unc_high_per_amount")))),
        amount=pl.when(ok).then(amount),
        amount_unit=pl.when(ok).then(pl.col("amount_unit")),
        unit_multiplier=pl.when(ok).then(pl.col("multiplier")),
        error_value=_error_value(),
        distance_km=pl.when(ok).then(pl.col("distance_km")),
        notes=pl.when(ok).then(pl.col("notes")),
        geography_differs=pl.when(ok).then(
            region.is_not_null() & factor_region.is_not_null() & ~same_code.fill_null(False)
        ),
        year_differs=pl.when(ok).then(
            pl.col("year").is_not_null()
            & pl.col("factor_year").is_not_null()
            & (pl.col("year") != pl.col("factor_year"))
        ),
    )
