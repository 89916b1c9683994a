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
* duplicates come from a 64-bit hash of (partner, external id), confirmed exactly;
* overlaps and daily caps come from one sort by (person, behaviour, start, end, row), in parts
  split by person.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

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
BEHAVIOUR_NAMES = [b.value for b in Behaviour]
BEHAVIOURS = pl.Enum(BEHAVIOUR_NAMES)
CODES = pl.Enum([c.value for c in ErrorCode])
CAP_KEY_NAMES = ["", *ALL_MODES]
CAP_KEYS = pl.Enum(CAP_KEY_NAMES)
CHUNK_ROWS = 500_000
PART_ROWS = 4_000_000
# Up to this many rows a query runs on Polars' in-memory engine: an API request's 1,000 records take
# half the time there (6 ms against 11 ms for the row steps), while from about 200,000 rows on the
# default (streaming) engine is as fast or faster and holds less at once.
IN_MEMORY_ROWS = 100_000
Engine = Literal["auto", "in-memory"]
OUTPUT_INPUTS = ("code", "partner", "account_ref", "external_id", "behaviour", "reduction_g")
GROUP_STRIDE_S = 2**35  # more seconds than any valid end time: keeps each group's running values apart


@dataclass(frozen=True)
class BatchResult:
    """Per row: code, ids, methodology, parameter hash, reduction and credited grams; per account: totals."""

    credits: pl.DataFrame
    totals: pl.DataFrame


def credit_frame(
    raw: pl.DataFrame | pl.LazyFrame,
    book: Book,
    *,
    now_s: int,
    chunk_rows: int = CHUNK_ROWS,
    part_rows: int = PART_ROWS,
    in_memory_rows: int = IN_MEMORY_ROWS,
) -> BatchResult:
    """Validate, check, de-duplicate and credit every row of ``raw`` (see the module docstring).

    The row-by-row steps run on slices of ``chunk_rows`` rows, so a lazy scan of a large file is
    never held whole; the cross-row steps then work on narrow integer and categorical columns,
    overlaps and caps in parts of about ``part_rows`` rows (see ``_overlaps_and_caps``).
    """
    lazy = raw.lazy()
    total = lazy.select(pl.len()).collect().item()
    engine: Engine = "in-memory" if total <= in_memory_rows else "auto"
    parts = [
        _row_steps(lazy.slice(offset, chunk_rows), book, now_s).collect(engine=engine)
        for offset in range(0, max(total, 1), chunk_rows)
    ]
    rows = pl.concat(parts)  # one chunk per column: the later steps then copy nothing to align them
    del parts
    if not rows[ROW].is_sorted():
        rows = rows.sort(ROW)
    rows = _duplicates(rows, part_rows)
    late = _overlaps_and_caps(rows, book, part_rows, engine).sort(ROW)
    # Only what the output needs stays: the columns of the cross-row steps are freed before it is built.
    rows = _with_late_columns(rows.select(ROW, *OUTPUT_INPUTS), late)
    del late
    credits = rows.select(_output_columns(book))
    del rows
    totals = (
        credits.lazy()
        .filter(pl.col("credited_g") > 0)
        .group_by("partner", "account_ref")
        .agg(pl.col("credited_g").sum())
        .sort("partner", "account_ref")
        .collect(engine=engine)
    )
    return BatchResult(credits=credits, totals=totals)


def _row_steps(frame: pl.LazyFrame, book: Book, now_s: int) -> pl.LazyFrame:
    """Everything decided by one row alone: validation, plausibility, methodology."""
    frame = frame.with_columns(_coerced(frame.collect_schema()))
    frame = frame.with_columns(_measure_columns()).with_columns(_validation().alias("code"))
    frame = frame.with_columns(pl.col("code").is_null().alias("_valid"))
    return _priced(_plausibility(frame, book.rules, now_s), book).select(_narrow_columns(book))


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
            seconds = epoch_seconds(column, schema[name])
            out.append(seconds.alias(name))
            out.append((column.is_not_null() & seconds.is_null()).alias(f"_bad_{name}"))
    for reserved in (UNKNOWN_COLUMN, MALFORMED_COLUMN):
        if reserved not in schema:
            out.append(pl.lit(None, dtype=pl.String).alias(reserved))
    return out


