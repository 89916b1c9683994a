"""The footprint engine: activities in, one line of kg CO2e per activity out, column-wise.

Single requests and batch files take the same path: a table of raw activity fields (text from
JSON or CSV, or typed Parquet columns) is coerced, split by activity type, checked rule by rule
in a fixed order of precedence (``rules``), keyed and measured by its type's recipe
(``recipes``), looked up in the resolution table and multiplied. The engine computes in float64
and rounds once, at its output, to 6 decimal places half to even; the factor values themselves
are exact in the catalogue. A row that fails keeps its place and gets an error code, the field
at fault and a hint; the other rows still compute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import polars as pl

from neutralize.core.errors import ErrorCode
from neutralize.footprint.recipes import defaults, great_circle_km, recipe
from neutralize.footprint.rules import (
    FIELD_BITS,
    GIVEN_COLUMN,
    MALFORMED_COLUMN,
    NUMERIC,
    UNKNOWN_FIELD_COLUMN,
    Rule,
    given,
    is_typed,
    type_rules,
    untyped_rules,
)
from neutralize.footprint.tables import EngineTables
from neutralize.footprint.vocabulary import ACTIVITIES, ACTIVITY_TYPES, FIELDS

MICRO = 1_000_000
_TIE_ULPS = 4 * 2.0**-52  # four units in the last place of a float64, relative
ROW = "row"
TYPE_CODE_COLUMN = "_t"
TYPE_CODES = {name: code for code, name in enumerate(ACTIVITY_TYPES)}
_DISTINCT_CHECK_LIMIT = 100_000
_RESOLVED = (
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
)

# Repeated words from the factor tables are categorical: cheap to gather, to hold and to write.
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


def evaluate(raw: pl.DataFrame, tables: EngineTables) -> pl.DataFrame:
    """Compute every row of ``raw``; returns one output row per input row, in order."""
    present = frozenset(raw.columns)
    frame = raw.lazy()
    if ROW not in present:
        frame = frame.with_row_index(ROW, offset=0).with_columns(pl.col(ROW).cast(pl.Int64))
    coerced = _coerce(frame, raw).collect()
    parts = []
    for code in coerced[TYPE_CODE_COLUMN].unique().to_list():
        rows = coerced.lazy().filter(pl.col(TYPE_CODE_COLUMN).eq_missing(code))
        if code is None:
            parts.append(_untyped(rows, present))
        else:
            activity_type = ACTIVITY_TYPES[code]
            # Only the columns this type reads: the filter then copies a fraction of the frame.
            parts.append(
                _typed(rows.select(_columns_of(activity_type, present)), activity_type, present, tables)
            )
    if not parts:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    return pl.concat(parts).sort(ROW).collect()


@lru_cache(maxsize=256)
def _columns_of(activity_type: str, present: frozenset[str]) -> list[str]:
    fields = [name for name in FIELDS if name in ACTIVITIES[activity_type].allowed]
    flags = [f"_bad_{name}" for name in fields if name in present and is_typed(FIELDS[name].kind)]
    return [ROW, TYPE_CODE_COLUMN, GIVEN_COLUMN, UNKNOWN_FIELD_COLUMN, *fields, *flags]


def _untyped(rows: pl.LazyFrame, present: frozenset[str]) -> pl.LazyFrame:
    """Rows with no usable type: only their error."""
    rows = _with_first_failure(rows, _untyped_rules(present))
    filled = {name: pl.lit(None, dtype=dtype) for name, dtype in OUTPUT_SCHEMA.items()}
    filled.update({ROW: pl.col(ROW), "ref": pl.col("ref"), "type": pl.col("type")})
    filled.update(
        {name: pl.col(name) for name in ("error_code", "error_field", "error_message", "error_hint")}
    )
    filled["error_value"] = _error_value(FIELDS)
    return rows.select([expr.cast(OUTPUT_SCHEMA[name]).alias(name) for name, expr in filled.items()])


def _typed(
    rows: pl.LazyFrame, activity_type: str, present: frozenset[str], tables: EngineTables
) -> pl.LazyFrame:
    """Rows of one activity type, from validation to emissions."""
    for stage in _typed_stages(activity_type, present, tables):
        rows = rows.with_columns(stage)
    return rows.select([pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items()])


@lru_cache(maxsize=256)
def _typed_stages(
    activity_type: str, present: frozenset[str], tables: EngineTables
) -> tuple[list[pl.Expr], ...]:
    # Building the expressions costs more than evaluating them on a small request: keep them.
    stages: list[list[pl.Expr]] = []
    if activity_type == "flight":
        stages += [_airport_columns(tables), [great_circle_km().alias("_flight_km")]]
    first_failure, reported = _failure_expressions(_rules(activity_type, present, tables))
    stages += [[first_failure.alias("_rule")], reported, defaults(activity_type)]
    stages.append([expr.alias(name) for name, expr in recipe(activity_type).columns().items()])
    stages += _resolution_stages(activity_type, tables, hotel_fallback="fallback_country" in present)
    stages.append(_emission_columns(activity_type))
    return tuple(stages)


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
        if spec.kind in NUMERIC:
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
    present = frozenset(raw.columns)
    given_bits = pl.sum_horizontal(
        [given(name, present).cast(pl.Int64) * FIELD_BITS[name] for name in FIELDS if name in present]
        or [pl.lit(0, dtype=pl.Int64)]
    )
    return frame.with_columns(columns).with_columns(
        type_code.alias(TYPE_CODE_COLUMN), given_bits.alias(GIVEN_COLUMN)
    )


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
    if kind in NUMERIC:
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


# --- validation -------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _untyped_rules(present: frozenset[str]) -> tuple[Rule, ...]:
    return tuple(untyped_rules(present))


@lru_cache(maxsize=256)
def _rules(activity_type: str, present: frozenset[str], tables: EngineTables) -> tuple[Rule, ...]:
    return tuple(type_rules(activity_type, present, tables.iso_codes))


def _with_first_failure(rows: pl.LazyFrame, rules: tuple[Rule, ...]) -> pl.LazyFrame:
    """Error code, field, message and hint of the first rule each row fails (null if none)."""
    first_failure, reported = _failure_expressions(rules)
    return rows.with_columns(first_failure.alias("_rule")).with_columns(reported)


@lru_cache(maxsize=256)
def _failure_expressions(rules: tuple[Rule, ...]) -> tuple[pl.Expr, list[pl.Expr]]:
    # Building the expressions costs more than evaluating them on a small request: keep them.
    cases = [(rule.when.fill_null(False), pl.lit(i, dtype=pl.Int16)) for i, rule in enumerate(rules)]
    first_failure = first_match(cases, pl.lit(None, dtype=pl.Int16))
    reported = []
    for position, column in enumerate(("error_code", "error_field", "error_message", "error_hint")):
        values = {i: rule.reported()[position] for i, rule in enumerate(rules)}
        lookup = pl.col("_rule").replace_strict(values, default=None, return_dtype=pl.String)
        reported.append(lookup.alias(column))
    # The one rule without a fixed field names the unknown key itself.
    reported[1] = reported[1].fill_null(pl.col(UNKNOWN_FIELD_COLUMN)).alias("error_field")
    return first_failure, reported


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


# --- resolution and arithmetic ----------------------------------------------------------------


def _resolution_stages(
    activity_type: str, tables: EngineTables, *, hotel_fallback: bool
) -> list[list[pl.Expr]]:
    """Find each row's resolution (hotels: then the stated fallback country), gather it, explain misses."""
    stages = [[_resolution_index(activity_type, "k1", tables).alias("_res")]]
    use_alt = activity_type == "hotel" and hotel_fallback
    if use_alt:
        alt = _resolution_index(activity_type, "k1_alt", tables)
        unmatched = pl.col("_res").is_null()
        stages.append(
            [
                (unmatched & alt.is_not_null()).alias("_use_alt"),
                pl.when(unmatched).then(alt).otherwise(pl.col("_res")).alias("_res"),
            ]
        )
    stages.append(_resolved_columns(tables))
    if use_alt:
        note = pl.format(
            "no hotel factor for {}: the stated fallback country {} is used",
            pl.col("country"),
            pl.col("fallback_country"),
        ).cast(pl.Categorical)
        stages.append([pl.when(pl.col("_use_alt")).then(note).otherwise(pl.col("notes")).alias("notes")])
    stages.append(_resolution_errors(activity_type, tables))
    return stages


