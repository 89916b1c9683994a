"""Leaderboards at a million participants on PostgreSQL: the top 100 of a scene and of everyone, and
a participant's own rank, through ``neutralize.scenes.service.leaderboard``.

Usage:  .venv/bin/python bench/leaderboard.py [--participants 1000000] [--runs 200] [--postgres-url URL]

It migrates a schema of its own in the database ``neutralize_bench`` (created if missing), inserts
the participants with ``generate_series`` (one scene holding half of them, random offsets and
reductions, a third with their names shown, a tenth signed in for one of 2,000 organisations,
whose totals are kept as the app keeps them), runs ``ANALYZE``, then times each query ``--runs``
times. The baseline, measured in the same run on the same rows, is a primary-key read of one
participation. Ranks are refreshed once (as the app does periodically) and that time is reported.
Goal: top 100 and "my rank" each under 20 ms (median and p99 are reported). Results
go to bench/results/leaderboard-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory
from neutralize.core.migrations import upgrade
from neutralize.scenes import service as scenes
from registry import ensure_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATABASE = "neutralize_bench"
SCHEMA = "neutralize_bench_leaderboard"
GOAL_MS = 20.0

SEED_SQL = """
INSERT INTO organisations (id, name, created_at) VALUES ('org_bench', 'Bench organisers', now());
INSERT INTO organisations (id, name, created_at)
SELECT 'org_' || lpad(n::text, 5, '0'), 'Company ' || n, now() FROM generate_series(1, 2000) AS n;
INSERT INTO scenes (id, slug, type, name, organiser_id, organisation_id, country, region, created_at)
VALUES ('scn_big', 'big-forum', 'conference', 'Big forum', 'usr_bench', 'org_bench', 'CN', 'CN-SC', now()),
       ('scn_rest', 'everyone-else', 'life', 'Everyone else', 'usr_bench', 'org_bench', 'CN', NULL, now());
INSERT INTO footprints (id, created_at, input_sha256, total_kg_co2e, line_count, result)
VALUES ('fp_bench', now(), repeat('0', 64), 1, 1, '{}');
INSERT INTO participations (id, scene_id, footprint_id, total_kg_co2e, by_category, by_mode, name, show_name,
                            offset_kg, reduction_g, organisation_id, created_at)
SELECT 'par_' || lpad(n::text, 10, '0'),
       CASE WHEN n % 2 = 0 THEN 'scn_big' ELSE 'scn_rest' END,
       'fp_bench', 300, '{}', '{}', 'Guest ' || n, n % 3 = 0,
       (hashint4(n) & 4095), CASE WHEN n % 5 = 0 THEN (hashint4(n + 7) & 1048575) ELSE 0 END,
       CASE WHEN n % 10 = 0
            THEN 'org_' || lpad((1 + (hashint4(n + 3) & 2147483647) % 2000)::text, 5, '0') END,
       now()
FROM generate_series(1, :participants) AS n;
INSERT INTO organisation_totals (scope, organisation_id, participants, reduction_g, offset_kg)
SELECT scope, organisation_id, count(*), sum(reduction_g), sum(offset_kg)
FROM participations, LATERAL (VALUES (scene_id), ('all')) AS scopes (scope)
WHERE organisation_id IS NOT NULL GROUP BY scope, organisation_id;
ANALYZE participations;
ANALYZE organisation_totals;
"""


def timings(runs: int, once: Callable[[], Any]) -> dict[str, float]:
    once()  # warm
    samples = []
    for _ in range(runs):
        began = perf_counter()
        once()
        samples.append((perf_counter() - began) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3),
    }


def fresh_schema(postgres_url: str, schema: str) -> Settings:
    """Settings for a new, migrated schema ``schema`` in the database ``neutralize_bench``."""
    ensure_database(postgres_url, DATABASE)
    base = postgres_url.rsplit("/", 1)[0] + f"/{DATABASE}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    settings = Settings(database_url=f"{base}?options=-csearch_path%3D{schema}", market_jobs_seconds=0)
    upgrade(settings)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    engine = make_engine(fresh_schema(args.postgres_url, SCHEMA))
    began = perf_counter()
    with engine.begin() as connection:
        for statement in SEED_SQL.split(";\n"):
            if statement.strip():
                connection.execute(text(statement), {"participants": args.participants})
    print(f"{args.participants:,} participants inserted and analysed in {perf_counter() - began:.1f} s")
    factory = make_session_factory(engine)
    began = perf_counter()
    with factory.begin() as session:
        ranked = scenes.refresh_ranks(session=session)
    refresh_s = perf_counter() - began
    print(f"{ranked:,} ranks refreshed in {refresh_s:.1f} s (the app does this periodically)")
    rng = random.Random(20261125)
    picks = [f"par_{rng.randint(1, args.participants):010d}" for _ in range(1_000)]

    def run(query: Callable[[Any], Any]) -> dict[str, float]:
        with factory() as session:
            it = iter(picks * (args.runs // len(picks) + 2))
            return timings(args.runs, lambda: query((session, next(it))))

    result = {
        "when": dt.datetime.now(dt.UTC).isoformat(),
        "participants": args.participants,
        "rank refresh s": round(refresh_s, 2),
        "baseline primary-key read": run(
            lambda a: (
                a[0].execute(text("SELECT offset_kg FROM participations WHERE id = :i"), {"i": a[1]}).all()
            )
        ),
        "top 100 of a scene": run(lambda a: scenes.leaderboard(session=a[0], slug="big-forum")),
        "top 100 of everyone": run(lambda a: scenes.leaderboard(session=a[0], slug=None)),
        "my rank in a scene": run(
            lambda a: scenes.leaderboard(session=a[0], slug="big-forum", me=a[1], limit=1)
        ),
        "my rank among everyone": run(
            lambda a: scenes.leaderboard(session=a[0], slug=None, me=a[1], limit=1)
        ),
        "top 100 organisations of a scene": run(
            lambda a: scenes.organisation_leaderboard(session=a[0], slug="big-forum")
        ),
        "top 100 organisations of everyone": run(
            lambda a: scenes.organisation_leaderboard(session=a[0], slug=None)
        ),
    }
    engine.dispose()
    baseline = result["baseline primary-key read"]["median_ms"]
    print("| query | median ms | p99 ms | × primary-key read | goal < 20 ms |")
    print("|---|---:|---:|---:|---|")
    for name, value in result.items():
        if isinstance(value, dict):
            met = "met" if value["p99_ms"] < GOAL_MS else "NOT met"
            ratio = value["median_ms"] / baseline if baseline else 0
            print(f"| {name} | {value['median_ms']} | {value['p99_ms']} | {ratio:.1f} | {met} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"leaderboard-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