def epoch_seconds(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
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
    return frame.with_columns(pl.col("code").fill_null(code), mode.alias("mode"))


def _great_circle_m() -> pl.Expr:
    """As ``domain.great_circle_m``: haversine, whole metres, half up."""
    lat1, lat2 = pl.col("origin_lat").radians(), pl.col("destination_lat").radians()
    dlat = lat2 - lat1
    dlon = (pl.col("destination_lon") - pl.col("origin_lon")).radians()
    h = (dlat / 2).sin().pow(2) + lat1.cos() * lat2.cos() * (dlon / 2).sin().pow(2)
    return (2 * EARTH_RADIUS_KM * h.sqrt().arcsin() * 1000 + 0.5).floor().cast(pl.Int64)


# --- methodology --------------------------------------------------------------------------------


def coefficient_table(book: Book) -> pl.DataFrame:
    """Integer coefficients per (behaviour, key): grams = max(0, sum(c_i x measure_i)) // denominator.
    Worked out once per book (a book is immutable): the intake credits many small batches."""
    kept = _COEFFICIENTS.get(id(book))
    if kept is not None and kept[0]() is book:
        return kept[1]
    table = _coefficient_table(book)
    _COEFFICIENTS[id(book)] = (weakref.ref(book), table)
    return table


_COEFFICIENTS: dict[int, tuple[weakref.ref[Book], pl.DataFrame]] = {}


def _coefficient_table(book: Book) -> pl.DataFrame:
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
    return frame.with_columns(pl.when(pl.col("code").is_null()).then(grams).otherwise(0).alias("reduction_g"))


# --- the cross-row steps ---------------------------------------------------------------------------


def _cap_tables(book: Book) -> tuple[dict[str, str], dict[str, int]]:
    """Per "behaviour:mode": the cap key (the mode if it has its own cap, else "") and the cap in grams."""
    keys: dict[str, str] = {}
    caps: dict[str, int] = {}
    for behaviour, (_, parameters) in book.methodologies.items():
        for mode in MODES[behaviour]:
            keys[f"{behaviour.value}:{mode}"], caps[f"{behaviour.value}:{mode}"] = daily_cap(parameters, mode)
    return keys, caps


def _narrow_columns(book: Book) -> list[pl.Expr]:
    """What the cross-row steps and the output need, in compact types."""
    keys, _ = _cap_tables(book)
    behaviour_mode = pl.concat_str("behaviour", pl.lit(":"), "mode")
    valid = pl.col("_valid")
    return [
        pl.col(ROW).cast(pl.Int64),
        pl.col("code").cast(CODES),
        valid,
        *(
            pl.when(valid).then(pl.col(name)).cast(pl.Categorical).alias(name)
            for name in ("partner", "account_ref")
        ),
        pl.when(valid).then(pl.col("external_id")).alias("external_id"),
        pl.col("person").cast(pl.Categorical),
        pl.col("behaviour").cast(BEHAVIOURS, strict=False),
        pl.col("start_time"),
        pl.col("end_time"),
        pl.col("reduction_g"),
        behaviour_mode.replace_strict(keys, default=None, return_dtype=CAP_KEYS).alias("_cap_key"),
    ]


def _duplicates(rows: pl.DataFrame, part_rows: int) -> pl.DataFrame:
    """Valid rows whose (partner, external id) an earlier valid row used: ``duplicate_record``.

    Rows are found by a 64-bit hash first, a part of the hash range at a time; only rows whose
    hash repeats are compared exactly.
    """
    ids = pl.struct(pl.col("partner").to_physical(), "external_id")
    hashed = rows.select(pl.when(pl.col("_valid")).then(ids.hash()).alias("_h")).to_series()
    parts = max(1, -(-rows.height // part_rows))
    repeated = pl.repeat(False, rows.height, dtype=pl.Boolean, eager=True)
    for index in range(parts):
        mine = (hashed % parts == index).fill_null(False)
        repeated = repeated.scatter(mine.arg_true(), hashed.filter(mine).is_duplicated())
    if not repeated.any():
        return rows
    suspects = rows.filter(repeated).select(ROW, first=ids.is_first_distinct())
    again = suspects.filter(~pl.col("first"))[ROW].implode()
    return rows.with_columns(
        pl.when(pl.col(ROW).is_in(again))
        .then(pl.lit(ErrorCode.DUPLICATE_RECORD.value, dtype=CODES))
        .otherwise(pl.col("code"))
        .alias("code"),
        pl.when(pl.col(ROW).is_in(again)).then(0).otherwise(pl.col("reduction_g")).alias("reduction_g"),
    )


def _overlaps_and_caps(rows: pl.DataFrame, book: Book, part_rows: int, engine: Engine) -> pl.DataFrame:
    """Per priced row: ``overlapping_behaviour``, or the grams left under its daily cap.

    People never interact, so the priced rows are split by a hash of who did them into parts of
    about ``part_rows`` rows, and each part is sorted and credited on its own (bounded memory).

    """
    unlinked = pl.col("person").is_null()
    keys = [
        pl.col("person").to_physical().alias("_k1"),
        pl.when(unlinked).then(pl.col("partner").to_physical()).alias("_k2"),
        pl.when(unlinked).then(pl.col("account_ref").to_physical()).alias("_k3"),
        pl.col("behaviour").to_physical().alias("_k4"),
    ]
    order = ["_k1", "_k2", "_k3", "_k4", "start_time", "end_time", ROW]
    keys_by_mode, caps_by_mode = _cap_tables(book)
    cap_keys = sorted(set(keys_by_mode.values()))
    # The cap of a row, by (behaviour, cap key) positions in their Enums.
    caps = {
        BEHAVIOUR_NAMES.index(bm.split(":")[0]) * 16 + CAP_KEY_NAMES.index(keys_by_mode[bm]): cap
        for bm, cap in caps_by_mode.items()
    }
    cap_g = (
        pl.col("behaviour").to_physical().cast(pl.Int64) * 16 + pl.col("_cap_key").to_physical()
    ).replace_strict(caps, return_dtype=pl.Int64)
    priced = rows.lazy().filter(pl.col("code").is_null())
    parts = max(1, -(-rows.height // part_rows))
    part = pl.struct(keys[:3]).hash() % parts
    columns = [pl.col(ROW, "start_time", "end_time", "reduction_g", "_cap_key"), cap_g.alias("_cap_g"), *keys]
    credited = [
        _credit_part(
            priced.filter(part == index).select(columns).sort(order, nulls_last=True),
            cap_keys,
            engine,
        )
        for index in range(parts)
    ]
    return pl.concat(credited)


def _credit_part(frame: pl.LazyFrame, cap_keys: list[str], engine: Engine) -> pl.DataFrame:
    """Overlaps and caps of the rows of whole (person, behaviour) groups, sorted as the reference.

    Sorted by person (a linked person, else the partner's account), behaviour, start, end and row,
    each (person, behaviour) is a contiguous group, numbered where the sorted keys change. Windows
    over groups are then running values over the whole column, offset so that they restart at
    each group: no hash tables over millions of groups.
    """
    changed = pl.any_horizontal(
        [pl.col(k).ne_missing(pl.col(k).shift(1)) for k in ("_k1", "_k2", "_k3", "_k4")]
    )
    frame = frame.with_columns(changed.fill_null(True).cum_sum().cast(pl.Int64).alias("_group"))
    frame = frame.drop("_k1", "_k2", "_k3", "_k4")
    # Overlap: the latest end so far, keyed by group so that an earlier group's ends never count.
    keyed_end = pl.col("_group") * GROUP_STRIDE_S + pl.col("end_time")
    overlap = (pl.col("_group") * GROUP_STRIDE_S + pl.col("start_time")) < keyed_end.cum_max().shift(1)
    frame = frame.with_columns(overlap.fill_null(False).alias("_overlap"))
    # Caps: per cap key, the running sum of credited-to-be grams, restarted at each (group, day).
    day = (pl.col("start_time") + CHINA_OFFSET_S) // DAY_S
    frame = frame.with_columns(day.alias("_day"))
    starts = (pl.col("_group") != pl.col("_group").shift(1)) | (pl.col("_day") != pl.col("_day").shift(1))
    before: pl.Expr = pl.lit(0, dtype=pl.Int64)
    for cap_key in cap_keys:
        own = (
            pl.when(~pl.col("_overlap") & (pl.col("_cap_key") == cap_key))
            .then(pl.col("reduction_g"))
            .otherwise(0)
        )
        running = own.cum_sum() - own
        at_start = pl.when(starts.fill_null(True)).then(running).forward_fill()
        before = pl.when(pl.col("_cap_key") == cap_key).then(running - at_start).otherwise(before)
    allowed = pl.min_horizontal("reduction_g", pl.max_horizontal(pl.col("_cap_g") - before, 0))
    credited = pl.when(pl.col("_overlap")).then(0).otherwise(allowed)
    code = (
        pl.when(pl.col("_overlap"))
        .then(pl.lit(ErrorCode.OVERLAPPING_BEHAVIOUR.value, dtype=CODES))
        .when(credited < pl.col("reduction_g"))
        .then(pl.lit(ErrorCode.DAILY_CAP_REACHED.value, dtype=CODES))
    )
    return frame.select(ROW, credited.alias("credited_g"), code.alias("_late_code")).collect(engine=engine)


def _with_late_columns(rows: pl.DataFrame, late: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with the credited grams and late codes of its priced rows, placed by position.

    Both frames are in row order and ``late`` holds exactly the rows of ``rows`` without a code,
    so the values scatter into place without a join.
    """
    positions = rows.select(pl.col("code").is_null().arg_true()).to_series()
    credited = pl.zeros(rows.height, dtype=pl.Int64, eager=True).scatter(positions, late["credited_g"])
    codes = pl.repeat(None, rows.height, dtype=CODES, eager=True).alias("_late_code")
    codes = codes.scatter(positions, late["_late_code"])
    return rows.with_columns(credited.alias("credited_g"), codes)


def _output_columns(book: Book) -> list[pl.Expr]:
    methodologies = {b.value: m.ref for b, (m, _) in book.methodologies.items()}
    hashes = {b.value: p.sha256 for b, (_, p) in book.methodologies.items()}
    refs, digests = pl.Enum(sorted(set(methodologies.values()))), pl.Enum(sorted(set(hashes.values())))
    # Looked up by the behaviour's position in its Enum: no text column per row on the way.
    behaviour = pl.col("behaviour").to_physical()
    by_position = dict(enumerate(BEHAVIOUR_NAMES))
    code = pl.coalesce("_late_code", "code")
    counted = code.is_null() | (code == ErrorCode.DAILY_CAP_REACHED.value)
    return [
        pl.col(ROW),
        code.alias("code"),
        pl.col("partner"),
        pl.col("account_ref"),
        pl.col("external_id"),
        pl.when(counted)
        .then(
            behaviour.replace_strict({i: methodologies[b] for i, b in by_position.items()}, return_dtype=refs)
        )
        .alias("methodology"),
        pl.when(counted)
        .then(behaviour.replace_strict({i: hashes[b] for i, b in by_position.items()}, return_dtype=digests))
        .alias("parameters_sha256"),
        pl.when(counted).then(pl.col("reduction_g")).otherwise(0).alias("reduction_g"),
        pl.col("credited_g"),
    ]
