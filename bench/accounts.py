"""Benchmark: crediting a month of freight and transit records column-wise, against a per-record baseline.

Usage:  .venv/bin/python bench/accounts.py [--scale 1.0] [--seed 20260301] [--no-doc]

What it does, in one run:

1. Generates (and caches in bench/results/) a seeded Parquet file of ``30,000,000 x scale``
   behaviour records of ``1,000,000 x scale`` accounts over March 2026: half the accounts are truck
   drivers of a freight platform (freight-matching orders), half are riders of a transit app
   (metro and electric-bus trips, some walking and cycling, a few new-energy car trips). 2% of the
   riders have linked their account to a wallet app that reports half of their trips again
   (the same ride, another partner: credited once); 0.05% of the rows are re-sent (same external
   id) and 0.1% are invalid (negative distance, unknown mode, a 1970 date).
2. Runs ``accounts.batch.credit_frame`` on the whole file in a subprocess: reading the Parquet,
   validation, plausibility rules, de-duplication, methodologies, daily caps and the balance of
   every account. Wall time, CPU time and the subprocess's peak RSS (``ru_maxrss`` from
   ``wait4``: Polars allocates outside the Python heap, so tracemalloc would not see it).
3. Measures the naive baseline in the same run, in another subprocess: the first
   ``--baseline-rows`` rows one record at a time (``records.parse_record`` then
   ``domain.credit``, the reference path), scaled to the whole file; and checks that the engine
   gives the same grams on that sample.
4. Prints the table, writes bench/results/accounts-<time>.json and rewrites the accounts section of
   docs/benchmarks.md. Goals: the whole batch under 120 s with peak memory under 6 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from footprint import Draws, load_average, machine, source_version, write_section

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
GENERATOR_VERSION = 1
FULL_ACCOUNTS = 1_000_000
FULL_RECORDS = 30_000_000
GOAL_S = 120.0
GOAL_RSS_GIB = 6.0
MONTH_START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 15, tzinfo=dt.UTC)  # crediting after the month ended
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SECTION_BEGIN = "<!-- accounts:begin (written by bench/accounts.py) -->"
SECTION_END = "<!-- accounts:end -->"
TRUCKS = (("light_4_2m", 30), ("medium_6_8m", 25), ("heavy_9_6m", 25), ("tractor_13m", 20))
TRANSIT = (("metro", 60), ("electric_bus", 25), ("walking", 6), ("cycling", 5), ("car", 4))
REGIONS = (("CN-GD", 40), ("CN-SH", 20), ("CN-BJ", 20), ("CN-SC", 20))
LINKED_EVERY = 50  # one rider in 50 has linked a wallet app
INVALID_SHARE = 0.001
RESENT_SHARE = 0.0005


# --- the generated month --------------------------------------------------------------------------


def generate(accounts: int, records: int, seed: int) -> pl.LazyFrame:
    """The month's records: freight orders and transit trips, with re-reports and bad rows.

    Record ``i`` belongs to account ``i % accounts`` and is that account's ``i // accounts``-th of
    the month, placed in its own slot of the month so that one person's trips do not overlap.
    Low-cardinality columns are categorical, as a partner's Parquet export would have them.
    """
    d = Draws(seed)
    slots = -(-records // accounts)
    base = pl.LazyFrame().select(i=pl.int_range(records, dtype=pl.UInt64))
    frame = base.with_columns(account=pl.col("i") % accounts, slot=pl.col("i") // accounts)
    frame = frame.with_columns(driver=pl.col("account") < accounts // 2)
    rows = frame.with_columns(_columns(d, pl.col("account"), pl.col("driver"), slots))
    linked = rows.filter(pl.col("person").is_not_null() & (d.u(30) < 0.5))
    wallet = linked.with_columns(
        partner=pl.lit("wallet-app"),
        account_ref=pl.concat_str([pl.lit("w"), pl.col("account").cast(pl.String)]),
        external_id=pl.concat_str([pl.lit("w"), pl.col("i").cast(pl.String)]),
    )
    resent = rows.filter(d.u(31) < RESENT_SHARE)
    categorical = ["partner", "person", "behaviour", "mode", "truck_class", "region"]
    return (
        pl.concat([rows, wallet, resent])
        .select(COLUMNS)
        .with_columns(pl.col(categorical).cast(pl.Categorical))
    )


def _columns(d: Draws, account: pl.Expr, driver: pl.Expr, slots: int) -> list[pl.Expr]:
    mode = pl.when(driver).then(pl.lit("truck")).otherwise(d.pick(2, TRANSIT, pl.String()))
    speed_kmh = (
        pl.when(driver).then(50.0)
        .when(mode == "metro").then(35.0)
        .when(mode == "electric_bus").then(18.0)
        .when(mode == "walking").then(4.5)
        .when(mode == "cycling").then(14.0)
        .otherwise(40.0)
    )  # fmt: skip
    minutes = pl.when(driver).then(d.whole(3, 60, 900)).otherwise(d.whole(4, 8, 75))
    km = (speed_kmh * minutes / 60.0 * (0.6 + 0.4 * d.u(5))).round(3)
    slot_s = 30 * 86_400 // slots
    room_s = (slot_s - minutes * 60).clip(lower_bound=0)
    offset_s = pl.col("slot").cast(pl.Int64) * slot_s + (d.u(6) * room_s).floor().cast(pl.Int64)
    start = pl.lit(MONTH_START) + pl.duration(seconds=offset_s)
    end = start + pl.duration(minutes=minutes.cast(pl.Int64))
    bad = d.u(7) < INVALID_SHARE
    bad_time = bad & (d.u(9) >= 0.3) & (d.u(9) < 0.6)
    behaviour = (
        pl.when(driver).then(pl.lit("freight_matching"))
        .when(mode.is_in(["walking", "cycling"])).then(pl.lit("active_travel"))
        .when(mode == "car").then(pl.lit("nev_driving"))
        .otherwise(pl.lit("public_transport"))
    )  # fmt: skip
    empty_share = 0.05 + 0.25 * d.u(8)
    return [
        pl.when(driver).then(pl.lit("freight-platform")).otherwise(pl.lit("metro-app")).alias("partner"),
        pl.concat_str([pl.when(driver).then(pl.lit("d")).otherwise(pl.lit("r")), account.cast(pl.String)])
        .alias("account_ref"),
        pl.concat_str([pl.lit("o"), pl.col("i").cast(pl.String)]).alias("external_id"),
        pl.when(~driver & (account % LINKED_EVERY == 0))
        .then(pl.concat_str([pl.lit("p"), account.cast(pl.String)])).alias("person"),
        behaviour.alias("behaviour"),
        pl.when(bad & (d.u(9) < 0.3)).then(pl.lit("hovercraft")).when(~driver & (mode != "car")).then(mode)
        .alias("mode"),
        pl.when(bad_time).then(pl.lit(EPOCH)).otherwise(start).alias("start_time"),
        pl.when(bad_time).then(pl.lit(EPOCH + dt.timedelta(hours=1))).otherwise(end).alias("end_time"),
        pl.when(~driver).then(pl.when(bad & (d.u(9) >= 0.6)).then(-km).otherwise(km)).alias("distance_km"),
        pl.when(driver).then((km * (1 - empty_share)).round(3)).alias("loaded_km"),
        pl.when(driver).then((km * empty_share).round(3)).alias("empty_km"),
        pl.when(driver).then(d.pick(10, TRUCKS, pl.String())).alias("truck_class"),
        pl.when(mode == "car").then((km * (0.12 + 0.08 * d.u(11))).round(3)).alias("kwh"),
        pl.when(mode == "car").then(d.pick(12, REGIONS, pl.String())).alias("region"),
    ]  # fmt: skip


COLUMNS = ["partner", "account_ref", "external_id", "person", "behaviour", "mode", "start_time", "end_time",
           "distance_km", "loaded_km", "empty_km", "truck_class", "kwh", "region"]  # fmt: skip


def input_file(accounts: int, records: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The cached input for (accounts, records, seed), generated on first use in a worker process.

    Generating in this process would inflate the workers' peak RSS: a forked child starts with
    its parent's resident set as its high-water mark.
    """
    path = RESULTS / f"accounts-input-{accounts}-{records}-{seed}-g{GENERATOR_VERSION}.parquet"
    if path.exists():
        return path, {"path": str(path.relative_to(ROOT)), "cached": True, "seconds": 0.0}
    RESULTS.mkdir(parents=True, exist_ok=True)
    args = ["--accounts", str(accounts), "--rows", str(records), "--seed", str(seed), "--source", str(path)]
    _, usage = run_worker(["generate", *args])
    return path, {
        "path": str(path.relative_to(ROOT)),
        "cached": False,
        "seconds": round(usage["process_s"], 2),
    }


