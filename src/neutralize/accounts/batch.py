"""Crediting a whole batch column-wise (Polars): the same steps and grams as ``accounts.domain``.

``credit_frame`` takes a raw table (one row per record, a ``row`` number column, field columns as
text or already typed) and returns one result row per input row plus the totals per account.
Every step is a column expression or a sort, never a Python loop over rows:

* validation: each field's checks in ``records.FIELD_ORDER``, then the cross-field checks; the
  first failure names the row's code, as ``records.parse_record`` does;
* measures are truncated to whole metres and watt-hours with the same float operations as
  ``records.whole_units``; from there on everything is Int64 arithmetic;
* each methodology's formula enters as integer coefficients per key (``coefficient_table``): grams =
  max(0, sum of coefficient x measure) // denominator, exactly the reference's floor of fractions;
* overlaps and daily caps come from one sort by (person, behaviour, start, end, partner, id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import polars as pl

from neutralize.accounts.domain import CHINA_OFFSET_S, DAY_S, EARTH_RADIUS_KM, Book
from neutralize.accounts.methodologies import ParameterSet, parameters_invalid
from neutralize.accounts.methodologies.formulas import daily_cap
from neutralize.accounts.records import (
    ALL_MODES,
    ALWAYS_REQUIRED,
    FIELD_ORDER,
    MAX_DURATION,
    MODES,
    NUMBER_BOUNDS,
    REGION_PATTERN,
    REQUIRED,
    ROUTE_FIELDS,
    TEXT_BOUNDS,
    TIME_PATTERN,
    UNIT_EPSILON,
    Behaviour,
    TruckClass,
)
from neutralize.core.errors import ErrorCode

ROW = "row"
UNKNOWN_COLUMN = "_unknown_field"  # the first key of a JSON object the record does not know
MALFORMED_COLUMN = "_malformed"  # set when a line is not a JSON object
MEASURES = ("distance_m", "loaded_m", "empty_m", "energy_wh")
MEASURE_SOURCE = {
    "distance_m": "distance_km",
    "loaded_m": "loaded_km",
    "empty_m": "empty_km",
    "energy_wh": "kwh",
}
# Coefficient numerators x the largest measure must stay well inside Int64.
MAX_MEASURE = 5_000_000
SAFE_PRODUCT = 2**60
TEXT_FIELDS = (
    "partner",
    "account_ref",
    "external_id",
    "person",
    "behaviour",
    "mode",
    "truck_class",
    "region",
)
TIME_FIELDS = ("start_time", "end_time")
BEHAVIOURS = pl.Enum([b.value for b in Behaviour])
CODES = pl.Enum([c.value for c in ErrorCode])
_NOW = "_now_s"


@dataclass(frozen=True)
class BatchResult:
    """Per row: code, ids, methodology, parameter hash, reduction and credited grams; per account: totals."""

    credits: pl.DataFrame
    totals: pl.DataFrame


def credit_frame(raw: pl.DataFrame | pl.LazyFrame, book: Book, *, now_s: int) -> BatchResult:
    """Validate, check, de-duplicate and credit every row of ``raw`` (see the module docstring)."""
    frame = raw.lazy().sort(ROW)
    frame = frame.with_columns(_coerced(frame.collect_schema()))
    frame = frame.with_columns(_measure_columns()).with_columns(_validation().alias("code"))
    frame = frame.with_columns(pl.col("code").is_null().alias("_valid")).with_columns(_duplicate_code())
    frame = _plausibility(frame, book.rules, now_s)
    frame = _priced(frame, book)
    frame = _overlaps_and_caps(frame)
    credits = frame.select(
        ROW,
        pl.col("code").cast(CODES),
        "partner",
        "account_ref",
        "external_id",
        "methodology",
        "parameters_sha256",
        "reduction_g",
        "credited_g",
    ).sort(ROW)
    collected = credits.collect()
    totals = (
        collected.lazy()
        .filter(pl.col("credited_g") > 0)
        .group_by("partner", "account_ref")
        .agg(pl.col("credited_g").sum())
        .sort("partner", "account_ref")
        .collect()
    )
    return BatchResult(credits=collected, totals=totals)


# --- coercion -----------------------------------------------------------------------------------


def _coerced(schema: pl.Schema) -> list[pl.Expr]:
    """Typed columns for every field, plus ``_bad_<field>`` where a value did not parse."""
    out: list[pl.Expr] = []
    for name in FIELD_ORDER:
        if name not in schema:
            dtype: Any = (
                pl.String if name in TEXT_FIELDS else pl.Float64 if name in NUMBER_BOUNDS else pl.Int64
            )
            out.append(pl.lit(None, dtype=dtype).alias(name))
            out.append(pl.lit(False).alias(f"_bad_{name}"))
            continue
        column = pl.col(name)
        if name in TEXT_FIELDS:
            out.append((column if schema[name] == pl.String else column.cast(pl.String)).alias(name))
            out.append(pl.lit(False).alias(f"_bad_{name}"))
        elif name in NUMBER_BOUNDS:
            is_text = schema[name] == pl.String
            typed = (column.str.strip_chars() if is_text else column).cast(pl.Float64, strict=False)
            out.append(typed.alias(name))
            out.append((column.is_not_null() & typed.is_null()).alias(f"_bad_{name}"))
        else:
            seconds = _epoch_seconds(column, schema[name])
            out.append(seconds.alias(name))
            out.append((column.is_not_null() & seconds.is_null()).alias(f"_bad_{name}"))
    for reserved in (UNKNOWN_COLUMN, MALFORMED_COLUMN):
        if reserved not in schema:
            out.append(pl.lit(None, dtype=pl.String).alias(reserved))
    return out


def _epoch_seconds(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Whole seconds since 1970 (floored); null when the text is not RFC 3339 with an offset."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return pl.lit(None, dtype=pl.Int64)  # naive times are refused, as in the reference
        return column.dt.epoch("us") // 1_000_000
    text = column.cast(pl.String)
    parsed = text.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_zone="UTC", time_unit="us"
    )
    return pl.when(text.str.contains(TIME_PATTERN)).then(parsed.dt.epoch("us") // 1_000_000)


def _measure_columns() -> list[pl.Expr]:
    out = []
    for measure, source in MEASURE_SOURCE.items():
        whole = (pl.col(source) * 1000 + UNIT_EPSILON).floor()
        valid = pl.col(source).is_finite() & (pl.col(source) >= 0) & (pl.col(source) <= MAX_MEASURE / 1000)
        out.append(pl.when(valid).then(whole).otherwise(0).fill_null(0).cast(pl.Int64).alias(measure))
    return out


# --- validation ---------------------------------------------------------------------------------


def first_match(cases: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The code of the first true case, else null."""
    chain: Any = pl
    for condition, code in cases:
        chain = chain.when(condition).then(pl.lit(code))
    result: pl.Expr = chain.otherwise(pl.lit(None, dtype=pl.String))
    return result


