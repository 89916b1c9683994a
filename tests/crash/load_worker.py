"""A load loop for the crash test: issue, retire and transfer against a SQLite file, one unit of
work per command, until killed. Each issuance verifies a one-day monitoring period after the last,
so the load spreads over many vintages (and journal chains) as it goes.

    python load_worker.py STATE_DIR SEED        (NEUTRALIZE_DATABASE_URL names the database)

``STATE_DIR/setup.json`` (written by :func:`set_up`) names the organisations and the project.
Before each command the worker appends its intent (key and full command) to ``intents.log``; after
the unit of work commits it appends the outcome to ``committed.log`` (or ``refused.log``). Each
line is fsync'd before the worker goes on. On start it first repairs a line a kill cut short, then
replays every intent without an outcome with the same key and command: a command that committed
before the kill returns its first result, one that did not is carried out now. Either way it is
recorded once. Every few commands it signs a journal checkpoint. It prints one line, ``ready``,
once its replay is done.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError
from neutralize.core.signing import KeyRing
from neutralize.registry import journal, service
from neutralize.registry.domain import AccountKind, BlockState, ProjectStatus, Span, serial
from neutralize.registry.models import Account, Block, Project, Verification
from neutralize.registry.schemas import (
    IssueCmd,
    OperationResult,
    OrganisationCreate,
    ProjectCreate,
    ProjectTransition,
    RetireCmd,
    TransferCmd,
    Units,
    VerificationCreate,
)

CLOCK = SystemClock()
VERIFIER = Actor(id="verifier-1", role=Role.VERIFIER)
# Monitoring periods: the first issuance's, then one day each, later and later, over many vintages.
FIRST_PERIOD = (date(2010, 1, 1), date(2010, 1, 31))
LAST_PERIOD_END = date(2025, 12, 31)  # periods must have ended before issuance
FIRST_ISSUANCE_KG = 100_000
ISSUE_EVERY = 15  # commands
CHECKPOINT_EVERY = 20  # commands
INTENTS, COMMITTED, REFUSED = "intents.log", "committed.log", "refused.log"
COMMANDS: dict[str, type[BaseModel]] = {"issue": IssueCmd, "retire": RetireCmd, "transfer": TransferCmd}


def actor_of(setup: dict[str, Any], org: int) -> Actor:
    return Actor(id=f"member-{org}", role=Role.MEMBER, organisation_id=setup["orgs"][org]["id"])


# --- set-up (run by the test, in its own process) -----------------------------------------------


def set_up(settings: Settings, state_dir: Path, code: str = "CRASH-1") -> dict[str, Any]:
    """Two organisations, a registered project of the first with 100 t issued; writes setup.json."""
    engine = make_engine(settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            orgs = []
            for n in range(2):
                created = service.create_organisation(
                    session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name=f"Org {n}")
                )
                accounts = {a.kind: a.id for a in created.accounts}
                orgs.append({"id": created.id, "holding": accounts[AccountKind.HOLDING.value]})
            owner = Actor(id="owner-0", role=Role.PROJECT_OWNER, organisation_id=orgs[0]["id"])
            service.create_project(
                session=session,
                clock=CLOCK,
                actor=owner,
                cmd=ProjectCreate(
                    code=code,
                    name="Chengdu metro riders",
                    standard="CDCER",
                    methodology="CDCER-TRANSIT",
                    methodology_version="1.0",
                    project_type="transport",
                    credit_type="avoidance",
                    nature_based=False,
                    country="CN",
                    owner_organisation_id=orgs[0]["id"],
                ),
            )
            for status, actor in (
                (ProjectStatus.SUBMITTED, owner),
                (ProjectStatus.VALIDATED, VERIFIER),
                (ProjectStatus.REGISTERED, SYSTEM),
            ):
                service.transition_project(
                    session=session,
                    clock=CLOCK,
                    actor=actor,
                    project_code=code,
                    cmd=ProjectTransition(to_status=status.value),
                )
            verification = _verification(session, code, FIRST_ISSUANCE_KG)
            service.issue(
                session=session,
                clock=CLOCK,
                actor=SYSTEM,
                cmd=IssueCmd(verification_id=verification, idempotency_key="setup-issue"),
            )
    finally:
        engine.dispose()
    setup = {"project_code": code, "orgs": orgs}
    (state_dir / "setup.json").write_text(json.dumps(setup))
    return setup


def _verification(session: Session, code: str, kg: int, period: tuple[date, date] = FIRST_PERIOD) -> str:
    return service.record_verification(
        session=session,
        clock=CLOCK,
        actor=VERIFIER,
        cmd=VerificationCreate(
            project_code=code,
            verifier="Sichuan Verification Co.",
            period_start=period[0],
            period_end=period[1],
            verified_kg=kg,
            report_sha256="cd" * 32,
        ),
    ).id


# --- durable logs ----------------------------------------------------------------------------


def read_log(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log (a last line without its newline was cut short by a kill)."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[:-1] if line]


def repair_log(path: Path) -> None:
    """Drop a last line a kill cut short, so the next append starts on a line of its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
            os.fsync(handle.fileno())