def generate_worker(accounts: int, records: int, seed: int, path: Path) -> dict[str, Any]:
    partial = path.with_suffix(".partial.parquet")
    generate(accounts, records, seed).sink_parquet(partial)
    partial.replace(path)
    return {"written": str(path)}


# --- workers (each runs in its own subprocess) ----------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def engine_worker(source: Path) -> dict[str, Any]:
    """Read the file and credit every row: the whole batch, balances included."""
    from neutralize.accounts.batch import ROW, credit_frame
    from neutralize.accounts.catalogue import default_book

    book = default_book()  # parameter files and grid factors, loaded before the clock starts
    cpu, start = _cpu_s(), perf_counter()
    raw = pl.scan_parquet(source, row_index_name=ROW, row_index_offset=1)  # read as the engine streams
    result = credit_frame(raw, book, now_s=int(NOW.timestamp()))
    wall_s, cpu_s = perf_counter() - start, _cpu_s() - cpu
    credits = result.credits
    by_code = credits.group_by("code").len().sort("len", descending=True)
    return {
        "threads": pl.thread_pool_size(),
        "rows": credits.height,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "accounts_credited": result.totals.height,
        "credited_g": int(credits["credited_g"].sum()),
        "codes": {str(code): n for code, n in by_code.iter_rows()},
    }