def _validation() -> pl.Expr:
    cases: list[tuple[pl.Expr, str]] = [
        (pl.col(MALFORMED_COLUMN).is_not_null(), ErrorCode.MALFORMED_ROW),
        (pl.col(UNKNOWN_COLUMN).is_not_null(), ErrorCode.UNKNOWN_FIELD),
    ]
    for name in FIELD_ORDER:
        cases += _field_cases(name)
    cases += _cross_field_cases()
    return first_match(cases)


def _field_cases(name: str) -> list[tuple[pl.Expr, str]]:
    column = pl.col(name)
    cases: list[tuple[pl.Expr, str]] = []
    if name in ALWAYS_REQUIRED:
        cases.append((column.is_null() & ~pl.col(f"_bad_{name}"), ErrorCode.MISSING_FIELD))
    if name in TEXT_BOUNDS:
        max_length, pattern = TEXT_BOUNDS[name]
        cases.append((column == "", ErrorCode.MISSING_FIELD))
        cases.append((column.str.len_chars() > max_length, ErrorCode.OUT_OF_RANGE))
        cases.append((~column.str.contains(pattern), ErrorCode.INVALID_TEXT))
    elif name == "behaviour":
        cases.append((~column.is_in([b.value for b in Behaviour]), ErrorCode.UNKNOWN_VALUE))
    elif name == "mode":
        cases.append((~column.is_in(list(ALL_MODES)), ErrorCode.UNKNOWN_VALUE))
    elif name == "truck_class":
        cases.append((~column.is_in([t.value for t in TruckClass]), ErrorCode.UNKNOWN_VALUE))
    elif name == "region":
        cases.append((~column.str.contains(REGION_PATTERN), ErrorCode.UNKNOWN_REGION))
    elif name in TIME_FIELDS:
        cases.append((pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE))
    else:
        low, inclusive, high = NUMBER_BOUNDS[name]
        below = column < low if inclusive else column <= low
        cases += [
            (pl.col(f"_bad_{name}"), ErrorCode.WRONG_TYPE),
            (~column.is_finite(), ErrorCode.NOT_FINITE),
            (below | (column > high), ErrorCode.OUT_OF_RANGE),
        ]
    return [(condition.fill_null(False), code) for condition, code in cases]


