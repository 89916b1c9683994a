"""Bundling: an operator turns verified, unbundled grams of a period into a native carbon-inclusive
issuance in the registry, in whole kilograms.

Only the behaviours the project's methodology covers are taken (``behaviours``: metro riding for a
transit project, say). The grams are taken from the history entries oldest first until the whole
kilograms are reached; the last entry may be taken in part, and what is left of it (under 1,000 g
in all) waits for the next bundle. Each take is recorded (``account_bundle_takes``): an entry's
takes never add up to more than it was credited, so no gram is bundled twice, and the accounts'
``bundled_g`` grows by what was taken from them (it leaves the people's own reduction claim). One
bundle at a time: PostgreSQL holds an advisory lock for it, SQLite's writer lock does the same.

The issuance goes through the registry's own rules: a verification record of the period (the
verifier's name and report) must exist first, and the period must have ended. The project must be a
registered carbon-inclusive project (label ``carbon_inclusive``): its credits are then shown as
behavioural, domestic use only, with no corresponding adjustment and not CCP-assessed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.accounts.models import AccountEntry, Bundle, BundleTake, CarbonAccount
from neutralize.accounts.records import Behaviour
from neutralize.core.clock import Clock
from neutralize.core.db import hold
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.ids import new_id
from neutralize.registry import service as registry
from neutralize.registry.models import Issuance
from neutralize.registry.schemas import Command, IssueCmd, VerificationCreate

GRAMS_PER_KG = 1_000


class BundleCreate(Command):
    project_code: str = Field(max_length=40)
    period_start: date
    period_end: date
    verifier: str = Field(min_length=1, max_length=200)
    report_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    behaviours: list[Behaviour] = Field(
        default_factory=lambda: list(Behaviour), min_length=1
    )  # the project's


class BundlePublic(BaseModel):
    id: str
    project_code: str
    kg: int
    grams_taken: int
    entries: int
    accounts: int
    verification_id: str
    serial: str  # the issued block's serial range


def bundle(*, session: Session, clock: Clock, actor: Actor, cmd: BundleCreate) -> BundlePublic:
    """Issue the period's unbundled verified grams as whole kilograms of ``cmd.project_code``."""
    require(actor, Role.ADMIN)
    project = registry.get_project(session=session, code=cmd.project_code)
    if not project.labels.get("carbon_inclusive") or project.status != "registered":
        raise DomainError(
            code=ErrorCode.INVALID_TRANSITION,
            message=f"{cmd.project_code} is not a registered carbon-inclusive project",
        )
    hold(session, "neutralize.bundles")
    since = datetime.combine(cmd.period_start, time.min, UTC)
    until = datetime.combine(cmd.period_end + timedelta(days=1), time.min, UTC)
    taken_before = (
        select(BundleTake.entry_id, func.sum(BundleTake.grams).label("grams"))
        .group_by(BundleTake.entry_id)
        .subquery()
    )
    left = AccountEntry.grams - func.coalesce(taken_before.c.grams, 0)
    rows = session.execute(
        select(AccountEntry.id, AccountEntry.account_id, left)
        .outerjoin(taken_before, taken_before.c.entry_id == AccountEntry.id)
        .where(
            AccountEntry.started_at >= since,
            AccountEntry.started_at < until,
            AccountEntry.behaviour.in_([b.value for b in cmd.behaviours]),
            left > 0,
        )
        .order_by(AccountEntry.id)
    ).all()
    available = sum(int(grams) for _id, _account, grams in rows)
    kg = available // GRAMS_PER_KG
    if kg == 0:
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_UNITS,
            message=f"{available} unbundled verified grams in the period: not one whole kilogram",
        )
    verification = registry.record_verification(
        session=session,
        clock=clock,
        actor=actor,
        cmd=VerificationCreate(
            project_code=cmd.project_code,
            verifier=cmd.verifier,
            period_start=cmd.period_start,
            period_end=cmd.period_end,
            verified_kg=kg,
            report_sha256=cmd.report_sha256,
        ),
    )
    now = clock.now()
    bundle_id = new_id("bnd", now)
    registry.issue(
        session=session,
        clock=clock,
        actor=actor,
        cmd=IssueCmd(verification_id=verification.id, idempotency_key=f"bundle-{bundle_id}"),
    )
    issuance = session.scalars(select(Issuance).where(Issuance.verification_id == verification.id)).one()
    session.add(
        Bundle(
            id=bundle_id,
            project_id=project.id,
            issuance_id=issuance.id,
            period_start=since,
            period_end=until,
            kg=kg,
            created_at=now,
        )
    )
    session.flush()
    wanted = kg * GRAMS_PER_KG
    per_account: dict[str, int] = {}
    takes = []
    for entry_id, account_id, grams in rows:
        take = min(int(grams), wanted)
        if take == 0:
            break
        takes.append({"bundle_id": bundle_id, "entry_id": entry_id, "account_id": account_id, "grams": take})
        per_account[account_id] = per_account.get(account_id, 0) + take
        wanted -= take
    session.execute(insert(BundleTake), takes)
    for account_id, grams in per_account.items():
        account = session.get(CarbonAccount, account_id, with_for_update=True)
        assert account is not None
        account.bundled_g = CarbonAccount.bundled_g + grams
    session.flush()
    return BundlePublic(
        id=bundle_id,
        project_code=cmd.project_code,
        kg=kg,
        grams_taken=kg * GRAMS_PER_KG,
        entries=len(takes),
        accounts=len(per_account),
        verification_id=verification.id,
        serial=issuance.serial,
    )
