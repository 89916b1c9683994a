"""Kill -9 between payment and retirement: a buyer loop (``market_worker.py``) quotes, orders,
takes signed sandbox payments and fulfils about half of its orders on a SQLite file, one unit of
work per step, and is killed with SIGKILL at seeded random moments, over and over.

After every kill the real ``neutralize market reconcile`` must exit 0 having completed exactly the
orders that were paid and not yet retired, and then nothing may be left paid: every paid order is
certified (or refunded, with a reason), with one retirement and one certificate of its own, and
``neutralize registry check`` and ``neutralize audit verify`` must pass. Every step the worker logged
as committed (it logs after the commit, fsync'd) must be in the database: nothing lost. The
restarted worker finishes the purchase in flight with the same idempotency key and the same
notification, which must have no second effect.

``CRASH_TRIALS`` (default 5; ``make stress`` runs 200) sets the number of kills, ``CRASH_SEED`` the
seed of the kill delays and of the worker's orders.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from neutralize.certificates import service as certificates
from neutralize.certificates.models import Certificate
from neutralize.core.clock import SystemClock
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.signing import KeyRing
from neutralize.market.models import Order, PaymentEvent
from neutralize.registry.models import Retirement
from tests.crash import market_worker
from tests.crash import process as workers
from tests.crash.load_worker import read_log
from tests.crash.market_worker import INTENTS, STEPS
from tests.crash.process import Rig
from tests.integration.market.conftest import KEY_B64, Market

TRIALS = int(os.environ.get("CRASH_TRIALS", "5"))
SEED = int(os.environ.get("CRASH_SEED", "20261125"))
WORKER = Path(market_worker.__file__)
ROOT = WORKER.parents[2]
READY_TIMEOUT_S = 60
CLI_TIMEOUT_S = 120
LISTED_KG = 10_000_000  # far more than any run buys
KEYS = KeyRing.from_key_b64(KEY_B64, clock=SystemClock())


@dataclass
class Stats:
    kills: int = 0
    during_start: int = 0  # kills aimed before the worker said it was ready
    completed_by_reconcile: int = 0  # paid orders reconcile retired and certified
    killed_before_fulfilment: int = 0  # of those, orders the worker meant to fulfil itself


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    env = {
        "NEUTRALIZE_SIGNING_KEY": KEY_B64,  # the worker and the CLI sign with the same key
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    made = workers.new_rig(tmp_path, env)
    engine = make_engine(made.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            seller = Market(session).native_seller(kg=LISTED_KG)
    finally:
        engine.dispose()
    (made.state / "setup.json").write_text(json.dumps({"listing_id": seller.listing.id}))
    return made


def _neutralize(rig: Rig, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*workers.cli(), *args], env=rig.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _answer(name: str, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    """The command's JSON report; it must have exited 0."""
    out, err = process.communicate(timeout=CLI_TIMEOUT_S)
    assert process.returncode == 0, (
        f"neutralize {name} exited {process.returncode}:\n{out.decode()}\n{err.decode()}"
    )
    report: dict[str, Any] = json.loads(out)
    return report