def _cross_field_cases() -> list[tuple[pl.Expr, str]]:
    behaviour = pl.col("behaviour")
    cases: list[tuple[pl.Expr, str]] = []
    missing = []
    for kind, fields in REQUIRED.items():
        for name in fields:
            if name == "mode" and len(MODES[kind]) == 1:
                continue
            missing.append((behaviour == kind.value) & pl.col(name).is_null())
    cases.append((pl.any_horizontal(missing), ErrorCode.MISSING_FIELD))
    wrong_mode = [
        (behaviour == kind.value) & ~pl.col("mode").is_in(list(modes)) for kind, modes in MODES.items()
    ]
    cases.append((pl.col("mode").is_not_null() & pl.any_horizontal(wrong_mode), ErrorCode.UNKNOWN_VALUE))
    duration = pl.col("end_time") - pl.col("start_time")
    cases.append((duration < 0, ErrorCode.CONFLICTING_FIELDS))
    cases.append((duration > MAX_DURATION.days * DAY_S, ErrorCode.OUT_OF_RANGE))
    given = [pl.col(name).is_not_null() for name in ROUTE_FIELDS]
    cases.append((pl.any_horizontal(given) & ~pl.all_horizontal(given), ErrorCode.MISSING_FIELD))
    return [(condition.fill_null(False), code) for condition, code in cases]


def _duplicate_code() -> pl.Expr:
    """A valid row whose (partner, external id) an earlier valid row already used."""
    valid = pl.col("code").is_null()
    ids = pl.struct("partner", "external_id")
    first = ids.is_first_distinct().over(valid)
    return (
        pl.when(valid & ~first)
        .then(pl.lit(ErrorCode.DUPLICATE_RECORD.value))
        .otherwise(pl.col("code"))
        .alias("code")
    )


# --- plausibility -------------------------------------------------------------------------------


def _ratio(parameters: ParameterSet, name: str, key: str = "") -> tuple[int, int]:
    value = parameters.value(name, key)
    return value.numerator, value.denominator


