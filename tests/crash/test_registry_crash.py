"""Kill -9 at random moments: a load loop (``load_worker.py``) issues, retires and transfers on a
SQLite file, one unit of work per command, and is killed with SIGKILL and restarted, over and over.

After every kill ``neutralize registry check`` and ``neutralize audit verify`` must pass, and every
command the worker logged as committed (it logs after the commit, fsync'd) must be in the database
exactly once: nothing lost, nothing doubled. At most the one command in flight at the kill may be
in the database without its log line; the restarted worker retries it with the same idempotency
key, which must return the first result rather than move units again. At the end, every command
the worker ever started is settled exactly once.

``CRASH_TRIALS`` (default 20; ``make stress`` runs 200) sets the number of kills, ``CRASH_SEED``
the seed of the kill delays and of the worker's commands.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.registry.domain import BlockState
from neutralize.registry.models import Block, IdempotencyRecord, JournalEntry, Retirement
from tests.crash import load_worker
from tests.crash import process as workers
from tests.crash.load_worker import COMMITTED, INTENTS, REFUSED, read_log
from tests.crash.process import Rig

TRIALS = int(os.environ.get("CRASH_TRIALS", "20"))
SEED = int(os.environ.get("CRASH_SEED", "20261125"))
WORKER = Path(load_worker.__file__)
READY_TIMEOUT_S = 60
CLI_TIMEOUT_S = 120


@dataclass
class Stats:
    kills: int = 0
    during_start: int = 0  # kills aimed before the worker said it was ready (import, replay)
    in_flight_committed: int = 0  # the command in flight had committed, its log line not written
    in_flight_lost: int = 0  # the command in flight had not committed
    timings: list[float] = field(default_factory=list)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    keys = tmp_path / "keys"
    made = workers.new_rig(tmp_path, {"NEUTRALIZE_SIGNING_KEY_DIR": str(keys)}, signing_key_dir=keys)
    load_worker.set_up(made.settings, made.state)
    return made


def _run_checks(rig: Rig) -> None:
    """``neutralize registry check`` and ``neutralize audit verify``, side by side; both exit 0."""
    commands = {name: [*workers.cli(), *name.split()] for name in ("registry check", "audit verify")}
    running = {
        name: subprocess.Popen(command, env=rig.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, command in commands.items()
    }
    for name, process in running.items():
        out, err = process.communicate(timeout=CLI_TIMEOUT_S)
        assert process.returncode == 0, (
            f"neutralize {name} exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
        )
        assert json.loads(out)["ok"] is True


def _actor(entry: dict[str, Any]) -> str:
    return "system" if entry["op"] == "issue" else f"member-{entry['org']}"


def _assert_exactly_once(rig: Rig, stats: Stats, *, settled: bool = False) -> None:
    """Every logged commit in the database once; the commands in the database are the logged ones
    plus at most the one in flight; with ``settled``, none in flight."""
    intents = {i["key"]: i for i in read_log(rig.state / INTENTS)}
    committed = read_log(rig.state / COMMITTED)
    refused = read_log(rig.state / REFUSED)
    committed_keys = Counter(c["key"] for c in committed)
    assert [k for k, n in committed_keys.items() if n > 1] == [], "a command was logged as committed twice"
    assert not set(committed_keys) & {r["key"] for r in refused}
    pending = set(intents) - set(committed_keys) - {r["key"] for r in refused}
    assert len(pending) <= (0 if settled else 1), f"commands never settled: {sorted(pending)}"

    engine = make_engine(rig.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            entries: Counter[str | None] = Counter(
                session.scalars(
                    select(JournalEntry.idempotency_key).where(JournalEntry.idempotency_key.like("op-%"))
                )
            )
            assert [k for k, n in entries.items() if n > 1] == [], "a command was journalled twice"
            # Nothing lost: every logged commit is there, with the result the worker was given.
            lost = [c["key"] for c in committed if c["key"] not in entries]
            assert lost == [], f"committed, then lost: {lost}"
            for entry in committed:
                _assert_recorded(session, entry)
            for entry in refused:
                assert entry["key"] not in entries
            # Nothing extra: besides the logged commits, at most the command in flight.
            extra = {key for key in entries if key is not None} - set(committed_keys)
            assert extra <= pending, f"in the database but never logged: {sorted(extra - pending)}"
            if not settled:
                stats.in_flight_committed += len(extra)
                stats.in_flight_lost += len(pending - extra)
            # Each retirement row belongs to exactly one command's stored result, and the retired
            # blocks hold exactly what the retirement rows say.
            owners = Counter(
                record.response.get("retirement_id")
                for record in session.scalars(select(IdempotencyRecord))
                if record.response.get("retirement_id")
            )
            rows = dict(session.execute(select(Retirement.id, Retirement.quantity_kg)).all())
            assert set(rows) == set(owners), "a retirement without its command's result, or the reverse"
            assert [r for r, n in owners.items() if n > 1] == []
            size = Block.span_end - Block.span_start + 1
            by_retirement = dict(
                session.execute(
                    select(Block.retirement_id, func.sum(size))
                    .where(Block.state == BlockState.RETIRED.value)
                    .group_by(Block.retirement_id)
                ).all()
            )
            assert by_retirement == rows
    finally:
        engine.dispose()


def _assert_recorded(session: Session, entry: dict[str, Any]) -> None:
    record = session.get(IdempotencyRecord, (_actor(entry), entry["key"]))
    assert record is not None, f"{entry['key']}: no idempotency record"
    assert record.response["quantity_kg"] == entry["quantity_kg"]
    assert record.response["journal"]["seq"] == entry["journal_seq"]
    if entry["op"] == "retire":
        assert record.response["retirement_id"] == entry["retirement_id"]
        retirement = session.get(Retirement, entry["retirement_id"])
        assert retirement is not None, f"{entry['key']}: retirement {entry['retirement_id']} lost"
        assert retirement.quantity_kg == entry["quantity_kg"]


def test_kill_9_at_random_moments_loses_and_doubles_nothing(rig: Rig, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    stderr = tmp_path / "worker.stderr"
    stats = Stats()
    started = time.monotonic()
    for _ in range(TRIALS):
        trial_started = time.monotonic()
        process = workers.start(WORKER, rig.state, rng.randrange(2**32), rig.env, stderr)
        if rng.random() < 0.2:
            # Aim at the start: imports, the replay of the command in flight at the last kill.
            stats.during_start += 1
            time.sleep(rng.uniform(0.1, 0.7))
        else:
            workers.wait_ready(process, stderr)
            time.sleep(rng.uniform(0.0, 0.4))
        workers.kill(process, stderr)
        stats.kills += 1
        _run_checks(rig)
        _assert_exactly_once(rig, stats)
        stats.timings.append(time.monotonic() - trial_started)

    # One last start replays whatever was in flight; then everything is settled exactly once.
    process = workers.start(WORKER, rig.state, rng.randrange(2**32), rig.env, stderr, replay_only=True)
    workers.wait_ready(process, stderr)
    workers.finish(process, stderr)
    _run_checks(rig)
    _assert_exactly_once(rig, stats, settled=True)

    committed = read_log(rig.state / COMMITTED)
    operations = Counter(c["op"] for c in committed)
    print(
        f"crash: {stats.kills} kills ({stats.during_start} aimed at start-up) in "
        f"{time.monotonic() - started:.1f} s; in flight at a kill: {stats.in_flight_committed} committed "
        f"before their log line, {stats.in_flight_lost} not committed; {dict(operations)} committed, "
        f"{len(read_log(rig.state / REFUSED))} refused (seed {SEED})"
    )
    assert operations["retire"] > 0, "no retirement was ever committed: the kills came too early"