def _paid_orders(rig: Rig) -> set[str]:
    engine = make_engine(rig.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return set(session.scalars(select(Order.id).where(Order.status == "paid")))
    finally:
        engine.dispose()


def reconcile_and_check(rig: Rig, stats: Stats) -> None:
    """``neutralize market reconcile`` completes exactly the paid orders and exits 0; then
    ``neutralize registry check`` and ``neutralize audit verify``, side by side, exit 0."""
    paid = _paid_orders(rig)
    report = _answer("market reconcile", _neutralize(rig, "market", "reconcile"))
    assert report["ok"] is True and report["problems"] == []
    assert sorted(report["fulfilled"]) == sorted(paid), "reconcile completed other orders than the paid ones"
    assert report["expired"] == 0  # reservations last 30 minutes: none ran out during the test
    stats.completed_by_reconcile += len(paid)
    stats.killed_before_fulfilment += len(paid & _meant_to_fulfil(rig))
    checks = {name: _neutralize(rig, *name.split()) for name in ("registry check", "audit verify")}
    for name, process in checks.items():
        assert _answer(name, process)["ok"] is True


def _meant_to_fulfil(rig: Rig) -> set[str]:
    """Orders the worker would have fulfilled itself had it not been killed."""
    meant = {i["key"] for i in read_log(rig.state / INTENTS) if i["fulfil"]}
    return {
        s["order_id"] for s in read_log(rig.state / STEPS) if s["step"] == "ordered" and s["key"] in meant
    }


def assert_settled(rig: Rig) -> None:
    """Nothing left paid; every paid order certified with one retirement and one certificate, or
    refunded with a reason; every step the worker logged is in the database."""
    steps = read_log(rig.state / STEPS)
    engine = make_engine(rig.settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            orders = {o.id: o for o in session.scalars(select(Order))}
            statuses = Counter(o.status for o in orders.values())
            assert set(statuses) <= {"payment_pending", "certified", "refunded"}, statuses
            paid_events = Counter(
                session.scalars(select(PaymentEvent.provider_ref).where(PaymentEvent.effect == "paid"))
            )
            assert [ref for ref, n in paid_events.items() if n > 1] == [], "a payment was taken twice"

            # Nothing lost: what the worker logged as committed is there.
            for step in steps:
                if step["step"] == "ordered":
                    assert step["order_id"] in orders, f"{step['key']}: order {step['order_id']} lost"
                elif step["step"] in ("paid", "fulfilled"):
                    assert orders[step["order_id"]].status in ("certified", "refunded"), step
            for step in steps:
                if step["step"] == "paid":
                    assert step["effect"] in ("paid", "duplicate: no effect"), step
                if step["step"] == "fulfilled":
                    assert step["status"] == "certified", step
                    assert orders[step["order_id"]].certificate_number == step["number"]

            # Every paid order ended certified or refunded: one payment event each.
            assert len(paid_events) == statuses["certified"] + statuses["refunded"]
            for order in orders.values():
                if order.status == "refunded":
                    assert order.note, f"order {order.id} refunded without a reason"

            # One retirement and one certificate per certified order, and no retirement besides.
            certified = {i: o for i, o in orders.items() if o.status == "certified"}
            retirements = dict(session.execute(select(Retirement.id, Retirement.quantity_kg)).all())
            assert retirements == {o.retirement_id: o.kg for o in certified.values()}
            rows = list(session.scalars(select(Certificate)))
            assert Counter(c.subject_ref for c in rows) == Counter(set(certified))
            for row in rows:
                assert row.number == certified[row.subject_ref].certificate_number
                assert row.document["evidence"]["retirement_id"] == certified[row.subject_ref].retirement_id
                verified = certificates.verify(session=session, keys=KEYS, number=row.number)
                assert verified.ok, verified.checks
    finally:
        engine.dispose()


def test_kill_9_between_payment_and_retirement_then_reconcile_certifies_every_paid_order(
    rig: Rig, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    stderr = tmp_path / "worker.stderr"
    stats = Stats()
    started = time.monotonic()
    for _ in range(TRIALS):
        process = workers.start(WORKER, rig.state, rng.randrange(2**32), rig.env, stderr)
        if rng.random() < 0.2:
            # Aim at the start: imports, and finishing the purchase in flight at the last kill.
            stats.during_start += 1
            time.sleep(rng.uniform(0.1, 1.0))
        else:
            workers.wait_ready(process, stderr)
            time.sleep(rng.uniform(0.1, 1.0))
        workers.kill(process, stderr)
        stats.kills += 1
        reconcile_and_check(rig, stats)
        assert_settled(rig)

    # One last start finishes whatever was in flight; then every purchase begun is settled.
    process = workers.start(WORKER, rig.state, rng.randrange(2**32), rig.env, stderr, replay_only=True)
    workers.wait_ready(process, stderr)
    workers.finish(process, stderr)
    reconcile_and_check(rig, stats)
    assert_settled(rig)
    done = Counter(s["step"] for s in read_log(rig.state / STEPS))
    print(
        f"market crash: {stats.kills} kills ({stats.during_start} aimed at start-up) in "
        f"{time.monotonic() - started:.1f} s; steps logged {dict(done)}; reconcile completed "
        f"{stats.completed_by_reconcile} paid orders, {stats.killed_before_fulfilment} of them killed "
        f"before the worker's own fulfilment (seed {SEED})"
    )
    assert stats.completed_by_reconcile > 0, "no kill ever left a paid order: the kills came too early"