def _plausibility(frame: pl.LazyFrame, rules: ParameterSet, now_s: int) -> pl.LazyFrame:
    mode = pl.col("mode").fill_null(
        pl.col("behaviour").replace_strict({b.value: m[0] for b, m in MODES.items()}, default=None)
    )
    freight = pl.col("behaviour") == Behaviour.FREIGHT_MATCHING.value
    travelled = pl.when(freight).then(pl.col("loaded_m") + pl.col("empty_m")).otherwise(pl.col("distance_m"))
    stated = pl.when(freight).then(pl.col("loaded_m")).otherwise(pl.col("distance_m"))
    limits = {m: _ratio(rules, "max_speed_kmh", m) for m in ALL_MODES}
    speed_num = mode.replace_strict(
        {m: n for m, (n, _) in limits.items()}, default=None, return_dtype=pl.Int64
    )
    speed_den = mode.replace_strict(
        {m: d for m, (_, d) in limits.items()}, default=None, return_dtype=pl.Int64
    )
    duration = pl.col("end_time") - pl.col("start_time")
    too_fast = travelled * 3600 * speed_den > speed_num * 1000 * duration
    low_n, low_d = _ratio(rules, "route_min_ratio")
    high_n, high_d = _ratio(rules, "route_max_ratio")
    slack_n, slack_d = _ratio(rules, "route_slack_km")
    straight = _great_circle_m()
    outside = (stated * low_d < low_n * straight) | (
        stated * high_d * slack_d > high_n * slack_d * straight + slack_n * 1000 * high_d
    )
    earliest_n, earliest_d = _ratio(rules, "earliest_start_s")
    code = first_match(
        [
            (pl.col("start_time") * earliest_d < earliest_n, ErrorCode.TIME_BEFORE_EPOCH),
            (pl.col("end_time") > now_s, ErrorCode.TIME_IN_FUTURE),
            (too_fast, ErrorCode.SPEED_IMPLAUSIBLE),
            (pl.col("origin_lat").is_not_null() & outside, ErrorCode.ROUTE_DISTANCE_IMPLAUSIBLE),
        ]
    )
    return frame.with_columns(
        pl.col("code").fill_null(code),
        mode.alias("mode"),
        pl.coalesce(pl.col("person"), pl.concat_str("partner", pl.lit("/"), "account_ref")).alias("person"),
    )


def _great_circle_m() -> pl.Expr:
    """As ``domain.great_circle_m``: haversine, whole metres, half up."""
    lat1, lat2 = pl.col("origin_lat").radians(), pl.col("destination_lat").radians()
    dlat = lat2 - lat1
    dlon = (pl.col("destination_lon") - pl.col("origin_lon")).radians()
    h = (dlat / 2).sin().pow(2) + lat1.cos() * lat2.cos() * (dlon / 2).sin().pow(2)
    return (2 * EARTH_RADIUS_KM * h.sqrt().arcsin() * 1000 + 0.5).floor().cast(pl.Int64)


# --- methodology --------------------------------------------------------------------------------


def coefficient_table(book: Book) -> pl.DataFrame:
    """Integer coefficients per (behaviour, key): grams = max(0, sum(c_i x measure_i)) // denominator."""
    rows: list[dict[str, Any]] = []
    for behaviour, (methodology, parameters) in book.methodologies.items():
        for key in methodology.keys(parameters):
            c = methodology.coefficients(parameters, key)
            fractions = [Fraction(getattr(c, m)) for m in MEASURES]
            denominator = math.lcm(*(f.denominator for f in fractions))
            numerators = [int(f * denominator) for f in fractions]
            if sum(abs(n) for n in numerators) * MAX_MEASURE >= SAFE_PRODUCT:
                raise parameters_invalid(
                    f"{methodology.ref}[{key}]: coefficients too fine for exact integer arithmetic"
                )
            rows.append(
                {"behaviour": behaviour.value, "_key": key, "_denominator": denominator}
                | {f"_c_{m}": n for m, n in zip(MEASURES, numerators, strict=True)}
            )
    schema = {"behaviour": pl.String, "_key": pl.String, "_denominator": pl.Int64}
    schema |= {f"_c_{m}": pl.Int64 for m in MEASURES}
    return pl.DataFrame(rows, schema=schema)


def _caps(book: Book) -> pl.DataFrame:
    rows = []
    for behaviour, (methodology, parameters) in book.methodologies.items():
        for mode in MODES[behaviour]:
            cap_key, cap = daily_cap(parameters, mode)
            rows.append(
                {
                    "behaviour": behaviour.value,
                    "mode": mode,
                    "_cap_key": cap_key,
                    "_cap_g": cap,
                    "methodology": methodology.ref,
                    "parameters_sha256": parameters.sha256,
                }
            )
    return pl.DataFrame(rows)


