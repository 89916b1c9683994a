"""Benchmark: complete orders per second (quote, order, sandbox payment, fulfilment: retirement and
signed certificate), against the registry's raw retirements per second measured in the same run;
and how long a certificate takes to verify (offline and live) and to render as a PDF.

Usage:  .venv/bin/python bench/orders.py [--seconds 20] [--clients 4] [--postgres-url URL]

What it does, in one run:

1. SQLite: a fresh WAL file database, migrated; one seller holding 10^12 kg of one project vintage
   (issued through the services, as bench/registry.py does) lists all of it. One client process
   buys 1-500 kg at a time for ``--seconds``: ``market.service.create_quote``, ``create_order``, a
   signed sandbox notification through ``SandboxGateway.parse_webhook`` and ``apply_payment_event``,
   then ``fulfil`` (retire, sign the certificate), each step its own unit of work, as the web app
   and the webhook would run them. A step that loses a race (deadlock, serialization failure) is
   retried with the same idempotency key, up to a few times, and counted.
2. PostgreSQL: the same in the database that ``--postgres-url`` names (``neutralize_bench_orders``
   if it names the tests' database ``test`` or none; created if missing), schema
   ``neutralize_bench_orders``, with ``--clients`` processes.
3. The baseline, per backend: the registry's raw retirements per second, measured by
   bench/registry.py's own functions (1 client on SQLite, ``--clients`` on PostgreSQL, in the same
   database). The ratio orders/s / retirements/s is the cost of the market around a retirement;
   the goal is at least 1/3.
4. After each order run: ``market.service.reconcile`` and ``settlements`` (balanced), the registry's
   ``check`` and journal audit must pass, and the certified orders must be those the clients counted.
5. Certificates: ``certificates.verify_offline`` with the published keys and live
   ``certificates.verify`` (signature plus the registry's blocks) on each backend, each timed over
   ``--verify-runs`` runs (median and p99; goal: offline under 1 ms), and the PDF rendering
   (``certificates.render.render_pdf``) over ``--render-runs`` renders.
6. Prints a markdown table and writes bench/results/orders-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import queue
import random
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from pathlib import Path
from time import perf_counter
from typing import Any, TypeVar

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

import registry as raw  # bench/registry.py: this script's directory is first on sys.path
from neutralize.access.domain import Actor, Role
from neutralize.certificates import service as certificates
from neutralize.certificates.render import render_pdf
from neutralize.core.clock import SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.migrations import upgrade
from neutralize.core.signing import KeyRing
from neutralize.market import gateways, service
from neutralize.market.gateways.base import EventKind
from neutralize.market.gateways.sandbox import SandboxGateway
from neutralize.market.models import Order
from neutralize.market.schemas import Beneficiary, ListingCreate, OrderCreate, QuoteCreate
from neutralize.registry import journal
from neutralize.registry import service as registry

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATABASE = "neutralize_bench_orders"
TESTS_DATABASE = "test"  # the Makefile's (and the default URL's): the benchmark never writes there
SCHEMA = "neutralize_bench_orders"
APPLICATION_NAME = "neutralize-bench-orders"
ORDER_KG = (1, 500)
PRICE_PER_TONNE_MINOR = 6_000
WARMUP_ORDERS = 10  # per client, before the clock starts
MAX_RETRIES = 5  # per step: a real client sends a step again after a deadlock or serialization failure
RETRYABLE = {"40001", "40P01", "55P03"}  # serialization_failure, deadlock_detected, lock_not_available
GOAL_RATIO = 1 / 3
GOAL_OFFLINE_MS = 1.0
T = TypeVar("T")


# --- the seller ---------------------------------------------------------------------------------------


def seed_listing(settings: Settings) -> dict[str, Any]:
    """bench/registry.py's holding of 10^12 kg, all of it listed by its owner."""
    holding = raw.seed_holding(settings)
    engine = make_engine(settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            owner = Actor(
                id="bench-owner", role=Role.PROJECT_OWNER, organisation_id=holding["organisation_id"]
            )
            listing = service.create_listing(
                session=session,
                clock=SystemClock(),
                actor=owner,
                cmd=ListingCreate(
                    project_code=holding["project_code"],
                    vintage=holding["vintage"],
                    price_per_tonne_minor=PRICE_PER_TONNE_MINOR,
                    available_kg=holding["issued_kg"],
                ),
            )
    finally:
        engine.dispose()
    return {**holding, "listing_id": listing.id}


# --- one client -------------------------------------------------------------------------------------


class Buyer:
    """Buys from the listing, one unit of work per step, like the web app and the webhook."""

    def __init__(self, index: int, url: str, listing_id: str, key_b64: str, seed: int) -> None:
        self.settings = Settings(database_url=url)
        self.engine = make_engine(self.settings)
        self.factory = make_session_factory(self.engine)
        self.clock = SystemClock()
        self.keys = KeyRing.from_key_b64(key_b64, clock=self.clock)
        gateway = gateways.get("sandbox", self.settings)
        assert isinstance(gateway, SandboxGateway)
        self.sandbox = gateway
        self.listing_id = listing_id
        self.index = index
        self.rng = random.Random(seed * 1_000 + index)
        self.numbers = itertools.count(1)
        self.ok = 0
        self.kg = 0
        self.errors: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.latencies_s: list[float] = []
        self.steps_s: dict[str, float] = {}

    def _step(self, name: str, run: Callable[[], T]) -> T:
        for attempt in itertools.count(1):
            began = perf_counter()
            try:
                result = run()
            except DBAPIError as lost:
                code = getattr(lost.orig, "sqlstate", None)
                if code not in RETRYABLE or attempt > MAX_RETRIES:
                    raise
                self.retried[f"{name}: {code}"] += 1
                continue
            except DomainError as refused:
                if refused.code is not ErrorCode.IDEMPOTENCY_CONFLICT or attempt > MAX_RETRIES:
                    raise
                self.retried[f"{name}: {refused.code}"] += 1
                continue
            finally:
                self.steps_s[name] = self.steps_s.get(name, 0.0) + perf_counter() - began
            return result
        raise AssertionError("unreachable")

    def buy_once(self) -> None:
        kg = self.rng.randint(*ORDER_KG)
        key = f"bench-{self.index}-{next(self.numbers)}"
        began = perf_counter()
        try:
            self._buy(kg, key)
        except (DomainError, DBAPIError) as failed:
            label = failed.code if isinstance(failed, DomainError) else type(failed.orig).__name__
            self.errors[str(label)] += 1
            return
        self.ok += 1
        self.kg += kg
        self.latencies_s.append(perf_counter() - began)

    def _buy(self, kg: int, key: str) -> None:
        def quote() -> Any:
            with unit_of_work(self.factory) as session:
                cmd = QuoteCreate(kg=kg, listing_id=self.listing_id)
                return service.create_quote(
                    session=session, clock=self.clock, settings=self.settings, cmd=cmd
                )

        quoted = self._step("quote", quote)

        def order() -> Any:
            cmd = OrderCreate(quote_id=quoted.id, beneficiary=Beneficiary(display_name=f"Bench buyer {key}"),
                              idempotency_key=key, expected_total_minor=quoted.split.total_minor)  # fmt: skip
            with unit_of_work(self.factory) as session:
                return service.create_order(
                    session=session, clock=self.clock, settings=self.settings, cmd=cmd
                )

        ordered = self._step("order", order)

        def pay() -> str:
            headers, body = self.sandbox.notification(
                provider_ref=ordered.next_action["url"].rsplit("/", 1)[1], kind=EventKind.SUCCEEDED,
                amount_minor=ordered.split.total_minor, currency=ordered.split.currency,
                signed_at=self.clock.now(), event_id=f"evt-{key}",
            )  # fmt: skip
            event = self.sandbox.parse_webhook(headers=headers, body=body, now=self.clock.now())
            with unit_of_work(self.factory) as session:
                return service.apply_payment_event(
                    session=session, clock=self.clock, settings=self.settings, gateway="sandbox", event=event
                )

        effect = self._step("payment", pay)
        if effect not in ("paid", "duplicate: no effect"):
            raise DomainError(code=ErrorCode.INVALID_TRANSITION, message=f"payment: {effect}")

        def fulfil() -> Any:
            with unit_of_work(self.factory) as session:
                return service.fulfil(session=session, clock=self.clock, settings=self.settings,
                                      keys=self.keys, order_id=ordered.id)  # fmt: skip

        done = self._step("fulfil", fulfil)
        if done.status != "certified":
            raise DomainError(code=ErrorCode.INVALID_TRANSITION, message=f"fulfilled as {done.status}")

    def reset(self) -> None:
        self.ok, self.kg = 0, 0
        self.errors.clear()
        self.retried.clear()
        self.latencies_s.clear()
        self.steps_s.clear()


def client_main(
    index: int, url: str, listing_id: str, key_b64: str, seconds: float, seed: int, barrier: Barrier,
    answers: Any,
) -> None:  # fmt: skip
    """A client process: warm up, wait for the others, buy until the time is up, report."""
    buyer = Buyer(index, url, listing_id, key_b64, seed)
    for _ in range(WARMUP_ORDERS):
        buyer.buy_once()
    warmup = {"ok": buyer.ok, "kg": buyer.kg, "errors": dict(buyer.errors)}
    buyer.reset()
    barrier.wait(timeout=300)
    start = perf_counter()
    while perf_counter() < start + seconds:
        buyer.buy_once()
    answers.put({"index": index, "wall_s": perf_counter() - start, "ok": buyer.ok, "kg": buyer.kg,
                 "errors": dict(buyer.errors), "retried": dict(buyer.retried),
                 "latencies_s": buyer.latencies_s, "steps_s": dict(buyer.steps_s),
                 "warmup": warmup})  # fmt: skip
    buyer.engine.dispose()


def run_buyers(
    url: str, listing_id: str, key_b64: str, clients: int, seconds: float, seed: int
) -> dict[str, Any]:
    context = mp.get_context("spawn")
    barrier = context.Barrier(clients + 1)
    answers = context.Queue()
    processes = [
        context.Process(
            target=client_main, args=(i, url, listing_id, key_b64, seconds, seed, barrier, answers)
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=300)
    try:
        parts = [answers.get(timeout=seconds + 300) for _ in processes]
    except queue.Empty:
        codes = [p.exitcode for p in processes]
        raise RuntimeError(f"a client did not answer (exit codes {codes}); see its traceback above") from None
    for process in processes:
        process.join()
    latencies = sorted(x for p in parts for x in p["latencies_s"])
    wall_s = max(p["wall_s"] for p in parts)
    ok = sum(p["ok"] for p in parts)
    errors: Counter[str] = Counter()
    retried: Counter[str] = Counter()
    steps_s: dict[str, float] = {}
    for part in parts:
        errors.update(part["errors"])
        retried.update(part["retried"])
        for name, took in part["steps_s"].items():
            steps_s[name] = steps_s.get(name, 0.0) + took
    return {
        "clients": clients, "wall_s": wall_s, "ok": ok, "per_s": ok / wall_s,
        "kg": sum(p["kg"] for p in parts),
        "errors": dict(errors), "error_count": sum(errors.values()), "retried": dict(retried),
        "latency_ms": raw.latency_summary(latencies),
        "step_ms": {name: took / max(ok, 1) * 1000 for name, took in steps_s.items()},
        "warmup": {"ok": sum(p["warmup"]["ok"] for p in parts), "kg": sum(p["warmup"]["kg"] for p in parts)},
    }  # fmt: skip


# --- after a run ------------------------------------------------------------------------------------


def verify_market(url: str, run: dict[str, Any]) -> dict[str, Any]:
    """Reconcile, settlements, registry check and audit pass; the certified orders are the counted."""
    engine = make_engine(Settings(database_url=url))
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            reconciled = service.reconcile(session=session)
            balanced = service.settlements(session=session).balanced
            check = registry.check(session=session)
            audit = journal.verify(session=session)
            certified, kg = session.execute(
                select(func.count(), func.coalesce(func.sum(Order.kg), 0)).where(Order.status == "certified")
            ).one()
    finally:
        engine.dispose()
    counted = run["ok"] + run["warmup"]["ok"]
    counted_kg = run["kg"] + run["warmup"]["kg"]
    return {
        "reconcile_ok": reconciled.ok, "problems": reconciled.problems[:10], "balanced": balanced,
        "check_ok": check.ok, "audit_ok": audit.ok,
        "certified_in_db": certified, "certified_counted": counted,
        "kg_in_db": int(kg), "kg_counted": counted_kg,
        "ok": reconciled.ok and balanced and check.ok and audit.ok and certified == counted
        and int(kg) == counted_kg,
    }  # fmt: skip


# --- certificates -----------------------------------------------------------------------------------


def timings(runs: int, once: Callable[[], Any]) -> dict[str, float]:
    """Median and p99 of ``runs`` calls, in milliseconds."""
    took = []
    for _ in range(runs):
        began = perf_counter()
        once()
        took.append((perf_counter() - began) * 1000)
    took.sort()
    p99 = took[min(runs - 1, int(0.99 * runs))]
    return {"runs": runs, "median_ms": statistics.median(took), "p99_ms": p99, "max_ms": took[-1]}


def certificate_timings(url: str, key_b64: str, runs: int, render_runs: int) -> dict[str, Any]:
    """Offline and live verification of the newest certificate, and its PDF rendering."""
    keys = KeyRing.from_key_b64(key_b64, clock=SystemClock())
    engine = make_engine(Settings(database_url=url))
    factory = make_session_factory(engine)
    try:
        with unit_of_work(factory) as session:
            number = session.scalar(
                select(Order.certificate_number).where(Order.status == "certified").order_by(Order.id.desc())
            )
            assert number is not None, "no certified order to verify"
            envelope = certificates.get(session=session, number=number)
        data = json.dumps(envelope).encode("utf-8")
        published = keys.published_keys()
        assert certificates.verify_offline(data, published).ok

        def live() -> None:
            with unit_of_work(factory) as session:
                assert certificates.verify(session=session, keys=keys, number=number).ok

        result: dict[str, Any] = {
            "number": number,
            "offline": timings(runs, lambda: certificates.verify_offline(data, published)),
            "live": timings(runs, live),
        }
    finally:
        engine.dispose()
    view = certificates.view_of(envelope)
    try:
        pdf = render_pdf(view)
    except DomainError as missing:  # no CJK font on this machine
        result["render"] = {"skipped": f"PDF rendering not timed: {missing}"}
        return result
    result["render"] = {**timings(render_runs, lambda: render_pdf(view)), "pdf_bytes": len(pdf)}
    return result


# --- the backends -----------------------------------------------------------------------------------


def raw_args(args: argparse.Namespace, url: str) -> argparse.Namespace:
    """What bench/registry.py's run functions read."""
    return argparse.Namespace(seconds=args.seconds, seed=args.seed, clients=args.clients, postgres_url=url)


def orders_sqlite(args: argparse.Namespace, key_b64: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orders-bench-") as name:
        workdir = Path(name)
        url = f"sqlite:///{workdir / 'orders-bench.db'}"
        settings = Settings(database_url=url)
        upgrade(settings)
        seller = seed_listing(settings)
        print(f"SQLite orders: 1 client for {args.seconds:g} s")
        run = run_buyers(url, seller["listing_id"], key_b64, 1, args.seconds, args.seed)
        run["ledger"] = verify_market(url, run)
        run["certificates"] = certificate_timings(url, key_b64, args.verify_runs, args.render_runs)
        print(f"  {run['per_s']:,.1f} orders/s")
        (workdir / "raw").mkdir()
        run["raw"] = raw.registry_sqlite(raw_args(args, ""), workdir / "raw")
        print(f"  {run['raw']['per_s']:,.1f} raw retirements/s")
    return run


def bench_database(url: str) -> str:
    """The database ``url`` names, unless that is the tests' own (or none): then ``DATABASE``."""
    named = make_url(url).database
    return DATABASE if named in (None, "", TESTS_DATABASE) else named


def orders_postgres(args: argparse.Namespace, key_b64: str) -> dict[str, Any]:
    database = bench_database(args.postgres_url)
    created = raw.ensure_database(args.postgres_url, database)
    base = make_url(args.postgres_url).set(database=database).render_as_string(hide_password=False)
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    finally:
        admin.dispose()
    url = raw.with_query(base, options=f"-csearch_path%3D{SCHEMA}", application_name=APPLICATION_NAME)
    settings = Settings(database_url=url)
    upgrade(settings)
    seller = seed_listing(settings)
    raw.checkpoint(base)
    print(f"PostgreSQL orders: database {database}, {args.clients} clients for {args.seconds:g} s")
    run = run_buyers(url, seller["listing_id"], key_b64, args.clients, args.seconds, args.seed)
    run["database_created"] = created
    run["ledger"] = verify_market(url, run)
    run["certificates"] = certificate_timings(url, key_b64, args.verify_runs, args.render_runs)
    print(f"  {run['per_s']:,.1f} orders/s")
    run["raw"] = raw.registry_postgres(raw_args(args, base), args.clients, args.seconds)
    print(f"  {run['raw']['per_s']:,.1f} raw retirements/s")
    return run


# --- reporting --------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    lite, pg = result["sqlite"], result["postgresql"]

    def ratio(run: dict[str, Any]) -> str:
        value = run["per_s"] / run["raw"]["per_s"]
        return f"**{value:.2f}** ({'met' if value >= GOAL_RATIO else 'NOT met'})"

    def lat(run: dict[str, Any]) -> str:
        m = run["latency_ms"]
        return f"{m['p50']:.1f} / {m['p95']:.1f} / {m['p99']:.1f}" if m else "-"

    def steps(run: dict[str, Any]) -> str:
        return ", ".join(f"{name} {ms:.1f}" for name, ms in run["step_ms"].items())

    def ms(run: dict[str, Any], kind: str) -> str:
        t = run["certificates"][kind]
        return (
            t["skipped"]
            if "skipped" in t
            else f"{t['median_ms']:.3f} / {t['p99_ms']:.3f} ({t['runs']:,} runs)"
        )

    def ok(run: dict[str, Any]) -> str:
        return "ok" if run["ledger"]["ok"] and run["raw"]["ledger"]["ok"] else "**FAILED**"

    rows = [
        ("clients", f"{lite['clients']}", f"{pg['clients']}"),
        ("complete orders", f"{lite['ok']:,} in {lite['wall_s']:.1f} s",
         f"{pg['ok']:,} in {pg['wall_s']:.1f} s"),
        ("**orders/s**", f"**{lite['per_s']:,.1f}**", f"**{pg['per_s']:,.1f}**"),
        ("raw registry retirements/s (bench/registry.py)", f"{lite['raw']['per_s']:,.1f}",
         f"{pg['raw']['per_s']:,.1f}"),
        ("ratio orders/s / retirements/s (goal >= 1/3)", ratio(lite), ratio(pg)),
        ("order latency p50 / p95 / p99 (ms)", lat(lite), lat(pg)),
        ("per order, ms in each step", steps(lite), steps(pg)),
        ("steps retried (deadlock, serialization)", json.dumps(lite["retried"]) if lite["retried"] else "0",
         json.dumps(pg["retried"]) if pg["retried"] else "0"),
        ("orders abandoned", json.dumps(lite["errors"]) if lite["errors"] else "0",
         json.dumps(pg["errors"]) if pg["errors"] else "0"),
        ("certificate verify offline, median / p99 ms (goal < 1 ms)", ms(lite, "offline"), ms(pg, "offline")),
        ("certificate verify live, median / p99 ms", ms(lite, "live"), ms(pg, "live")),
        ("certificate PDF render, median / p99 ms", ms(lite, "render"), ms(pg, "render")),
        ("ledgers after the runs (reconcile, settlements, check, audit, counts)", ok(lite), ok(pg)),
    ]  # fmt: skip
    lines = ["| measure | SQLite | PostgreSQL |", "|---|---:|---:|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    offline = max(lite["certificates"]["offline"]["median_ms"], pg["certificates"]["offline"]["median_ms"])
    lines += [
        "",
        f"Each order buys {ORDER_KG[0]}-{ORDER_KG[1]} kg from one listing of {raw.ISSUED_KG:,} kg: quote, "
        "order, signed sandbox notification, fulfil (retire and sign), each step its own unit of work. Raw "
        "retirements: `registry.service.retire` of the same sizes, one unit of work each.",
        f"Offline verification goal (< {GOAL_OFFLINE_MS:g} ms median): "
        f"**{'met' if offline < GOAL_OFFLINE_MS else 'NOT met'}**.",
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per timed run")
    parser.add_argument("--clients", type=int, default=4, help="PostgreSQL clients (processes)")
    parser.add_argument("--postgres-url", default=os.environ.get("NEUTRALIZE_BENCH_POSTGRES_URL",
                                                                 raw.DEFAULT_POSTGRES_URL),
                        help=f"the server and database (the tests' 'test' or none: {DATABASE})")  # fmt: skip
    parser.add_argument("--verify-runs", type=int, default=2_000)
    parser.add_argument("--render-runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    if args.verify_runs < 1_000 or args.render_runs < 200:
        parser.error("time at least 1,000 verifications and 200 renders")
    key_b64 = base64.b64encode(os.urandom(32)).decode("ascii")
    started = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {"started_at": started.isoformat(), "seconds": args.seconds,
                              "clients": args.clients, "seed": args.seed,
                              "machine": raw.machine(args.postgres_url)}  # fmt: skip
    result["sqlite"] = orders_sqlite(args, key_b64)
    result["postgresql"] = orders_postgres(args, key_b64)
    for name in ("sqlite", "postgresql"):
        run = result[name]
        run["ratio"] = run["per_s"] / run["raw"]["per_s"]
    result["goal_ratio"] = GOAL_RATIO
    result["ledger_ok"] = all(result[n]["ledger"]["ok"] and result[n]["raw"]["ledger"]["ok"]
                              for n in ("sqlite", "postgresql"))  # fmt: skip
    result["source"] = raw.source_version()
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    stamp = result["finished_at"][:19].replace(":", "").replace("-", "")
    result["json_name"] = f"orders-{stamp}Z.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / result["json_name"]).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(table(result))
    print(f"\nwritten: bench/results/{result['json_name']}")
    if not result["ledger_ok"]:
        raise SystemExit("a ledger check failed after a run: see the table")


if __name__ == "__main__":
    main()