def baseline_worker(source: Path, rows: int, seconds: float) -> dict[str, Any]:
    """The reference path one record at a time on the first rows; and the engine on the same rows."""
    from neutralize.accounts.batch import credit_frame
    from neutralize.accounts.catalogue import default_book
    from neutralize.accounts.domain import credit
    from neutralize.accounts.ingest import records_frame, text_row
    from neutralize.accounts.records import parse_record

    book = default_book()
    now_s = int(NOW.timestamp())
    sample = [
        {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in r.items() if v is not None}
        for r in pl.read_parquet(source, n_rows=rows).iter_rows(named=True)
    ]
    start = perf_counter()
    parsed = []
    for number, record in enumerate(sample, start=1):
        parsed.append((number, parse_record(text_row(record), number=number)))
        if perf_counter() - start > seconds:
            break
    outcome = credit(parsed, book, now_s=now_s)
    wall_s = perf_counter() - start
    done = sample[: len(parsed)]
    engine = credit_frame(records_frame(done), book, now_s=now_s).credits
    same = sum(
        1
        for ours, theirs in zip(engine.iter_rows(named=True), outcome.credits, strict=True)
        if ours["credited_g"] == theirs.credited_g
        and ours["code"] == (theirs.code.value if theirs.code else None)
    )
    return {"rows": len(parsed), "wall_s": wall_s, "same": same}


# --- orchestration --------------------------------------------------------------------------------


