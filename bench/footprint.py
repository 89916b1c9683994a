"""Benchmark: the footprint engine, Parquet in to Parquet out, against a per-row baseline.

Usage:  .venv/bin/python bench/footprint.py [--rows 10000000] [--seed 20250101]

What it does, in one run:

1. Generates a seeded, typed Parquet input (cached in bench/results/ by rows, seed and generator
   version): 30% flights, 20% cars, 20% hotels, 20% electricity, 10% the eight other types, and
   about 0.1% invalid rows that must come out with an error code.
2. Runs ``service.compute_batch`` end to end in a subprocess, once with POLARS_MAX_THREADS=1 and
   once with Polars' default thread count (Polars reads the variable at import, hence the
   subprocesses). Wall time, CPU time and the peak RSS of each subprocess are recorded.
3. Measures the baseline in the same run, in a one-thread subprocess: the independent scalar oracle
   (tests/unit/footprint/oracle.py, ``oracle_kg(activity) -> Decimal``) if it exists, otherwise
   ``service.calculate`` called with one activity at a time. The sample is the first
   ``--baseline-rows`` rows, cut short after ``--baseline-seconds``.
4. Prints the table, writes bench/results/footprint-<timestamp>.json and rewrites the footprint
   section of docs/benchmarks.md. If the engine misses the goal (1,000,000 rows/s per core), it
   also profiles where the time goes: read, evaluate, write, summary, and each activity type's rows
   alone (``--profile``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
ORACLE = ROOT / "tests" / "unit" / "footprint" / "oracle.py"
GENERATOR_VERSION = 1  # bump when the generated data changes, so the cache is not reused
GOAL_ROWS_PER_S_PER_CORE = 1_000_000
MICRO_KG = Decimal("0.000001")
SECTION_BEGIN = "<!-- footprint:begin (written by bench/footprint.py) -->"
SECTION_END = "<!-- footprint:end -->"
META_INVALID = "neutralize.bench.expected_invalid_rows"

# --- the generated activities -----------------------------------------------------------------

AIRPORTS = [
    *("LHR", "LGW", "MAN", "EDI", "GLA", "BHX", "BRS", "STN", "LTN", "BFS", "ABZ"),  # UK: domestic hauls
    *("CDG", "ORY", "AMS", "FRA", "MUC", "MAD", "BCN", "FCO", "MXP", "ZRH", "VIE", "CPH", "ARN", "OSL"),
    *("HEL", "DUB", "LIS", "ATH", "IST", "WAW", "PRG", "BRU"),
    *("JFK", "LAX", "ORD", "SFO", "ATL", "DFW", "SEA", "BOS", "YYZ", "YVR", "MEX", "GRU"),
    *("PEK", "PVG", "CAN", "CTU", "SZX", "HKG", "NRT", "HND", "ICN", "SIN", "BKK", "DEL", "BOM", "DXB"),
    *("DOH", "SYD", "MEL", "JNB"),
]
UNKNOWN_AIRPORT = "QQQ"  # well-formed, but not in airportsdata
# (value, weight) lists; weights are relative.
TYPES = (("flight", 120), ("car", 80), ("hotel", 80), ("electricity", 80), ("taxi", 5), ("motorbike", 5),
         ("bus", 5), ("rail", 5), ("ferry", 5), ("meal", 5), ("fuel", 5), ("freight", 5))  # fmt: skip
HOTEL_COUNTRIES = (("CN", 20), ("DE", 15), ("US", 20), ("GB", 15), ("GB-LND", 5), ("JP", 8), ("FR", 5),
                   ("SG", 3), ("IN", 3), ("AE", 2), ("NL", 2), ("ES", 2))  # fmt: skip
ELECTRICITY_REGIONS = (("CN-SC", 10), ("CN-GD", 12), ("CN-JS", 10), ("CN-ZJ", 8), ("CN-SD", 6),
                       ("CN-BJ", 5), ("CN-SH", 6), ("CN-HB", 4), ("CN-YN", 3), ("CN-XJ", 2),
                       ("CN-NM", 2), ("CN-FJ", 2), ("CN", 10), ("GB", 20))  # fmt: skip
CABINS = (("economy", 55), ("premium_economy", 8), ("business", 15), ("first", 2), ("average", 20))
CAR_FUELS = (
    ("petrol", 35),
    ("diesel", 25),
    ("hybrid", 15),
    ("plugin_hybrid", 5),
    ("bev", 10),
    ("unknown", 10),
)
SIZES = (("small", 25), ("medium", 35), ("large", 15), ("average", 25))
TRIP_COUNTRIES = ((None, 70), ("GB", 12), ("DE", 6), ("US", 6), ("CN", 6))
RAIL_MODES = (("national_rail", 50), ("international_rail", 10), ("light_rail_tram", 15), ("metro", 25))
FERRY_MODES = (("foot_passenger", 40), ("car_passenger", 30), ("average", 30))
DIETS = (
    ("vegan", 5),
    ("vegetarian", 15),
    ("fish", 10),
    ("low_meat", 25),
    ("medium_meat", 30),
    ("high_meat", 15),
)
BURNED_FUELS = (("diesel", 35), ("petrol", 20), ("natural_gas", 25), ("lpg", 10), ("coal", 10))
VEHICLES = (("hgv_diesel", 20), ("hgv_rigid", 20), ("hgv_artic", 20), ("van_diesel", 25), ("van_petrol", 10),
            ("van_bev", 5))  # fmt: skip
LOADS = (("empty", 10), ("half", 25), ("full", 25), ("average_laden", 40))
RADIATIVE_FORCING = ((None, 18), (True, 1), (False, 1))
PASSENGERS = ((1.0, 85), (2.0, 10), (3.0, 3), (4.0, 2))
NAMED_SETS = ((None, 90), ("DESNZ-2024", 6), ("DESNZ-2025", 4))
YEARS = ((2021, 1), (2022, 1), (2023, 1), (2024, 1))
DISTANCE_KM = {"car": (2, 600), "taxi": (1, 60), "motorbike": (1, 200), "bus": (1, 300), "rail": (2, 1200),
               "ferry": (5, 400), "freight": (5, 1500)}  # fmt: skip
INVALID_SHARE = 0.001


class Draws:
    """Independent seeded uniform streams over the row index ``i``: hashing, not a generator state."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def u(self, stream: int) -> pl.Expr:
        """A uniform float in [0, 1) per row, for ``stream``."""
        hashed = pl.col("i").hash(seed=self.seed * 1_000_003 + stream)
        return (hashed // 2048).cast(pl.Float64) / float(2**53)

    def pick(self, stream: int, weighted: tuple[tuple[Any, int], ...], dtype: pl.DataType) -> pl.Expr:
        slots = [value for value, weight in weighted for _ in range(weight)]
        index = (self.u(stream) * len(slots)).cast(pl.UInt32)
        return pl.lit(pl.Series(slots, dtype=dtype)).gather(index)

    def whole(self, stream: int, low: int, high: int) -> pl.Expr:
        """A whole number in [low, high], as Float64 (the engine's number type)."""
        return (self.u(stream) * (high - low + 1)).floor() + low

    def log_uniform(self, stream: int, low: float, high: float, decimals: int = 1) -> pl.Expr:
        span = pl.lit(high / low).log()
        return ((self.u(stream) * span).exp() * low).round(decimals)


def generate(rows: int, seed: int) -> tuple[pl.DataFrame, int]:
    """The input table and the number of rows made invalid on purpose."""
    d = Draws(seed)
    base = pl.select(i=pl.int_range(rows, dtype=pl.UInt64)).lazy()
    base = base.with_columns(type=d.pick(0, TYPES, pl.String()), _bad=d.u(99) < INVALID_SHARE)
    frame = base.with_columns(_flight_columns(d) + _travel_columns(d)).with_columns(
        _stay_and_energy_columns(d)
    )
    frame = frame.with_columns(_amount_columns(d)).with_columns(_invalid_rows())
    bad = pl.col("_bad")
    out = frame.with_columns(ref=pl.concat_str([pl.lit("bench-"), pl.col("i").cast(pl.String)])).collect()
    expected_invalid = int(out.select(bad.sum()).item())
    return out.select(COLUMNS), expected_invalid


def _flight_columns(d: Draws) -> list[pl.Expr]:
    t = pl.col("type")
    flight = t == "flight"
    n = len(AIRPORTS)
    origin = (d.u(1) * n).cast(pl.UInt32)
    destination = (origin + 1 + (d.u(2) * (n - 1)).cast(pl.UInt32)) % n  # never the origin
    codes = pl.lit(pl.Series(AIRPORTS))
    return [
        pl.when(flight).then(codes.gather(origin)).alias("origin"),
        pl.when(flight).then(codes.gather(destination)).alias("destination"),
        pl.when(flight).then(d.u(3) < 0.45).alias("round_trip"),
        pl.when(flight).then(d.pick(4, CABINS, pl.String())).alias("cabin"),
        pl.when(flight).then(d.pick(5, RADIATIVE_FORCING, pl.Boolean())).alias("radiative_forcing"),
        pl.when(flight | (t == "bus")).then(d.pick(6, PASSENGERS, pl.Float64()))
        .when((t == "taxi") & (d.u(7) < 0.2)).then(d.whole(8, 1, 3))  # basis "passenger", below
        .alias("passengers"),
        pl.when(t.is_in(["flight", "car", "hotel"])).then(d.pick(9, NAMED_SETS, pl.String()))
        .alias("factor_set"),
    ]  # fmt: skip


def _travel_columns(d: Draws) -> list[pl.Expr]:
    t = pl.col("type")
    road = t.is_in(["car", "taxi", "motorbike", "bus", "rail", "ferry", "freight"])
    return [
        pl.when(t == "car").then(d.pick(10, CAR_FUELS, pl.String()))
        .when(t == "fuel").then(d.pick(11, BURNED_FUELS, pl.String())).alias("fuel"),
        pl.when(t.is_in(["car", "motorbike"])).then(d.pick(12, SIZES, pl.String())).alias("size"),
        pl.when((t == "taxi") & (d.u(7) < 0.2)).then(pl.lit("passenger")).alias("basis"),
        pl.when(t == "bus").then(d.pick(13, (("local_bus", 70), ("coach", 30)), pl.String()))
        .when(t == "rail").then(d.pick(14, RAIL_MODES, pl.String()))
        .when(t == "ferry").then(d.pick(15, FERRY_MODES, pl.String())).alias("mode"),
        pl.when(t == "freight").then(d.pick(16, VEHICLES, pl.String())).alias("vehicle"),
        pl.when(t == "freight").then(d.pick(17, LOADS, pl.String())).alias("load"),
        pl.when(road | (t == "meal")).then(d.pick(18, TRIP_COUNTRIES, pl.String())).alias("country_trip"),
        pl.when(road).then(d.u(19) < 0.15).alias("_in_miles"),
    ]  # fmt: skip


def _stay_and_energy_columns(d: Draws) -> list[pl.Expr]:
    t = pl.col("type")
    hotel = t == "hotel"
    stateless = hotel & (d.u(20) < 0.01)  # a country without a hotel factor, with a fallback
    return [
        pl.when(stateless).then(pl.lit("IS")).when(hotel).then(d.pick(21, HOTEL_COUNTRIES, pl.String()))
        .otherwise(pl.col("country_trip")).alias("country"),
        pl.when(stateless).then(pl.lit("GB")).alias("fallback_country"),
        pl.when(hotel).then(d.whole(22, 1, 14)).alias("nights"),
        pl.when(hotel & (d.u(23) < 0.15)).then(d.whole(24, 2, 3)).alias("rooms"),
        pl.when(t == "electricity").then(d.pick(25, ELECTRICITY_REGIONS, pl.String())).alias("region"),
        pl.when((t == "electricity") & (d.u(26) < 0.9)).then(d.pick(27, YEARS, pl.Float64()))
        .when(d.u(26) < 0.5).then(d.pick(27, YEARS, pl.Float64())).alias("year"),
        pl.when(t == "meal").then(d.pick(28, DIETS, pl.String())).alias("diet"),
        pl.when(t == "meal").then(d.whole(29, 1, 500)).alias("count"),
        pl.when(t == "freight").then(d.log_uniform(30, 0.2, 25.0, 2)).alias("_tonnes"),
    ]  # fmt: skip


def _amount_columns(d: Draws) -> list[pl.Expr]:
    t = pl.col("type")
    distance: Any = pl  # a when/then chain, built up
    for stream, (kind, (low, high)) in enumerate(DISTANCE_KM.items(), start=40):
        distance = distance.when(t == kind).then(d.log_uniform(stream, low, high))
    km: pl.Expr = distance.otherwise(None)
    fuel = pl.col("fuel")
    burned = t == "fuel"
    gas_in_kwh = burned & (fuel == "natural_gas") & (d.u(50) < 0.6)
    return [
        pl.when(~pl.col("_in_miles")).then(km).alias("distance_km"),
        pl.when(pl.col("_in_miles")).then((km / 1.609344).round(1)).alias("distance_miles"),
        pl.when(t == "electricity").then(d.log_uniform(51, 10, 5_000_000))
        .when(gas_in_kwh).then(d.log_uniform(52, 100, 500_000)).alias("kwh"),
        pl.when(burned & fuel.is_in(["diesel", "petrol", "lpg"])).then(d.log_uniform(53, 10, 50_000))
        .alias("litres"),
        pl.when(burned & (fuel == "coal")).then(d.log_uniform(54, 100, 1_000_000)).alias("kg"),
        pl.when(burned & (fuel == "natural_gas") & ~gas_in_kwh).then(d.log_uniform(55, 10, 100_000))
        .alias("m3"),
        pl.when(burned & fuel.is_in(["diesel", "petrol"]) & (d.u(56) < 0.1)).then(pl.lit("mineral"))
        .alias("blend"),
        pl.when((t == "freight") & (pl.col("load") != "empty")).then(pl.col("_tonnes")).alias("tonnes"),
    ]  # fmt: skip


def _invalid_rows() -> list[pl.Expr]:
    """About 0.1% of rows break one rule: an unknown airport, or a number out of range."""
    bad, t = pl.col("_bad"), pl.col("type")
    negative = {name: pl.when(bad).then(-pl.col(name)).otherwise(pl.col(name)).alias(name)
                for name in ("distance_km", "distance_miles", "kwh", "litres", "kg", "m3")}  # fmt: skip
    return [
        *negative.values(),
        pl.when(bad & (t == "flight"))
        .then(pl.lit(UNKNOWN_AIRPORT))
        .otherwise(pl.col("origin"))
        .alias("origin"),
        pl.when(bad & (t == "hotel")).then(0.0).otherwise(pl.col("nights")).alias("nights"),
        pl.when(bad & (t == "meal")).then(0.0).otherwise(pl.col("count")).alias("count"),
    ]


COLUMNS = ["type", "ref", "factor_set", "year", "origin", "destination", "round_trip", "cabin",
           "radiative_forcing", "passengers", "distance_km", "distance_miles", "fuel", "size", "basis",
           "mode", "vehicle", "load", "tonnes", "country", "fallback_country", "nights", "rooms",
           "region", "kwh", "litres", "kg", "m3", "blend", "diet", "count"]  # fmt: skip


def input_file(rows: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The cached input for (rows, seed), generated on first use."""
    path = RESULTS / f"footprint-input-{rows}-{seed}-g{GENERATOR_VERSION}.parquet"
    if path.exists():
        meta = pl.read_parquet_metadata(path)
        return path, {"path": str(path.relative_to(ROOT)), "cached": True, "seconds": 0.0,
                      "expected_invalid_rows": int(meta[META_INVALID])}  # fmt: skip
    start = perf_counter()
    frame, invalid = generate(rows, seed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.parquet")
    frame.write_parquet(partial, metadata={META_INVALID: str(invalid)})
    partial.replace(path)
    seconds = perf_counter() - start
    return path, {"path": str(path.relative_to(ROOT)), "cached": False, "seconds": round(seconds, 2),
                  "expected_invalid_rows": invalid}  # fmt: skip


# --- workers (each runs in its own subprocess) --------------------------------------------------


def engine_worker(source: Path, destination: Path) -> dict[str, Any]:
    """``compute_batch`` from Parquet to Parquet, with the factor tables built beforehand."""
    from neutralize.footprint import service
    from neutralize.footprint.tables import engine_tables

    start = perf_counter()
    engine_tables()
    tables_s = perf_counter() - start
    cpu, start = _cpu_s(), perf_counter()
    summary = service.compute_batch(source=source, destination=destination)
    wall_s, batch_cpu_s = perf_counter() - start, _cpu_s() - cpu
    return {"threads": pl.thread_pool_size(), "tables_s": tables_s, "wall_s": wall_s,
            "batch_cpu_s": batch_cpu_s, "rows": summary.rows,
            "computed": summary.computed, "failed": summary.failed,
            "total_kg_co2e": str(summary.total_kg_co2e)}  # fmt: skip


def _load_oracle() -> Callable[[dict[str, Any]], Decimal] | None:
    if not ORACLE.exists():
        return None
    spec = importlib.util.spec_from_file_location("footprint_oracle", ORACLE)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    oracle: Callable[[dict[str, Any]], Decimal] | None = getattr(module, "oracle_kg", None)
    return oracle


def _activities(source: Path, rows: int) -> list[dict[str, Any]]:
    """The first ``rows`` rows as JSON-like activities: no null keys, whole numbers as int."""
    from neutralize.footprint.vocabulary import FIELDS

    whole = {name for name, spec in FIELDS.items() if spec.kind == "integer"}
    out = []
    for record in pl.read_parquet(source, n_rows=rows).iter_rows(named=True):
        out.append({k: int(v) if k in whole and float(v).is_integer() else v
                    for k, v in record.items() if v is not None})  # fmt: skip
    return out


def baseline_worker(source: Path, rows: int, seconds: float) -> dict[str, Any]:
    """One activity at a time: the scalar oracle if present, else ``service.calculate``."""
    from neutralize.footprint import service

    activities = _activities(source, rows)
    oracle = _load_oracle()
    if oracle is not None:
        kind, compute = "oracle (tests/unit/footprint/oracle.py, oracle_kg)", oracle
    else:
        kind = "service.calculate, one activity per call (oracle.py not found)"

        def compute(activity: dict[str, Any]) -> Decimal:
            return service.calculate(activities=[activity]).total_kg_co2e

    for activity in activities[:50]:  # warm caches (factor files, tables) outside the clock
        _attempt(compute, activity)
    results: list[str | None] = []
    refusals: dict[str, int] = {}
    start = perf_counter()
    for activity in activities:
        kg, refusal = _attempt(compute, activity)
        results.append(kg)
        if refusal is not None:
            refusals[refusal] = refusals.get(refusal, 0) + 1
        if perf_counter() - start > seconds:
            break
    wall_s = perf_counter() - start
    return {"kind": kind, "rows": len(results), "wall_s": wall_s, "refusals": refusals, "results": results}


def _attempt(
    compute: Callable[[dict[str, Any]], Decimal], activity: dict[str, Any]
) -> tuple[str | None, str | None]:
    """The baseline's answer as text, or the name of the exception it refused the row with."""
    try:
        return str(compute(activity)), None
    # The baseline's refusals are counted by exception type and reported, never hidden: the
    # oracle does not validate, so an invalid row may fail in any way.
    except Exception as refusal:
        return None, type(refusal).__name__


# --- profile ------------------------------------------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(label: str, action: Callable[[], Any], into: list[dict[str, Any]], repeats: int = 2) -> Any:
    """Run ``action`` ``repeats`` times; keep the run with the least CPU time (the machine may be shared)."""
    best: tuple[float, float] | None = None
    value = None
    for _ in range(repeats):
        cpu, start = _cpu_s(), perf_counter()
        value = action()
        took = (perf_counter() - start, _cpu_s() - cpu)
        best = took if best is None or took[1] < best[1] else best
    assert best is not None
    into.append({"what": label, "wall_s": best[0], "cpu_s": best[1]})
    return value


def profile_worker(source: Path, rows: int) -> dict[str, Any]:
    """Where the time goes, through public entry points only: read, evaluate, write, summary, and
    ``evaluate`` on each activity type's rows alone (its cost per row, fixed costs included)."""
    from neutralize.footprint import service
    from neutralize.footprint.domain import ROW, evaluate
    from neutralize.footprint.tables import engine_tables

    tables = engine_tables()
    stages: list[dict[str, Any]] = []
    raw = _timed("read parquet (eager)", lambda: pl.read_parquet(source, n_rows=rows), stages)
    raw = raw.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    out = _timed("evaluate, all rows (in memory)", lambda: evaluate(raw, tables), stages)
    with tempfile.TemporaryDirectory() as tmp:
        _timed("write parquet (the output)", lambda: out.write_parquet(Path(tmp) / "out.parquet"), stages)
    _timed("summary (counts, total, hints for the first errors)", lambda: service._summary(out), stages)
    by_type: list[dict[str, Any]] = []
    for (kind,), part in sorted(raw.partition_by("type", as_dict=True).items(), key=lambda kv: str(kv[0])):
        _timed(f"evaluate, {kind} rows only ({part.height:,})", lambda p=part: evaluate(p, tables), by_type)
    return {"rows": raw.height, "threads": pl.thread_pool_size(), "stages": stages, "by_type": by_type}


# --- orchestration ------------------------------------------------------------------------------


class WorkerFailedError(RuntimeError):
    """A worker subprocess exited with an error; its traceback went to stderr."""


def run_worker(args: list[str], *, threads: int | None) -> tuple[dict[str, Any], dict[str, float]]:
    """Run this script as a worker; its JSON answer, and its own wall time, CPU time and peak RSS."""
    env = dict(os.environ)
    env.pop("POLARS_MAX_THREADS", None)
    if threads is not None:
        env["POLARS_MAX_THREADS"] = str(threads)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as answer:
        answer_path = Path(answer.name)
    start = perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--worker", *args, "--answer", str(answer_path)], env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not the sum over all children
    process_s = perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    answer_text = answer_path.read_text()
    answer_path.unlink()
    if proc.returncode != 0:
        raise WorkerFailedError(f"worker {args[0]} failed with exit code {proc.returncode} (see its stderr)")
    answer_data = json.loads(answer_text)
    return answer_data, {"process_s": process_s, "cpu_s": usage.ru_utime + usage.ru_stime,
                         "peak_rss_mib": usage.ru_maxrss / 1024}  # fmt: skip


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        first = meminfo.read_text().splitlines()[0].split()
        mem_gib = round(int(first[1]) / 1024 / 1024, 1)
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model, "memory_gib": mem_gib,
            "python": platform.python_version(), "polars": pl.__version__,
            "os": platform.platform()}  # fmt: skip


def engine_runs(source: Path, keep: Path) -> list[dict[str, Any]]:
    runs = []
    for threads in (1, None):
        destination = RESULTS / f"footprint-output-{'1' if threads else 'default'}-threads.parquet"
        answer, usage = run_worker(["engine", "--source", str(source), "--destination", str(destination)],
                                   threads=threads)  # fmt: skip
        rows = answer["rows"]
        rate = rows / answer["wall_s"]
        answer.update(usage, threads_env=str(threads) if threads else "default", rows_per_s=rate,
                      rows_per_s_per_core=rate / answer["threads"],
                      rows_per_cpu_s=rows / answer["batch_cpu_s"],
                      cpu_utilisation=usage["cpu_s"] / usage["process_s"])  # fmt: skip
        runs.append(answer)
        if threads is None:
            destination.replace(keep)
        else:
            destination.unlink()
    return runs


def agreement(baseline: dict[str, Any], engine_output: Path) -> dict[str, Any]:
    """Sample rows the engine computed: how many the baseline gives the same kg for (6 decimals)."""
    results = baseline.pop("results")
    engine = pl.read_parquet(engine_output, columns=["kg_co2e", "error_code"], n_rows=len(results))
    same = 0
    worst = Decimal(0)
    differences: list[dict[str, Any]] = []
    engine_refused = 0
    for index, (theirs, (ours, code)) in enumerate(zip(results, engine.iter_rows(), strict=True)):
        if code is not None:  # the oracle does not validate: invalid rows are the engine's to refuse
            engine_refused += 1
            continue
        theirs_q = None if theirs is None else Decimal(theirs).quantize(MICRO_KG, rounding=ROUND_HALF_EVEN)
        if theirs_q == ours:
            same += 1
            continue
        if theirs_q is not None:
            worst = max(worst, abs(theirs_q - ours))
        differences.append({"row": index + 1, "baseline": theirs, "engine": str(ours)})
    return {"rows": len(results), "engine_refused": engine_refused, "computed": len(results) - engine_refused,
            "same": same, "differ": len(differences), "max_abs_diff_kg": str(worst),
            "first_differences": differences[:10]}  # fmt: skip


# --- reporting ----------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    one, default = result["engine"]
    base = result["baseline"]
    base_rate = base["rows_per_s"]
    goal = "met" if result["goal_met"] else "NOT met"
    agree = result["agreement"]

    def row(label: str, key: str, spec: str) -> str:
        return f"| {label} | {format(one[key], spec)} | {format(default[key], spec)} |"

    one["failed_of"] = f"{one['computed']:,} / {one['failed']:,}"
    default["failed_of"] = f"{default['computed']:,} / {default['failed']:,}"
    ratio = (one["rows_per_s"] / base_rate, default["rows_per_s"] / base_rate)
    lines = [
        "| measure | 1 thread | default threads |",
        "|---|---:|---:|",
        row("Polars threads", "threads", "d"),
        row("wall time, compute_batch (s)", "wall_s", ".2f"),
        row("engine rows/s", "rows_per_s", ",.0f"),
        row("engine rows/s per core (rows/s / threads)", "rows_per_s_per_core", ",.0f"),
        row("engine rows per CPU-second of compute_batch", "rows_per_cpu_s", ",.0f"),
        row("CPU utilisation of the process (CPU s / wall s)", "cpu_utilisation", ".2f"),
        row("peak RSS (MiB)", "peak_rss_mib", ",.0f"),
        f"| baseline rows/s (1 thread) | {base_rate:,.0f} | {base_rate:,.0f} |",
        f"| ratio engine / baseline (rows/s) | {ratio[0]:,.1f}x | {ratio[1]:,.1f}x |",
        row("rows computed / failed", "failed_of", ""),
    ]
    notes = [
        "",
        f"Rows: {result['rows']:,} (seed {result['seed']}); expected invalid rows: "
        f"{result['input']['expected_invalid_rows']:,}.",
        f"Baseline: {base['kind']}, {base['rows']:,} rows in {base['wall_s']:.1f} s; "
        f"same kg as the engine on {agree['same']:,} of the {agree['computed']:,} sample rows the engine "
        f"computed ({agree['engine_refused']} refused as invalid).",
        f"Goal (>= {GOAL_ROWS_PER_S_PER_CORE:,} rows/s per core, one thread): **{goal}**.",
        f"Load average (1/5/15 min) before the engine runs: {result['load_average']['before']}, "
        f"after the run: {result['load_average']['after']}.",
    ]
    return "\n".join(lines + notes)


def profile_table(profile: dict[str, Any]) -> str:
    head = ["| {} | wall s | CPU s |", "|---|---:|---:|"]
    lines = [f"Profile: {profile['rows']:,} rows in memory, {profile['threads']} thread(s); best of 2 runs "
             "by CPU time.", "", head[0].format("step"), head[1]]  # fmt: skip
    lines += [f"| {s['what']} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} |" for s in profile["stages"]]
    lines += ["", head[0].format("by activity type"), head[1]]
    lines += [f"| {p['what']} | {p['wall_s']:.2f} | {p['cpu_s']:.2f} |" for p in profile["by_type"]]
    return "\n".join(lines)


def write_doc(result: dict[str, Any], text: str) -> None:
    write_section(result, text, title="Footprint engine", begin=SECTION_BEGIN, end=SECTION_END)


def write_section(result: dict[str, Any], text: str, *, title: str, begin: str, end: str) -> None:
    """Replace the section between ``begin`` and ``end`` of docs/benchmarks.md (or add it) with the
    latest run: the machine, the commit measured, and ``text``."""
    m = result["machine"]
    section = "\n".join([
        begin,
        f"## {title} — latest run ({result['finished_at'][:10]})",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM; Python {m['python']}, "
        f"Polars {m['polars']}. Engine at commit {result['source']['commit']}"
        f"{' with uncommitted changes in src/' if result['source']['src_dirty'] else ''}. "
        f"Raw numbers: `bench/results/{result['json_name']}`.",
        "",
        text,
        end,
    ])  # fmt: skip
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else DOC_INTRO
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + section + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(current, encoding="utf-8")


DOC_INTRO = """# Benchmarks

Each benchmark lives in `bench/`, prints a ratio against a baseline measured in the same run, and
writes its raw numbers to `bench/results/` (JSON; the generated Parquet files are git-ignored).

## Footprint engine (`bench/footprint.py`)

What is measured: `neutralize.footprint.service.compute_batch` end to end, from a Parquet file in
to a Parquet file out (reading, validation, factor resolution, arithmetic, the summary, writing),
on a seeded input of 10,000,000 typed rows: 30% flights between ~60 real airports (UK ones
included), 20% cars, 20% hotels in covered countries, 20% electricity (Chinese provinces, CN and
GB, years 2021-2024), 10% taxi, motorbike, bus, rail, ferry, meal, fuel and freight, and ~0.1%
invalid rows (unknown airport, negative or zero amounts) that must come out with an error code.
The factor tables are built before the clock starts (about a second, once per process).

It runs twice, each in its own process: once with `POLARS_MAX_THREADS=1`, once with Polars'
default thread count. Rows/s per core is rows/s divided by the Polars thread count. Peak RSS is
the worker process's `ru_maxrss`. The goal is at least 1,000,000 rows/s per core.

The baseline is measured in the same run, in a one-thread process, one activity at a time: the
independent scalar oracle `tests/unit/footprint/oracle.py` (`oracle_kg`) when it exists, otherwise
`service.calculate` with a single activity per call. The table says which one was used. The
oracle's kg figures are also compared with the engine's output row by row ("same kg as the engine").

When the engine misses the goal, the script also times the engine's stages one by one on an
in-memory frame (one thread), and a few single expressions next to narrower variants, to show
where the time goes. Wall times on a shared machine are noisy: the table also gives CPU time and
the load average.

Run it:

```sh
make bench                                   # the line below, after setting up the virtualenv
.venv/bin/python bench/footprint.py          # 10,000,000 rows; --rows N and --seed S to change
```
"""


def measure(args: argparse.Namespace) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    source, input_info = input_file(args.rows, args.seed)
    how = "cached" if input_info["cached"] else f"generated in {input_info['seconds']} s"
    print(f"input: {input_info['path']} ({how})")
    engine_output = RESULTS / "footprint-output.parquet"
    load_before = load_average()
    runs = engine_runs(source, engine_output)
    for run in runs:
        print(f"engine, threads={run['threads_env']}: {run['wall_s']:.2f} s, {run['rows_per_s']:,.0f} rows/s")
    baseline, usage = run_worker(["baseline", "--source", str(source), "--rows", str(args.baseline_rows),
                                  "--seconds", str(args.baseline_seconds)], threads=1)  # fmt: skip
    baseline.update(usage, rows_per_s=baseline["rows"] / baseline["wall_s"])
    result: dict[str, Any] = {"rows": args.rows, "seed": args.seed, "started_at": started.isoformat(),
                              "machine": machine(), "input": input_info, "engine": runs, "baseline": baseline,
                              "agreement": agreement(baseline, engine_output)}  # fmt: skip
    single = runs[0]["rows_per_s_per_core"]
    result["ratio_one_thread"] = runs[0]["rows_per_s"] / baseline["rows_per_s"]
    result["ratio_default_threads"] = runs[1]["rows_per_s"] / baseline["rows_per_s"]
    result["goal_rows_per_s_per_core"] = GOAL_ROWS_PER_S_PER_CORE
    result["goal_met"] = single >= GOAL_ROWS_PER_S_PER_CORE
    result["failed_as_expected"] = all(r["failed"] == input_info["expected_invalid_rows"] for r in runs)
    if not args.keep_output:
        engine_output.unlink()
    if args.profile == "always" or (args.profile == "auto" and not result["goal_met"]):
        profile_rows = min(args.rows, args.profile_rows)
        try:
            result["profile"], _ = run_worker(
                ["profile", "--source", str(source), "--rows", str(profile_rows)], threads=1
            )
        except WorkerFailedError as failure:
            result["profile_error"] = str(failure)
    result["load_average"] = {"before": load_before, "after": load_average()}
    result["source"] = source_version()
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    return result


def source_version() -> dict[str, Any]:
    """The commit measured, and whether src/ had uncommitted changes (the engine may be mid-edit)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_dirty": bool(git("status", "--porcelain", "src")),
    }


def load_average() -> str:
    """1, 5 and 15-minute load averages: other work on the machine skews the wall times."""
    return (
        " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument(
        "--baseline-seconds", type=float, default=120.0, help="cut the baseline short after this"
    )
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="time the engine's stages (auto: when the goal is missed)")  # fmt: skip
    parser.add_argument("--profile-rows", type=int, default=1_000_000)
    parser.add_argument("--keep-output", action="store_true", help="keep the engine's output Parquet")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--worker", choices=("engine", "baseline", "profile"), help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--destination", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work: Callable[[], dict[str, Any]] = {
            "engine": lambda: engine_worker(args.source, args.destination),
            "baseline": lambda: baseline_worker(args.source, args.rows, args.seconds),
            "profile": lambda: profile_worker(args.source, args.rows),
        }[args.worker]
        args.answer.write_text(json.dumps(work(), default=str))
        return
    result = measure(args)
    stamp = result["finished_at"][:19].replace(":", "").replace("-", "")
    result["json_name"] = f"footprint-{stamp}Z.json"
    (RESULTS / result["json_name"]).write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = table(result)
    if not result["failed_as_expected"]:
        text += "\n\nWARNING: failed rows differ from the rows made invalid on purpose."
    if "profile" in result:
        text += "\n\n" + profile_table(result["profile"])
    if "profile_error" in result:
        text += "\n\nThe stage profile failed: " + result["profile_error"]
    print()
    print(text)
    print(f"\nwritten: bench/results/{result['json_name']}")
    if not args.no_doc:
        write_doc(result, text)
        print(f"written: {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
