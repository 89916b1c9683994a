"""Carbon accounts on PostgreSQL: keeping history rows, taking records in through the API, and reading a
balance among a million accounts.

Usage:  .venv/bin/python bench/accounts_store.py [--accounts 1000000] [--rows 400000] [--requests 40]
                                                 [--postgres-url URL]

In a schema of its own in the database ``neutralize_bench`` (created if missing), in one run:

1. **History rows**: ``accounts.intake.insert_entries`` (PostgreSQL's COPY) keeps ``--rows`` credited
   entries, from the table the intake builds to the commit; the baseline, same run, inserts a
   sample of them one ``INSERT`` each (a naive per-record path), scaled. Goal: 200,000 rows/s or
   more.
2. **Ingestion through the API**: ``--requests`` requests of 1,000 metro records each to
   ``POST /api/v1/accounts/records`` (validation, rules, crediting, storage, account totals) through
   the app in-process (Starlette's test client, no network), the requests' JSON written beforehand
   as a partner's client would have it; the baseline is the per-record reference path
   (``records.parse_record`` + ``domain.credit``) plus a per-record insert, on a sample generated
   beforehand too, scaled.
   Goal: 20,000 records/s or more.
3. **A balance**: ``accounts.service.account_of`` + ``view`` for a random account among
   ``--accounts`` (seeded with ``generate_series``); the baseline is a primary-key read. Goal: under
   5 ms (median and p99 reported).

Results go to bench/results/accounts-store-<time>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from pathlib import Path
from time import perf_counter
from typing import Any

import polars as pl
from fastapi.testclient import TestClient
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from leaderboard import fresh_schema, timings
from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.access.service import create_key
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.catalogue import default_book
from neutralize.accounts.domain import credit
from neutralize.accounts.ingest import text_row
from neutralize.accounts.models import AccountEntry
from neutralize.accounts.records import parse_record
from neutralize.app import create_app
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCHEMA = "neutralize_bench_accounts_store"
CLOCK = FixedClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
BATCH = 1_000
SEED_ACCOUNTS = """
INSERT INTO carbon_accounts (id, partner_id, reference, credited_g, bundled_g, points_spent, created_at)
SELECT 'cac_' || lpad(n::text, 12, '0'), :partner, 'seed-' || n, (hashint4(n) & 1048575), 0, 0, now()
FROM generate_series(1, :accounts) AS n;
ANALYZE carbon_accounts;
"""


def metro(n: int) -> dict[str, Any]:
    """The n-th metro ride of a seeded month (a rider makes about two a day)."""
    day, minute = 1 + (n // 997) % 28, (n * 7) % 600
    start = dt.datetime(2026, 3, day, 6, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(
        minutes=minute
    )
    return {
        "account_ref": f"rider-{n % 50_000}",
        "external_id": f"ride-{n}",
        "behaviour": "public_transport",
        "mode": "metro",
        "distance_km": 3 + n % 20,
        "start_time": start.isoformat(),
        "end_time": (start + dt.timedelta(minutes=30)).isoformat(),
    }


def entry(n: int, partner: str, account: str) -> dict[str, Any]:
    """One credited metro ride as a history row (the naive baseline inserts these one by one)."""
    return {
        "partner_id": partner,
        "external_id": f"one-{n}",
        "account_id": account,
        "behaviour": "public_transport",
        "started_at": CLOCK.now() - dt.timedelta(minutes=n),
        "ended_at": CLOCK.now() - dt.timedelta(minutes=n - 30),
        "measures": {"mode": "metro", "distance_km": "10"},
        "distance_m": 10_000,
        "grams": 467,
        "code": None,
        "methodology": "public_transport_shenzhen@1.0.0",
        "parameters_sha256": "0" * 64,
        "rules": {"reduction_g": 467, "code": None},
        "received_at": CLOCK.now(),
    }


def entries(count: int, partner: str, account: str) -> pl.DataFrame:
    """``count`` credited metro rides as the table ``intake.insert_entries`` keeps."""
    n = pl.int_range(0, count, eager=True)
    start = pl.lit(CLOCK.now()) - pl.duration(minutes=n)
    return pl.select(
        partner_id=pl.lit(partner),
        external_id=pl.lit("copy-") + n.cast(pl.String),
        account_id=pl.lit(account),
        behaviour=pl.lit("public_transport"),
        started_at=start,
        ended_at=start + pl.duration(minutes=30),
        measures=pl.lit('{"mode": "metro", "distance_km": "10"}'),
        distance_m=pl.lit(10_000, dtype=pl.Int64),
        grams=pl.lit(467, dtype=pl.Int64),
        code=pl.lit(None, dtype=pl.String),
        methodology=pl.lit("public_transport_shenzhen@1.0.0"),
        parameters_sha256=pl.lit("0" * 64),
        rules=pl.lit('{"reduction_g": 467, "code": null}'),
        received_at=pl.lit(CLOCK.now()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    settings = fresh_schema(args.postgres_url, SCHEMA)
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        partner = registry.create_organisation(
            session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name="Bench metro")
        ).id
        key = create_key(session=session, clock=CLOCK, role=Role.INTEGRATOR, organisation_id=partner).token
        holder = intake.open_accounts(session, partner, ["copy-holder"], CLOCK.now())["copy-holder"]
    result: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(), "backend": "postgresql"}

    # 1. history rows: COPY against one INSERT per row
    rows = entries(args.rows, partner, holder)
    began = perf_counter()
    with unit_of_work(factory) as session:
        intake.insert_entries(session, rows)
    copy_s = perf_counter() - began
    sample = [entry(args.rows + n, partner, holder) for n in range(2_000)]
    began = perf_counter()
    with unit_of_work(factory) as session:
        for row in sample:
            session.execute(insert(AccountEntry).values(**row))
    naive_rows_s = len(sample) / (perf_counter() - began)
    result["history rows/s"] = {"copy": round(args.rows / copy_s), "one insert each": round(naive_rows_s)}
    with engine.begin() as connection:  # as autovacuum would after a bulk load
        connection.execute(text("ANALYZE account_entries"))

    # 2. ingestion through the API, 1,000 records a request
    app = create_app(settings, clock=CLOCK)
    headers = {"Authorization": f"Bearer {key}"}
    # The partner's requests are written before the clock starts: making them is the partner's work.
    bodies = [
        json.dumps({"records": [metro(request * BATCH + n) for n in range(BATCH)]})
        for request in range(args.requests)
    ]
    headers |= {"Content-Type": "application/json"}
    with TestClient(app) as client:
        client.post("/api/v1/accounts/records", headers=headers, json={"records": [metro(-1)]})  # warm
        began = perf_counter()
        credited = 0
        for body in bodies:
            answer = client.post("/api/v1/accounts/records", headers=headers, content=body)
            assert answer.status_code == 200, answer.text
            credited += answer.json()["credited"]
        api_s = perf_counter() - began
    book = default_book()
    sample_records = [metro(10_000_000 + n) for n in range(2_000)]
    began = perf_counter()
    with unit_of_work(factory) as session:
        now_s = int(CLOCK.now().timestamp())
        for n, rec in enumerate(sample_records, start=1):
            parsed = parse_record(text_row({**rec, "partner": partner}), number=n)
            grams = credit([(n, parsed)], book, now_s=now_s).credits[0].credited_g
            row = {**entry(20_000_000 + n, partner, holder), "grams": grams}
            session.execute(insert(AccountEntry).values(**row))
    naive_records_s = len(sample_records) / (perf_counter() - began)
    result["API records/s"] = {
        "batches of 1,000": round(args.requests * BATCH / api_s),
        "credited": credited,
        "one record at a time": round(naive_records_s),
    }

    # 3. a balance among a million accounts
    with engine.begin() as connection:
        for statement in SEED_ACCOUNTS.split(";\n"):
            if statement.strip():
                connection.execute(text(statement), {"partner": partner, "accounts": args.accounts})
    rng = random.Random(20261125)
    picks = [f"seed-{rng.randint(1, args.accounts)}" for _ in range(1_000)]
    actor = Actor(id="bench", role=Role.INTEGRATOR, organisation_id=partner)
    with factory() as session:
        it = iter(picks * 3)
        result["balance"] = timings(
            500, lambda: accounts.view(accounts.account_of(session=session, actor=actor, reference=next(it)))
        )
        ids = iter([f"cac_{rng.randint(1, args.accounts):012d}" for _ in range(600)])
        result["primary-key read"] = timings(
            500,
            lambda: session.execute(
                text("SELECT credited_g FROM carbon_accounts WHERE id = :i"), {"i": next(ids)}
            ).all(),
        )
    engine.dispose()
    history, api = result["history rows/s"], result["API records/s"]
    balance, pk = result["balance"], result["primary-key read"]
    print("| measure | this platform | baseline (same run) | ratio | goal |")
    print("|---|---:|---:|---:|---|")
    copy, one_insert = history["copy"], history["one insert each"]
    batched, one_record = api["batches of 1,000"], api["one record at a time"]
    table = [
        ("history rows/s (COPY; one INSERT each)", copy, one_insert, "≥ 200,000", copy >= 200_000),
        ("API records/s (1,000 a request; one each)", batched, one_record, "≥ 20,000", batched >= 20_000),
        ("balance median ms (a primary-key read)", balance["median_ms"], pk["median_ms"],
         f"< 5 ms (p99 {balance['p99_ms']})", balance["p99_ms"] < 5),
    ]  # fmt: skip
    for name, ours, theirs, goal, met in table:
        verdict = "met" if met else "NOT met"
        print(f"| {name} | {ours:,} | {theirs:,} | {ours / theirs:.1f} | {goal}: {verdict} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"accounts-store-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