def _priced(frame: pl.LazyFrame, book: Book) -> pl.LazyFrame:
    year = pl.from_epoch(pl.col("start_time") + CHINA_OFFSET_S, time_unit="s").dt.year().cast(pl.String)
    behaviour = pl.col("behaviour")
    key = (
        pl.when(behaviour == Behaviour.FREIGHT_MATCHING.value)
        .then(pl.col("truck_class"))
        .when(behaviour == Behaviour.NEV_DRIVING.value)
        .then(pl.concat_str("region", pl.lit(":"), year))
        .otherwise(pl.col("mode"))
    )
    ok = pl.col("code").is_null()
    frame = frame.with_columns(pl.when(ok).then(key).alias("_key"))
    frame = frame.join(
        coefficient_table(book).lazy(), on=["behaviour", "_key"], how="left", maintain_order="left"
    )
    unknown = (
        pl.when(behaviour == Behaviour.NEV_DRIVING.value)
        .then(pl.lit(ErrorCode.UNKNOWN_REGION.value))
        .otherwise(pl.lit(ErrorCode.UNKNOWN_VALUE.value))
    )
    frame = frame.with_columns(
        pl.when(ok & pl.col("_denominator").is_null()).then(unknown).otherwise(pl.col("code")).alias("code")
    )
    total = pl.sum_horizontal([pl.col(f"_c_{m}") * pl.col(m) for m in MEASURES])
    grams = pl.max_horizontal(total, pl.lit(0, dtype=pl.Int64)) // pl.col("_denominator")
    frame = frame.with_columns(
        pl.when(pl.col("code").is_null()).then(grams).otherwise(0).alias("reduction_g")
    )
    return frame.join(_caps(book).lazy(), on=["behaviour", "mode"], how="left", maintain_order="left")


# --- overlaps and daily caps --------------------------------------------------------------------


def _overlaps_and_caps(frame: pl.LazyFrame) -> pl.LazyFrame:
    order = ["person", "behaviour", "start_time", "end_time", "partner", "external_id"]
    priced = pl.col("code").is_null()
    frame = frame.sort(order)
    group = [pl.col("person"), pl.col("behaviour"), priced]
    latest_end = pl.col("end_time").cum_max().shift(1).over(group)
    overlapping = priced & (pl.col("start_time") < latest_end).fill_null(False)
    frame = frame.with_columns(
        pl.when(overlapping)
        .then(pl.lit(ErrorCode.OVERLAPPING_BEHAVIOUR.value))
        .otherwise(pl.col("code"))
        .alias("code")
    )
    credited = pl.col("code").is_null()
    day = (pl.col("start_time") + CHINA_OFFSET_S) // DAY_S
    cap_group = [pl.col("person"), pl.col("behaviour"), pl.col("_cap_key"), day, credited]
    before = (pl.col("reduction_g").cum_sum() - pl.col("reduction_g")).over(cap_group)
    allowed = pl.min_horizontal(pl.col("reduction_g"), pl.max_horizontal(pl.col("_cap_g") - before, 0))
    frame = frame.with_columns(pl.when(credited).then(allowed).otherwise(0).alias("credited_g"))
    capped = credited & (pl.col("credited_g") < pl.col("reduction_g"))
    return frame.with_columns(
        pl.when(capped)
        .then(pl.lit(ErrorCode.DAILY_CAP_REACHED.value))
        .otherwise(pl.col("code"))
        .alias("code"),
        pl.when(credited).then(pl.col("reduction_g")).otherwise(0).alias("reduction_g"),
        pl.when(credited).then(pl.col("methodology")).alias("methodology"),
        pl.when(credited).then(pl.col("parameters_sha256")).alias("parameters_sha256"),
        *(
            pl.when(pl.col("_valid")).then(pl.col(name)).alias(name)
            for name in ("partner", "account_ref", "external_id")
        ),
    )