def append_log(path: Path, record: dict[str, Any]) -> None:
    with path.open("ab") as handle:
        handle.write(json.dumps(record, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- commands ---------------------------------------------------------------------------------


def run_command(
    factory: sessionmaker[Session], setup: dict[str, Any], intent: dict[str, Any]
) -> OperationResult:
    """Carry out one logged intent in its own unit of work."""
    cmd = COMMANDS[intent["op"]].model_validate(intent["cmd"])
    with unit_of_work(factory) as session:
        if isinstance(cmd, IssueCmd):
            return service.issue(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)
        actor = actor_of(setup, intent["org"])
        if isinstance(cmd, RetireCmd):
            return service.retire(session=session, clock=CLOCK, actor=actor, cmd=cmd)
        assert isinstance(cmd, TransferCmd)
        return service.transfer(session=session, clock=CLOCK, actor=actor, cmd=cmd)


def carry_out(
    factory: sessionmaker[Session], setup: dict[str, Any], state: Path, intent: dict[str, Any]
) -> None:
    try:
        result = run_command(factory, setup, intent)
    except DomainError as error:
        append_log(state / REFUSED, {"key": intent["key"], "code": error.code.value})
        return
    append_log(
        state / COMMITTED,
        {
            "key": intent["key"],
            "op": intent["op"],
            "org": intent.get("org"),
            "retirement_id": result.retirement_id,
            "quantity_kg": result.quantity_kg,
            "journal_seq": result.journal.seq,
        },
    )


def _held(session: Session, setup: dict[str, Any], org: int) -> dict[int, list[Span]]:
    """The organisation's held blocks of the project, by vintage."""
    project_id = session.scalar(select(Project.id).where(Project.code == setup["project_code"]))
    rows = session.execute(
        select(Block.vintage, Block.span_start, Block.span_end)
        .join(Account, Block.account_id == Account.id)
        .where(
            Block.project_id == project_id,
            Block.state == BlockState.HELD.value,
            Account.id == setup["orgs"][org]["holding"],
        )
        .order_by(Block.span_start)
    )
    held: dict[int, list[Span]] = {}
    for vintage, start, end in rows:
        held.setdefault(vintage, []).append(Span(start, end))
    return held


def _next_period(session: Session, code: str, rng: random.Random) -> tuple[date, date] | None:
    """A one-day monitoring period after every verified one (each period is verified once);
    ``None`` once the periods reach the last ended year."""
    project_id = session.scalar(select(Project.id).where(Project.code == code))
    last = session.scalar(
        select(func.max(Verification.period_end)).where(Verification.project_id == project_id)
    )
    assert last is not None
    day = last + timedelta(days=rng.randint(1, 15))
    return (day, day) if day <= LAST_PERIOD_END else None


def next_intent(
    factory: sessionmaker[Session], setup: dict[str, Any], rng: random.Random, number: int
) -> dict[str, Any] | None:
    """The next command to try, chosen from what is held now; ``None`` if nothing fits."""
    key = f"op-{number}"
    code = setup["project_code"]
    if number % ISSUE_EVERY == ISSUE_EVERY - 1:
        with unit_of_work(factory) as session:  # its own unit of work: a kill may orphan it, harmlessly
            period = _next_period(session, code, rng)
            if period is None:
                return None
            verification = _verification(session, code, rng.randint(1_000, 20_000), period)
        cmd: BaseModel = IssueCmd(verification_id=verification, idempotency_key=key)
        return {"key": key, "op": "issue", "org": None, "cmd": cmd.model_dump(mode="json")}
    org = rng.choices([0, 1], weights=[3, 1])[0]
    with unit_of_work(factory) as session:
        held = _held(session, setup, org)
    if not held:
        return None
    vintage = rng.choice(sorted(held))
    spans = held[vintage]
    if rng.random() < 0.5:
        total = sum(span.size for span in spans)
        units = Units(project_code=code, vintage=vintage, quantity_kg=rng.randint(1, min(total, 2_000)))
    else:
        span = rng.choice(spans)
        start = rng.randint(span.start, span.end)
        units = Units(serial=serial(code, vintage, Span(start, min(span.end, start + rng.randint(0, 999)))))
    if rng.random() < 0.7:
        op = "retire"
        cmd = RetireCmd(units=units, beneficiary=f"Guest {number}", reason="crash test", idempotency_key=key)
    else:
        op = "transfer"
        to = setup["orgs"][1 - org]["holding"]
        cmd = TransferCmd(units=units, to_account_id=to, idempotency_key=key)
    return {"key": key, "op": op, "org": org, "cmd": cmd.model_dump(mode="json")}


def main(state: Path, seed: int, replay_only: bool = False) -> None:
    settings = Settings()  # NEUTRALIZE_DATABASE_URL, NEUTRALIZE_SIGNING_KEY_DIR
    setup = json.loads((state / "setup.json").read_text())
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    for name in (INTENTS, COMMITTED, REFUSED):
        repair_log(state / name)
    intents = read_log(state / INTENTS)
    settled = {r["key"] for r in read_log(state / COMMITTED) + read_log(state / REFUSED)}
    for intent in intents:
        if intent["key"] not in settled:
            carry_out(factory, setup, state, intent)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if replay_only:  # the last start of a test: what was in flight is settled, nothing new begins
        return
    rng = random.Random(seed)
    keys = KeyRing.from_settings(settings, clock=CLOCK)
    first = 1 + max((int(i["key"].removeprefix("op-")) for i in intents), default=-1)
    for number in range(first, sys.maxsize):
        command = next_intent(factory, setup, rng, number)
        if command is None:
            continue
        append_log(state / INTENTS, command)
        carry_out(factory, setup, state, command)
        if number % CHECKPOINT_EVERY == 0:
            with unit_of_work(factory) as session:
                journal.checkpoint(session=session, clock=CLOCK, keys=keys)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), replay_only="--replay-only" in sys.argv[3:])