def _resolution_index(activity_type: str, k1: str, tables: EngineTables) -> pl.Expr:
    """The row of the resolution table that answers each activity (null if none does)."""
    key = pl.concat_str(
        pl.col("factor_set").fill_null(""),
        pl.lit(activity_type),
        pl.col(k1),
        pl.col("k2"),
        pl.col("k3"),
        separator="|",
    )
    return key.replace_strict(tables.resolution_keys, default=None, return_dtype=pl.UInt32)


@lru_cache(maxsize=4)
def _resolved_columns(tables: EngineTables) -> list[pl.Expr]:
    table = tables.resolutions
    return [pl.lit(table[name]).gather(pl.col("_res")).alias(name) for name in _RESOLVED]


@lru_cache(maxsize=64)
def _resolution_errors(activity_type: str, tables: EngineTables) -> list[pl.Expr]:
    """For a valid row no factor answers: why, as code, field, message and hint."""
    unresolved = pl.col("error_code").is_null() & pl.col("factor_id").is_null()
    from_table = unresolved & pl.col("resolution_error").is_not_null()
    covering = tables.covering.get(activity_type, ())
    if activity_type in ("hotel", "electricity"):
        covered = tables.hotel_countries if activity_type == "hotel" else tables.electricity_regions
        what = "countries with a hotel factor" if activity_type == "hotel" else "regions covered"
        hints = {fs: f"{what}: " + ", ".join(codes) for fs, codes in covered.items()}
        not_covered = unresolved & pl.col("factor_set").fill_null("").is_in(["", *covering])
        region_field = "country" if activity_type == "hotel" else "region"
        region_hint = (
            pl.col("factor_set").fill_null("").replace_strict(hints, default=None, return_dtype=pl.String)
        )
    else:
        not_covered, region_field, region_hint = pl.lit(False), "", pl.lit(None, dtype=pl.String)
    cases = {
        "error_code": (
            pl.col("resolution_error"),
            ErrorCode.REGION_NOT_COVERED.value,
            ErrorCode.FACTOR_SET_NOT_APPLICABLE.value,
        ),
        "error_field": (pl.lit(None, dtype=pl.String), region_field, "factor_set"),
        "error_message": (
            pl.col("resolution_message"),
            "no factor for this country or region in the factor set",
            "the factor set has no factor for this activity",
        ),
        "error_hint": (
            pl.col("resolution_hint"),
            region_hint,
            f"factor sets for {activity_type}: " + ", ".join(covering),
        ),
    }
    columns = []
    for column, (from_row, region, no_factor) in cases.items():
        region_value = region if isinstance(region, pl.Expr) else pl.lit(region)
        chosen = (
            pl.when(from_table)
            .then(from_row)
            .when(not_covered)
            .then(region_value)
            .when(unresolved)
            .then(pl.lit(no_factor))
            .otherwise(pl.col(column))
        )
        columns.append(chosen.alias(column))
    return columns


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