def run_worker(args: list[str]) -> tuple[dict[str, Any], dict[str, float]]:
    """Run this script as a worker; its answer, and its own wall time, CPU time and peak RSS."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as answer:
        answer_path = Path(answer.name)
    start = perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--worker", *args, "--answer", str(answer_path)])
    _, status, usage = os.wait4(proc.pid, 0)
    process_s = perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"worker {args[0]} failed (see its stderr)")
    answer_data = json.loads(answer_path.read_text())
    answer_path.unlink()
    return answer_data, {"process_s": process_s, "process_cpu_s": usage.ru_utime + usage.ru_stime,
                         "peak_rss_mib": usage.ru_maxrss / 1024}  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    accounts = round(FULL_ACCOUNTS * args.scale)
    records = round(FULL_RECORDS * args.scale)
    source, input_meta = input_file(accounts, records, args.seed)
    before = load_average()
    engine, engine_usage = run_worker(["engine", "--source", str(source)])
    after = load_average()
    baseline, baseline_usage = run_worker(
        [
            "baseline",
            "--source",
            str(source),
            "--rows",
            str(args.baseline_rows),
            "--seconds",
            str(args.baseline_seconds),
        ]
    )
    engine |= engine_usage
    baseline |= baseline_usage
    baseline["rows_per_s"] = baseline["rows"] / baseline["wall_s"]
    baseline["scaled_s"] = engine["rows"] / baseline["rows_per_s"]
    engine["rows_per_s"] = engine["rows"] / engine["wall_s"]
    return {
        "finished_at": dt.datetime.now(dt.UTC).isoformat(),
        "scale": args.scale,
        "accounts": accounts,
        "seed": args.seed,
        "input": input_meta,
        "machine": machine(),
        "source": source_version(),
        "load_average": {"before": before, "after": after},
        "engine": engine,
        "baseline": baseline,
        "goal_met": engine["wall_s"] < GOAL_S and engine["peak_rss_mib"] < GOAL_RSS_GIB * 1024,
    }


def table(result: dict[str, Any]) -> str:
    e, b = result["engine"], result["baseline"]
    goal = "met" if result["goal_met"] else "NOT met"
    credited = e["rows"] - sum(
        n for code, n in e["codes"].items() if code not in ("None", "daily_cap_reached")
    )
    lines = [
        "| measure | engine (column-wise) | baseline (one record at a time) |",
        "|---|---:|---:|",
        f"| rows | {e['rows']:,} | {b['rows']:,} (sample), scaled to {e['rows']:,} |",
        f"| wall time (s) | {e['wall_s']:.1f} | {b['wall_s']:.1f} on the sample; "
        f"{b['scaled_s']:,.0f} scaled |",
        f"| rows/s | {e['rows_per_s']:,.0f} | {b['rows_per_s']:,.0f} |",
        f"| ratio engine / baseline (rows/s) | {e['rows_per_s'] / b['rows_per_s']:,.1f}x | 1x |",
        f"| CPU time of the process (s) | {e['process_cpu_s']:.1f} | {b['process_cpu_s']:.1f} |",
        f"| peak RSS of the process (MiB) | {e['peak_rss_mib']:,.0f} | {b['peak_rss_mib']:,.0f} |",
    ]
    codes = ", ".join(f"{code}: {n:,}" for code, n in e["codes"].items())
    notes = [
        "",
        f"Records: {e['rows']:,} of {result['accounts']:,} accounts (scale {result['scale']}, "
        f"seed {result['seed']}); credited (fully or up to a cap): {credited:,}; accounts with a balance: "
        f"{e['accounts_credited']:,}; grams credited: {e['credited_g']:,}.",
        f"Rows by code: {codes}.",
        f"The engine gives the same code and grams as the baseline on {b['same']:,} of the {b['rows']:,} "
        "sample rows.",
        f"Goal (whole batch < {GOAL_S:.0f} s, peak < {GOAL_RSS_GIB:.0f} GB, {e['threads']} Polars threads): "
        f"**{goal}**.",
        f"Load average (1/5/15 min) before the engine ran: {result['load_average']['before']}, after: "
        f"{result['load_average']['after']} (the machine is shared with other work).",
    ]
    return "\n".join(lines + notes)


def write_doc(result: dict[str, Any], text: str) -> None:
    write_section(result, text, title="Carbon accounts", begin=SECTION_BEGIN, end=SECTION_END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1.0 = 1,000,000 accounts, 30,000,000 records"
    )
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument(
        "--baseline-seconds", type=float, default=60.0, help="cut the baseline short after this"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--worker", choices=("generate", "engine", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--answer", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work: Callable[[], dict[str, Any]] = {
            "generate": lambda: generate_worker(args.accounts, args.rows, args.seed, args.source),
            "engine": lambda: engine_worker(args.source),
            "baseline": lambda: baseline_worker(args.source, args.rows, args.seconds),
        }[args.worker]
        args.answer.write_text(json.dumps(work(), default=str))
        return
    result = measure(args)
    stamp = result["finished_at"][:19].replace(":", "").replace("-", "")
    result["json_name"] = f"accounts-{stamp}Z.json"
    (RESULTS / result["json_name"]).write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = table(result)
    print()
    print(text)
    print(f"\nwritten: bench/results/{result['json_name']}")
    if not args.no_doc:
        write_doc(result, text)
        print(f"written: {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
