"""Benchmark: registry retirements per second, on SQLite and on PostgreSQL, against pgbench.

Usage:  .venv/bin/python bench/registry.py [--seconds 30] [--clients 4] [--postgres-url URL]

What it does, in one run:

1. Baseline on the PostgreSQL server the registry runs on: ``pgbench -i -s 10`` (which drops and
   recreates the pgbench tables) in a database of its own (``neutralize_bench``, created if
   missing), then ``pgbench -c 4 -j 2 -T 30``, TPC-B-like. Its "tps = ..." line is the baseline.
2. SQLite: a fresh WAL file database in a temporary directory, migrated, with one large holding
   issued through the services (organisation, project walked to "registered", verification,
   issue); one client process retires small quantities (1-500 kg, by quantity, lowest serials
   first) through ``neutralize.registry.service.retire``, each retirement its own unit of work,
   for ``--seconds``.
3. PostgreSQL: the same in a dedicated schema of pgbench's database (``neutralize_bench``, dropped and
   recreated, reached with ``?options=-csearch_path%3Dneutralize_bench``), with ``--clients``
   processes (one engine each, no shared GIL) retiring from the same holding at once. While they
   run, the parent samples ``pg_stat_activity`` to see what the clients' server sessions wait on.
   Nothing is hooked on the clients' statements in these timed runs; a profiled run of a third of
   the time follows each (on the same holding), timing every statement for the breakdown.
4. The server's share alone: pgbench's C client calls ``registry_retire`` in BEGIN/COMMIT, as a
   client's unit of work does, on the same holding with the same clients and jobs.
5. After each run: ``registry.service.check`` must be ok, the journal must verify, and the kg and
   count of retirements in the database must match what the clients counted (pgbench's by count).
6. Prints the table (with the ratio to pgbench's tps and the goal: retirements/s on PostgreSQL at
   least half of pgbench's tps), where the clients' time goes statement by statement, writes
   bench/results/registry-<timestamp>.json and rewrites the registry section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import multiprocessing as mp
import os
import platform
import queue
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from multiprocessing.synchronize import Barrier
from pathlib import Path
from time import perf_counter, sleep
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError
from neutralize.core.migrations import upgrade
from neutralize.registry import journal, service
from neutralize.registry.models import Retirement
from neutralize.registry.schemas import (
    IssueCmd,
    OrganisationCreate,
    ProjectCreate,
    ProjectTransition,
    RetireCmd,
    Units,
    VerificationCreate,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # the Makefile's PG_URL
SCHEMA = "neutralize_bench"
PGBENCH_DATABASE = "neutralize_bench"
PGBENCH_SCALE = 10
APPLICATION_NAME = "neutralize-bench-registry"  # how the sampler finds the clients' sessions
ISSUED_KG = 10**12  # far more than any run retires (500 kg x a few thousand a second x minutes)
QUANTITY_KG = (1, 500)
WARMUP_RETIREMENTS = 20  # per client, before the clock starts (statement cache, pool, imports)
GOAL_RATIO = 0.5
# The statement timer's hooks run Python in the client around every statement: timed runs go without
# them, and a profiled run of a third of the time (at least 5 s) follows each one of 15 s or more on
# the same holding.
PROFILE_SHARE = 1 / 3
PROFILE_MIN_S = 5.0
PROFILE_FROM_S = 15.0
SAMPLE_EVERY_S = 0.1
PROJECT_CODE = "BENCH-RETIRE"
VERIFIER = Actor(id="bench-verifier", role=Role.VERIFIER)
SECTION_BEGIN = "<!-- registry:begin (written by bench/registry.py) -->"
SECTION_END = "<!-- registry:end -->"
PGBENCH_MISSING = """pgbench was not found on PATH. It ships with the PostgreSQL server packages:
  Debian/Ubuntu:  apt-get install postgresql-contrib   (pulls in postgresql-<version>, which has pgbench;
                  on Debian 12 the binary is /usr/lib/postgresql/15/bin/pgbench, wrapped by
                  /usr/bin/pgbench from postgresql-client-common)
  RHEL/Fedora:    dnf install postgresql-contrib
  macOS:          brew install postgresql (pgbench comes with it)"""


# --- the holding ----------------------------------------------------------------------------------


def seed_holding(settings: Settings) -> dict[str, Any]:
    """One organisation holding ``ISSUED_KG`` of one registered project's 2024 vintage, made through
    the services in one unit of work (as demo.py does)."""
    engine = make_engine(settings)
    clock = SystemClock()
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            org = service.create_organisation(
                session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name="Bench Holder")
            )
            owner = Actor(id="bench-owner", role=Role.PROJECT_OWNER, organisation_id=org.id)
            project = service.create_project(
                session=session,
                clock=clock,
                actor=owner,
                cmd=ProjectCreate(code=PROJECT_CODE, name="Registry benchmark project", standard="VCS",
                                  methodology="benchmark", methodology_version="1.0",
                                  project_type="benchmark", credit_type="avoidance", nature_based=False,
                                  country="CN", owner_organisation_id=org.id),
            )  # fmt: skip
            for status, who in (("submitted", owner), ("validated", VERIFIER), ("registered", SYSTEM)):
                service.transition_project(
                    session=session,
                    clock=clock,
                    actor=who,
                    project_code=project.code,
                    cmd=ProjectTransition.model_validate({"to_status": status}),
                )
            verification = service.record_verification(
                session=session,
                clock=clock,
                actor=VERIFIER,
                cmd=VerificationCreate(project_code=project.code, verifier="Bench Verification",
                                       period_start=date(2024, 1, 1), period_end=date(2024, 12, 31),
                                       verified_kg=ISSUED_KG, report_sha256="0" * 64),
            )  # fmt: skip
            issued = service.issue(
                session=session,
                clock=clock,
                actor=SYSTEM,
                cmd=IssueCmd(verification_id=verification.id, idempotency_key="bench-issue"),
            )
    finally:
        engine.dispose()
    return {"organisation_id": org.id, "project_code": project.code, "vintage": issued.vintage,
            "issued_kg": issued.quantity_kg}  # fmt: skip


# --- one client ------------------------------------------------------------------------------------

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.IGNORECASE)
_CALL = re.compile(r"\s*SELECT\s+(\w+)\(", re.IGNORECASE)  # a server-side function call


def statement_label(statement: str) -> str:
    """``SELECT blocks FOR UPDATE``, ``INSERT journal``...: the verb, the first table, the lock."""
    verb = statement.split(None, 1)[0].upper()
    if verb == "BEGIN":
        return statement.strip()
    call = _CALL.match(statement)
    if call:
        return f"SELECT {call.group(1)}()"
    table = _TABLE.search(statement)
    label = f"{verb} {table.group(1)}" if table else verb
    return label + (" FOR UPDATE" if "FOR UPDATE" in statement.upper() else "")


# Statements after which a transaction holds a lock every other retirement needs, until it commits.
LOCKS = {
    "BEGIN IMMEDIATE": "SQLite's write lock (BEGIN IMMEDIATE)",
    "SELECT blocks FOR UPDATE": "the holding's held blocks (SELECT blocks FOR UPDATE)",
    "SELECT chain_heads FOR UPDATE": "the vintage's journal chain head (SELECT chain_heads FOR UPDATE)",
    # PostgreSQL takes both inside the call; held from its answer on (its own run time not counted).
    "SELECT registry_retire()": "the chain head and the held blocks, taken inside SELECT registry_retire()",
}


class StatementTimer:
    """Counts and times every statement the engine sends (lock waits included: they happen inside),
    and notes when the current transaction got each of the ``LOCKS``."""

    def __init__(self, engine: Engine) -> None:
        self.by_label: dict[str, list[float]] = {}
        self.locked_at: dict[str, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        conn.info["bench_started"] = perf_counter()

    def _after(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        now = perf_counter()
        took = now - conn.info.pop("bench_started", now)
        label = statement_label(statement)
        if label in LOCKS:
            self.locked_at.setdefault(label, now)
        entry = self.by_label.setdefault(label, [0, 0.0])
        entry[0] += 1
        entry[1] += took

    def reset(self) -> None:
        self.by_label.clear()


class Client:
    """Retires by quantity from the holding, one unit of work per retirement, like a request. A
    ``profiled`` client also times every statement, which costs the rate a share of its own."""

    def __init__(self, index: int, url: str, holding: dict[str, Any], seed: int, profiled: bool) -> None:
        self.engine = make_engine(Settings(database_url=url))
        self.timer = StatementTimer(self.engine) if profiled else None
        self.factory = make_session_factory(self.engine)
        self.clock = SystemClock()
        self.actor = Actor(id=f"bench-client-{index}", role=Role.INTEGRATOR,
                           organisation_id=holding["organisation_id"])  # fmt: skip
        self.holding = holding
        self.index = index
        self.rng = random.Random(seed * 1_000 + index)
        self.numbers = itertools.count(1)
        self.ok = 0
        self.retired_kg = 0
        self.errors: Counter[str] = Counter()
        self.latencies_s: list[float] = []
        self.commit_s = 0.0
        self.held_s: dict[str, float] = {}

    def retire_once(self) -> None:
        kg = self.rng.randint(*QUANTITY_KG)
        cmd = RetireCmd(
            units=Units(project_code=self.holding["project_code"], vintage=self.holding["vintage"],
                        quantity_kg=kg),
            beneficiary=f"Bench beneficiary {self.index}",
            reason="registry benchmark",
            idempotency_key=f"bench-{self.index}-{next(self.numbers)}",
        )  # fmt: skip
        if self.timer:
            self.timer.locked_at.clear()
        began = perf_counter()
        try:
            with unit_of_work(self.factory) as session:
                service.retire(session=session, clock=self.clock, actor=self.actor, cmd=cmd)
                body_done = perf_counter()
        except DomainError as refused:
            self.errors[f"DomainError {refused.code}"] += 1
            return
        except DBAPIError as failed:  # deadlocks, serialisation failures, lost connections: counted
            self.errors[f"{type(failed.orig).__name__}: {str(failed.orig).splitlines()[0][:80]}"] += 1
            return
        done = perf_counter()
        self.ok += 1
        self.retired_kg += kg
        self.latencies_s.append(done - began)
        self.commit_s += done - body_done
        for label, locked_at in self.timer.locked_at.items() if self.timer else ():
            self.held_s[label] = self.held_s.get(label, 0.0) + done - locked_at

    def reset(self) -> None:
        self.ok, self.retired_kg, self.commit_s = 0, 0, 0.0
        self.errors.clear()
        self.held_s.clear()
        self.latencies_s.clear()
        if self.timer:
            self.timer.reset()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_main(
    index: int,
    url: str,
    holding: dict[str, Any],
    seconds: float,
    seed: int,
    profiled: bool,
    barrier: Barrier,
    answers: Any,
) -> None:
    """A client process: warm up, wait for the others, retire until the time is up, report."""
    client = Client(index, url, holding, seed, profiled)
    for _ in range(WARMUP_RETIREMENTS):
        client.retire_once()
    warmup = {"ok": client.ok, "retired_kg": client.retired_kg, "errors": dict(client.errors)}
    client.reset()
    barrier.wait(timeout=300)
    cpu, start = _cpu_s(), perf_counter()
    deadline = start + seconds
    while perf_counter() < deadline:
        client.retire_once()
    wall_s, cpu_s = perf_counter() - start, _cpu_s() - cpu
    answers.put({"index": index, "wall_s": wall_s, "cpu_s": cpu_s, "ok": client.ok,
                 "retired_kg": client.retired_kg, "errors": dict(client.errors),
                 "latencies_s": client.latencies_s, "commit_s": client.commit_s,
                 "statements": client.timer.by_label if client.timer else {}, "held_s": dict(client.held_s),
                 "warmup": warmup})  # fmt: skip
    client.engine.dispose()


# --- a run with N clients -------------------------------------------------------------------------


class WaitSampler(threading.Thread):
    """Samples what the clients' PostgreSQL sessions are doing, every ``SAMPLE_EVERY_S``."""

    def __init__(self, admin_url: str) -> None:
        super().__init__(daemon=True)
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.samples: Counter[str] = Counter()
        self.rounds = 0
        self.stop = threading.Event()

    def run(self) -> None:
        query = text("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                     "WHERE application_name = :app AND pid <> pg_backend_pid()")  # fmt: skip
        with self.engine.connect() as connection:
            while not self.stop.is_set():
                for state, kind, wait in connection.execute(query, {"app": APPLICATION_NAME}):
                    self.samples[wait_label(state, kind, wait)] += 1
                self.rounds += 1
                sleep(SAMPLE_EVERY_S)
        self.engine.dispose()


def wait_label(state: str | None, kind: str | None, wait: str | None) -> str:
    if state == "idle":
        return "idle: between transactions (client side)"
    if state == "idle in transaction":
        return "idle in transaction: waiting for the client mid-transaction"
    if kind is None:
        return "active: running on CPU"
    return f"active, waiting: {kind} {wait}"


def run_clients(
    url: str,
    holding: dict[str, Any],
    clients: int,
    seconds: float,
    seed: int,
    admin_url: str | None,
    *,
    profiled: bool = False,
    first_index: int = 0,
) -> dict[str, Any]:
    """``clients`` processes retiring at once for ``seconds``; their answers merged. Clients are
    numbered from ``first_index`` (their idempotency keys with them), so runs on one holding differ."""
    context = mp.get_context("spawn")
    barrier = context.Barrier(clients + 1)
    answers = context.Queue()
    processes = [
        context.Process(target=client_main, args=(i, url, holding, seconds, seed, profiled, barrier, answers))
        for i in range(first_index, first_index + clients)
    ]
    for process in processes:
        process.start()
    sampler = WaitSampler(admin_url) if admin_url else None
    load_before = load_average()
    barrier.wait(timeout=300)  # raises BrokenBarrierError if a client died while warming up
    if sampler:
        sampler.start()
    try:
        parts = [answers.get(timeout=seconds + 300) for _ in processes]
    except queue.Empty:
        codes = [p.exitcode for p in processes]
        raise RuntimeError(f"a client did not answer (exit codes {codes}); see its traceback above") from None
    finally:
        if sampler:
            sampler.stop.set()
            sampler.join()
    for process in processes:
        process.join()
    merged = merge(parts)
    merged["load_average"] = {"before": load_before, "after": load_average()}
    if sampler:
        merged["waits"] = {"rounds": sampler.rounds, "samples": dict(sampler.samples.most_common())}
    return merged


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(x for p in parts for x in p["latencies_s"])
    wall_s = max(p["wall_s"] for p in parts)
    ok = sum(p["ok"] for p in parts)
    errors: Counter[str] = Counter()
    held_s: Counter[str] = Counter()
    statements: dict[str, list[float]] = {}
    for part in parts:
        errors.update(part["errors"])
        held_s.update(part["held_s"])
        for label, (count, took) in part["statements"].items():
            entry = statements.setdefault(label, [0, 0.0])
            entry[0] += count
            entry[1] += took
    return {
        "clients": len(parts), "wall_s": wall_s, "ok": ok, "errors": dict(errors),
        "error_count": sum(errors.values()), "retired_kg": sum(p["retired_kg"] for p in parts),
        "per_s": ok / wall_s, "client_cpu_s": sum(p["cpu_s"] for p in parts),
        "client_busy_s": sum(p["wall_s"] for p in parts), "commit_s": sum(p["commit_s"] for p in parts),
        "held_s": dict(held_s),
        "latency_ms": latency_summary(latencies), "statements": statements,
        "warmup": {"ok": sum(p["warmup"]["ok"] for p in parts),
                   "retired_kg": sum(p["warmup"]["retired_kg"] for p in parts)},
        "per_client": [{k: p[k] for k in ("index", "ok", "cpu_s", "wall_s")} for p in parts],
    }  # fmt: skip


def latency_summary(latencies: list[float]) -> dict[str, float]:
    if not latencies:
        return {}

    def at(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"mean": sum(latencies) / len(latencies) * 1000, "p50": at(0.50), "p95": at(0.95),
            "p99": at(0.99), "max": latencies[-1] * 1000}  # fmt: skip


# --- after a run: is the ledger still right? -------------------------------------------------------


def timed_then_profiled(
    url: str, holding: dict[str, Any], clients: int, seconds: float, seed: int, admin_url: str | None
) -> dict[str, Any]:
    """The timed run, with nothing hooked on the clients' statements, then (unless ``seconds`` is
    short) a shorter profiled run that times every statement, on the same holding; then the ledger
    check over both."""
    run = run_clients(url, holding, clients, seconds, seed, admin_url)
    runs = [run]
    if seconds >= PROFILE_FROM_S:
        run["profiled"] = run_clients(url, holding, clients, max(PROFILE_MIN_S, seconds * PROFILE_SHARE),
                                      seed, None, profiled=True, first_index=clients)  # fmt: skip
        runs.append(run["profiled"])
    run["ledger"] = verify_ledger(url, holding, runs)
    return run


def verify_ledger(url: str, holding: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """``check`` and the journal audit must pass; the database's retirements must be the clients'.
    A run whose kilograms nobody counted (pgbench's, ``retired_kg`` None) counts by number only:
    then the retired blocks must hold what the retirements in the database say."""
    engine = make_engine(Settings(database_url=url))
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            started = perf_counter()
            report = service.check(session=session)
            check_s = perf_counter() - started
            audit = journal.verify(session=session)
            count, kg = session.execute(select(func.count(), func.sum(Retirement.quantity_kg))).one()
    finally:
        engine.dispose()
    expected_count = sum(run["ok"] + run["warmup"]["ok"] for run in runs)
    counted = all(run["retired_kg"] is not None for run in runs)
    expected_kg = int(kg or 0)
    if counted:
        expected_kg = sum(run["retired_kg"] + run["warmup"]["retired_kg"] for run in runs)
    vintage = next(v for v in report.vintages if v.project_code == holding["project_code"])
    return {
        "check_ok": report.ok, "check_s": check_s, "problems": report.problems[:10], "audit_ok": audit.ok,
        "journal_entries": audit.entries, "retirements_in_db": count, "retirements_counted": expected_count,
        "retired_kg_in_db": int(kg or 0), "retired_kg_counted": expected_kg,
        "retired_kg_by_state": vintage.by_state_kg.get("retired", 0),
        "ok": report.ok and audit.ok and count == expected_count and int(kg or 0) == expected_kg
        and vintage.by_state_kg.get("retired", 0) == expected_kg,
    }  # fmt: skip


# --- the two backends -----------------------------------------------------------------------------


def with_query(url: str, **params: str) -> str:
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def registry_sqlite(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = f"sqlite:///{workdir / 'registry-bench.db'}"
    settings = Settings(database_url=url)
    upgrade(settings)
    holding = seed_holding(settings)
    print(f"SQLite: {url}, {holding['issued_kg']:,} kg issued; 1 client for {args.seconds:g} s")
    run = timed_then_profiled(url, holding, 1, args.seconds, args.seed, admin_url=None)
    run["backend"] = "sqlite"
    return run


def registry_postgres(args: argparse.Namespace, clients: int, seconds: float) -> dict[str, Any]:
    admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
            connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    finally:
        admin.dispose()
    url = with_query(
        args.postgres_url, options=f"-csearch_path%3D{SCHEMA}", application_name=APPLICATION_NAME
    )
    settings = Settings(database_url=url)
    upgrade(settings)
    holding = seed_holding(settings)
    checkpoint(args.postgres_url)
    print(f"PostgreSQL: schema {SCHEMA}; {clients} client(s) for {seconds:g} s")
    run = timed_then_profiled(url, holding, clients, seconds, args.seed, admin_url=args.postgres_url)
    run["backend"] = "postgresql"
    run["holding"], run["url"] = holding, url
    return run


SERVER_ONLY_SCRIPT = """\\set n random(1, 9000000000000000000)
\\set kg random({low}, {high})
BEGIN;
SELECT registry_retire('bench-server-only', 'srv-' || :client_id || '-' || :n, 'pgbench', '{holder}',
    '{project_code}', {vintage}, :kg, NULL, NULL, 'pgbench', 'registry benchmark', NULL, NULL, NULL,
    'ret_srv_' || :client_id || '_' || :n, now(), to_json(now()) #>> '{{}}');
COMMIT;
"""


def server_only(
    args: argparse.Namespace, pgbench_path: str, holding: dict[str, Any], seconds: float
) -> dict[str, Any]:
    """The server's share alone: pgbench's C client calling ``registry_retire`` as the clients' units
    of work do (BEGIN, the call, COMMIT; 1-500 kg by quantity from the same holding), with pgbench's
    clients and jobs; then the ledger check again, counting pgbench's retirements by number."""
    script = SERVER_ONLY_SCRIPT.format(
        low=QUANTITY_KG[0], high=QUANTITY_KG[1], holder=holding["organisation_id"],
        project_code=holding["project_code"], vintage=holding["vintage"],
    )  # fmt: skip
    env = {**pgbench_env(args.postgres_url), "PGOPTIONS": f"-csearch_path={SCHEMA}"}
    with tempfile.TemporaryDirectory(prefix="neutralize-bench-") as directory:
        path = Path(directory) / "retire.sql"
        path.write_text(script, encoding="utf-8")
        command = [pgbench_path, "-n", "-M", "prepared", "-c", str(args.clients),
                   "-j", str(args.pgbench_jobs), "-T", str(round(seconds)), "-f", str(path),
                   make_url(args.postgres_url).database or ""]  # fmt: skip
        print(f"server only: pgbench {' '.join(command[1:-3])} (registry_retire in BEGIN/COMMIT)")
        done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    parsed = parse_pgbench(done.stdout)
    pgbench_run = {"ok": int(parsed["transactions"] or 0), "retired_kg": None, "warmup": {"ok": 0}}
    return {"command": " ".join(command[:-3]) + " -f retire.sql", **parsed, "output": done.stdout,
            "pgbench_run": pgbench_run}  # fmt: skip


def checkpoint(url: str) -> None:
    """Flush dirty pages before a timed run, so neither run pays for the other's checkpoint."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("CHECKPOINT"))
    finally:
        admin.dispose()


# --- the baseline: pgbench ------------------------------------------------------------------------


def pgbench_env(url: str) -> dict[str, str]:
    parsed = make_url(url)
    env = dict(os.environ)
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password)):  # fmt: skip
        if value is not None:
            env[name] = str(value)
    return env


def ensure_database(url: str, name: str) -> bool:
    """Create ``name`` on the server of ``url`` unless it exists; returns whether it was created."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                return False
            connection.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        admin.dispose()


def pgbench(args: argparse.Namespace, pgbench_path: str) -> dict[str, Any]:
    """``pgbench -i -s 10`` then ``pgbench -c N -j 2 -T seconds``; its tps and latency."""
    created = ensure_database(args.postgres_url, PGBENCH_DATABASE)
    env = pgbench_env(args.postgres_url)
    init = [pgbench_path, "-i", "-s", str(PGBENCH_SCALE), "-q", PGBENCH_DATABASE]
    started = perf_counter()
    subprocess.run(init, env=env, check=True, capture_output=True, text=True)
    init_s = perf_counter() - started
    checkpoint(args.postgres_url)
    command = [pgbench_path, "-c", str(args.clients), "-j", str(args.pgbench_jobs),
               "-T", str(round(args.seconds)), PGBENCH_DATABASE]  # fmt: skip
    print(f"pgbench: {' '.join(command[1:])} (initialised at scale {PGBENCH_SCALE} in {init_s:.1f} s)")
    load_before = load_average()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return {"command": " ".join(command), "database_created": created, "init_s": init_s,
            "load_average": {"before": load_before, "after": load_average()},
            **parse_pgbench(done.stdout), "output": done.stdout}  # fmt: skip


def parse_pgbench(output: str) -> dict[str, Any]:
    def number(pattern: str) -> float | None:
        found = re.search(pattern, output, re.MULTILINE)
        return float(found.group(1)) if found else None

    tps = number(r"^tps = ([\d.]+)")
    if tps is None:
        raise RuntimeError(f"no 'tps = ...' line in pgbench's output:\n{output}")
    return {
        "tps": tps,
        "latency_ms": number(r"^latency average = ([\d.]+) ms"),
        "transactions": number(r"^number of transactions actually processed: (\d+)"),
        "failed": number(r"^number of failed transactions: (\d+)") or 0,
        "duration_s": number(r"^duration: (\d+) s"),
    }


# --- reporting ------------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> str:
    lite, pg, base = result["sqlite"], result["postgresql"], result["pgbench"]
    tps = base["tps"]
    goal = "met" if result["goal_met"] else "NOT met"

    def lat(run: dict[str, Any], key: str) -> str:
        return f"{run['latency_ms'][key]:.2f}" if run["latency_ms"] else "-"

    def ledger(run: dict[str, Any]) -> str:
        return "ok" if run["ledger"]["ok"] else "**FAILED**"

    rows = [
        ("clients", f"{lite['clients']}", f"{pg['clients']}", f"{result['clients']} (-j {result['jobs']})"),
        ("duration (s)", f"{lite['wall_s']:.1f}", f"{pg['wall_s']:.1f}", f"{base['duration_s'] or 0:.0f}"),
        ("transactions ok", f"{lite['ok']:,}", f"{pg['ok']:,}", f"{int(base['transactions'] or 0):,}"),
        ("errors", f"{lite['error_count']:,}", f"{pg['error_count']:,}", f"{int(base['failed']):,}"),
        ("**per second**", f"**{lite['per_s']:,.0f}**", f"**{pg['per_s']:,.0f}**", f"**{tps:,.0f}**"),
        ("ratio to pgbench tps", f"{lite['per_s'] / tps:.2f}", f"{pg['per_s'] / tps:.2f}", "1.00"),
        ("latency mean (ms)", lat(lite, "mean"), lat(pg, "mean"), f"{base['latency_ms'] or 0:.2f}"),
        ("latency p50 / p95 / p99 (ms)", f"{lat(lite, 'p50')} / {lat(lite, 'p95')} / {lat(lite, 'p99')}",
         f"{lat(pg, 'p50')} / {lat(pg, 'p95')} / {lat(pg, 'p99')}", "-"),
        ("client CPU per transaction (ms)", f"{lite['client_cpu_s'] / max(lite['ok'], 1) * 1000:.2f}",
         f"{pg['client_cpu_s'] / max(pg['ok'], 1) * 1000:.2f}", "-"),
        ("kg retired", f"{lite['retired_kg']:,}", f"{pg['retired_kg']:,}", "-"),
        ("ledger after the run (check, audit, counts)", ledger(lite), ledger(pg), "-"),
    ]  # fmt: skip
    lines = [
        "| measure | registry, SQLite | registry, PostgreSQL | pgbench TPC-B-like |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    notes = [
        "",
        f"Each registry transaction is one `registry.service.retire` of {QUANTITY_KG[0]}-{QUANTITY_KG[1]} kg "
        f"by quantity from one holding of {ISSUED_KG:,} kg, in its own unit of work.",
        f"Goal (registry retirements/s on PostgreSQL >= {GOAL_RATIO:g} x pgbench tps = "
        f"{GOAL_RATIO * tps:,.0f}/s): **{goal}** ({pg['per_s']:,.0f}/s, ratio {pg['per_s'] / tps:.2f}).",
        f"Load average (1/5/15 min) before/after: pgbench {base['load_average']['before']} / "
        f"{base['load_average']['after']}; registry on PostgreSQL {pg['load_average']['before']} / "
        f"{pg['load_average']['after']}.",
    ]
    alone = result.get("server_only")
    if alone:
        notes.append(
            f"The server's share alone: pgbench's C client calling `registry_retire` in BEGIN/COMMIT on "
            f"the same holding, {result['clients']} clients (-j {result['jobs']}), "
            f"{alone['duration_s'] or 0:.0f} s: "
            f"{alone['tps']:,.0f} calls/s, ratio {alone['tps'] / tps:.2f}, {int(alone['failed'])} failed, "
            f"ledger after it {'ok' if alone['ledger']['ok'] else '**FAILED**'}."
        )
    for name, run in (("SQLite", lite), ("PostgreSQL", pg)):
        if run["errors"]:
            notes.append(f"{name} errors: " + ", ".join(f"{k}: {v}" for k, v in run["errors"].items()))
        if not run["ledger"]["ok"]:
            notes.append(f"{name} ledger: {json.dumps(run['ledger'])}")
    return "\n".join(lines + notes)


def profile_table(result: dict[str, Any]) -> str:
    """Where a client's time goes, per retirement, in the profiled runs: each statement (lock waits
    inside), the commit, and the rest (Python: the ORM, Pydantic, hashing; and the pool's pre-ping)."""
    timed = [("SQLite", result["sqlite"]), ("PostgreSQL", result["postgresql"])]
    if not all("profiled" in run for _, run in timed):
        return f"No profiled runs: they follow timed runs of {PROFILE_FROM_S:g} s or more."
    runs = [(name, run["profiled"]) for name, run in timed]
    intro = ("From the profiled runs, which time every statement with hooks on the engine: "
             + "; ".join(f"{name} {p['wall_s']:.0f} s, {p['per_s']:,.0f}/s against {t['per_s']:,.0f}/s "
                         f"timed without them" for (name, t), (_, p) in zip(timed, runs, strict=True))
             + ".")  # fmt: skip
    labels = sorted({label for _, run in runs for label in run["statements"]},
                    key=lambda lb: -max(run["statements"].get(lb, [0, 0.0])[1] / run["client_busy_s"]
                                        for _, run in runs))  # fmt: skip
    lines = ["| per retirement | SQLite calls | SQLite ms | PostgreSQL calls | PostgreSQL ms "
             "| PostgreSQL share of client time |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip

    def cells(run: dict[str, Any], count: float, took: float) -> list[str]:
        ok = max(run["ok"], 1)
        return [f"{count / ok:.2f}", f"{took / ok * 1000:.3f}"]

    pg = runs[1][1]
    for label in labels:
        row = [label]
        for _, run in runs:
            count, took = run["statements"].get(label, [0, 0.0])
            row += cells(run, count, took)
        row.append(f"{pg['statements'].get(label, [0, 0.0])[1] / pg['client_busy_s']:.0%}")
        lines.append(f"| {' | '.join(row)} |")
    for label, took_of in (("COMMIT", lambda run: run["commit_s"]), ("rest: Python, pool pre-ping", rest_s)):
        row = [label]
        for _, run in runs:
            row += [cells(run, run["ok"], took_of(run))[0] if label == "COMMIT" else "-",
                    cells(run, 0, took_of(run))[1]]  # fmt: skip
        row.append(f"{took_of(pg) / pg['client_busy_s']:.0%}")
        lines.append(f"| {' | '.join(row)} |")
    lines = [intro, "", *lines, "", *lock_table(runs)]
    pg = result["postgresql"]
    single = result.get("postgresql_1_client")
    if single:
        cpu_ms = single["client_cpu_s"] / max(single["ok"], 1) * 1000
        lines += ["", f"Diagnostic: the same on PostgreSQL with 1 client ({single['wall_s']:.0f} s): "
                      f"**{single['per_s']:,.0f} retirements/s** (with {pg['clients']} clients: "
                      f"{pg['per_s']:,.0f}/s), latency mean {single['latency_ms'].get('mean', 0):.2f} ms, "
                      f"client CPU {cpu_ms:.2f} ms per retirement."]  # fmt: skip
    waits = pg.get("waits", {})
    if waits.get("samples"):
        total = sum(waits["samples"].values())
        lines += ["", f"PostgreSQL sessions of the clients, sampled every {SAMPLE_EVERY_S:g} s "
                      f"({waits['rounds']} rounds, {total:,} session samples):", "",
                  "| state / wait event | share of samples |", "|---|---:|"]  # fmt: skip
        lines += [f"| {label} | {count / total:.0%} |" for label, count in waits["samples"].items()]
    return "\n".join(lines)


def lock_table(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """How long each retirement holds the locks every other retirement needs: with one hot holding,
    retirements go one at a time through them, so 1 / hold is a ceiling on the rate."""
    lines = ["| lock, held from the statement that takes it to the end of the commit | backend "
             "| ms held per retirement | ceiling 1 / hold (per s) | share of the run it was held |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    for label, what in LOCKS.items():
        for name, run in runs:
            if label not in run["held_s"] or not run["ok"]:
                continue
            hold = run["held_s"][label] / run["ok"]
            lines.append(f"| {what} | {name} | {hold * 1000:.2f} | {1 / hold:,.0f} "
                         f"| {run['held_s'][label] / run['wall_s']:.0%} |")  # fmt: skip
    lines += ["", "Hold times are measured by the clients, from the locking statement's answer to the "
              "commit's: the next holder may start before the last one hears its commit, so the share can "
              "pass 100%."]  # fmt: skip
    return lines


def rest_s(run: dict[str, Any]) -> float:
    """Client time outside statements and commits: Python, and the pool's pre-ping."""
    return float(run["client_busy_s"] - run["commit_s"] - sum(took for _, took in run["statements"].values()))


def load_average() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def machine(postgres_url: str) -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    admin = create_engine(postgres_url)
    try:
        with admin.connect() as connection:
            server = connection.scalar(text("SHOW server_version"))
            names = ("synchronous_commit", "fsync", "shared_buffers", "max_connections")
            settings = {name: connection.scalar(text(f"SHOW {name}")) for name in names}
    finally:
        admin.dispose()
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_model": model, "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__, "psycopg": psycopg.__version__,
            "postgresql": server, "postgresql_settings": settings, "os": platform.platform()}  # fmt: skip


def source_version() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_dirty": bool(git("status", "--porcelain", "src")),
    }


DOC_INTRO = """## Registry retirements (`bench/registry.py`)

What is measured: retirements per second through `neutralize.registry.service.retire`, each its own
unit of work (as a request would be), retiring 1-500 kg by quantity (lowest serials first) from one
holding of 10^12 kg of one project vintage, issued through the services before the clock starts.
Every retirement locks its vintage's journal chain head and the holding's held blocks, splits the
lowest block, inserts the retirement, appends one journal entry and stores the idempotent result
(on PostgreSQL all in one call of the server-side function `registry_retire`, see
`docs/registry.md`). After each run `registry.service.check` and the journal audit must pass, and
the retirements in the database must be exactly those the clients counted.

It runs on SQLite (a WAL file database, one client process) and on PostgreSQL (a dedicated schema,
four client processes with an engine each, so no GIL is shared). The baseline, measured in the
same run on the same PostgreSQL server, is pgbench's TPC-B-like script (`pgbench -i -s 10`, then
`pgbench -c 4 -j 2 -T 30`) in a database of its own. The goal: registry retirements/s on PostgreSQL
at least half of pgbench's tps. The timed runs hook nothing on the clients' statements; a profiled
run of a third of the time follows each and gives, per retirement, each statement's time as the
client saw it (lock waits happen inside statements), the commit, and the rest (Python). The run also
samples what the clients' server sessions were doing from `pg_stat_activity`, and measures the
server's share alone: pgbench's C client calling `registry_retire` in BEGIN/COMMIT on the same
holding. When the goal is missed it also runs PostgreSQL with one client, to tell contention from
cost.

Run it:

```sh
make bench                                   # the footprint benchmark, then this one
.venv/bin/python bench/registry.py           # 30 s per backend; --seconds, --clients, --postgres-url
```
"""


def write_doc(result: dict[str, Any], text_: str) -> None:
    m = result["machine"]
    dirty = " with uncommitted changes in src/" if result["source"]["src_dirty"] else ""
    section = "\n".join([
        SECTION_BEGIN,
        f"### Registry retirements — latest run ({result['finished_at'][:10]})",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}); Python {m['python']}, SQLAlchemy {m['sqlalchemy']}, "
        f"psycopg {m['psycopg']}; PostgreSQL {m['postgresql']} on the same machine "
        f"(synchronous_commit={m['postgresql_settings']['synchronous_commit']}). Registry at commit "
        f"{result['source']['commit']}{dirty}. Raw numbers: `bench/results/{result['json_name']}`.",
        "",
        text_,
        SECTION_END,
    ])  # fmt: skip
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if SECTION_BEGIN in current and SECTION_END in current:
        head, rest = current.split(SECTION_BEGIN, 1)
        current = head + section + rest.split(SECTION_END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + DOC_INTRO + "\n" + section + "\n"
    DOC.write_text(current, encoding="utf-8")


# --- main -----------------------------------------------------------------------------------------


@contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as name:
        yield Path(name)


def measure(args: argparse.Namespace, pgbench_path: str) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {"seconds": args.seconds, "clients": args.clients, "jobs": args.pgbench_jobs,
                              "seed": args.seed, "started_at": started.isoformat(),
                              "machine": machine(args.postgres_url)}  # fmt: skip
    result["pgbench"] = pgbench(args, pgbench_path)
    print(f"  tps = {result['pgbench']['tps']:,.1f}")
    with workspace() as workdir:
        result["sqlite"] = registry_sqlite(args, workdir)
    print(f"  {result['sqlite']['per_s']:,.1f} retirements/s")
    # The registry's schema goes into pgbench's database (made above), never into the tests' own.
    bench_url = make_url(args.postgres_url).set(database=PGBENCH_DATABASE).render_as_string(False)
    args = argparse.Namespace(**{**vars(args), "postgres_url": bench_url})
    result["postgresql"] = pg = registry_postgres(args, args.clients, args.seconds)
    print(f"  {pg['per_s']:,.1f} retirements/s")
    alone = server_only(args, pgbench_path, pg["holding"], max(PROFILE_MIN_S, args.seconds * PROFILE_SHARE))
    runs = [pg, *([pg["profiled"]] if "profiled" in pg else []), alone.pop("pgbench_run")]
    alone["ledger"] = verify_ledger(pg["url"], pg["holding"], runs)
    result["server_only"] = alone
    print(f"  {alone['tps']:,.1f} calls/s")
    goal_met = result["postgresql"]["per_s"] >= GOAL_RATIO * result["pgbench"]["tps"]
    if args.profile == "always" or (args.profile == "auto" and not goal_met and args.clients > 1):
        # Is it contention? The same with one client, no one to wait for.
        result["postgresql_1_client"] = registry_postgres(args, 1, max(5.0, args.seconds / 3))
        print(f"  {result['postgresql_1_client']['per_s']:,.1f} retirements/s")
    result["ratio_postgresql"] = result["postgresql"]["per_s"] / result["pgbench"]["tps"]
    result["ratio_sqlite"] = result["sqlite"]["per_s"] / result["pgbench"]["tps"]
    result["goal_ratio"] = GOAL_RATIO
    result["goal_met"] = result["ratio_postgresql"] >= GOAL_RATIO
    result["ledger_ok"] = all(
        result[name]["ledger"]["ok"]
        for name in ("sqlite", "postgresql", "server_only", "postgresql_1_client")
        if name in result
    )
    result["source"] = source_version()
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per backend, and for pgbench")
    parser.add_argument("--clients", type=int, default=4, help="PostgreSQL clients (and pgbench -c)")
    parser.add_argument("--pgbench-jobs", type=int, default=2, help="pgbench -j")
    parser.add_argument("--postgres-url", default=os.environ.get("NEUTRALIZE_BENCH_POSTGRES_URL",
                                                                 DEFAULT_POSTGRES_URL))  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="also run PostgreSQL with 1 client (auto: if the goal is missed)")  # fmt: skip
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    args = parser.parse_args()
    pgbench_path = shutil.which("pgbench")
    if pgbench_path is None:
        sys.exit(PGBENCH_MISSING)
    result = measure(args, pgbench_path)
    stamp = result["finished_at"][:19].replace(":", "").replace("-", "")
    result["json_name"] = f"registry-{stamp}Z.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / result["json_name"]).write_text(json.dumps(result, indent=2, default=str) + "\n")
    text_ = table(result) + "\n\n" + profile_table(result)
    print()
    print(text_)
    print(f"\nwritten: bench/results/{result['json_name']}")
    if not args.no_doc:
        write_doc(result, text_)
        print(f"written: {DOC.relative_to(ROOT)}")
    if not result["ledger_ok"]:
        sys.exit("the ledger check failed after a run: see the table")


if __name__ == "__main__":
    main()