def _error_value(fields: Iterable[str]) -> pl.Expr:
    """The offending value, as text, for the field an error names (text fields only)."""
    text = [name for name in fields if _dtype(FIELDS[name].kind) == pl.String()]
    cases = [(pl.col("error_field") == name, pl.col(name)) for name in text]
    return first_match(cases, pl.lit(None, dtype=pl.String))


def _emission_columns(activity_type: str) -> list[pl.Expr]:
    ok = pl.col("error_code").is_null()
    amount = pl.col("amount")
    region, factor_region = pl.col("activity_region"), pl.col("factor_region")
    if activity_type == "electricity":
        same_place = region == factor_region
    else:
        same_place = region.str.slice(0, 2) == factor_region.str.slice(0, 2)
    line = {
        "factor_set": pl.col("factor_set_used"),
        "kg_co2e": _to_kg(_round_micro(amount * pl.col("kg_per_amount"))),
        "uncertainty_low_kg": _to_kg(_round_micro(amount * pl.col("unc_low_per_amount"))),
        "uncertainty_high_kg": _to_kg(_round_micro(amount * pl.col("unc_high_per_amount"))),
        "unit_multiplier": pl.col("multiplier"),
        "geography_differs": region.is_not_null()
        & factor_region.is_not_null()
        & ~same_place.fill_null(False),
        "year_differs": pl.col("year").is_not_null()
        & pl.col("factor_year").is_not_null()
        & (pl.col("year") != pl.col("factor_year")),
        **{name: pl.col(name) for name in ("factor_id", "amount", "amount_unit", "distance_km", "notes")},
    }
    return [
        _error_value(ACTIVITIES[activity_type].allowed).alias("error_value"),
        *(pl.when(ok).then(expr).alias(name) for name, expr in line.items()),
    ]
