"""Carbon-account routes for partners (integrator keys): their accounts' balances, levels and
history, link codes, benefits and redemptions, and levels read with a person's consent."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status
from pydantic import BaseModel, Field

from neutralize.access.domain import Role
from neutralize.access.service import require
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.ingest import read_records, records_frame
from neutralize.accounts.levels import Reputation
from neutralize.api.deps import ActorDep, ClockDep, SessionDep
from neutralize.scenes import service as scenes

router = APIRouter(prefix="/api/v1", tags=["carbon accounts"])
CREATED = status.HTTP_201_CREATED
MAX_RECORDS_PER_REQUEST = 5_000


class AccountSummary(BaseModel):
    account: accounts.AccountView
    reputation: Reputation


class LinkCode(BaseModel):
    code: str
    expires_at: datetime


class RecordsUpload(BaseModel):
    """Records as JSON objects (the fields of docs/accounts.md "Records"), up to 5,000 a request (2 MB)."""

    records: list[dict[str, Any]] = Field(max_length=MAX_RECORDS_PER_REQUEST)


class RedemptionCreate(BaseModel):
    benefit_id: str = Field(max_length=40)
    idempotency_key: str = Field(min_length=8, max_length=120)


@router.post("/accounts/records")
def push_records(
    body: RecordsUpload, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> intake.IngestReport:
    """Credit a partner's records: each (partner, external id) once; refused rows come back with their
    row numbers and codes, and the valid rows of the same request are kept."""
    raw = records_frame(body.records)
    report = intake.ingest(session=session, clock=clock, actor=require(actor, Role.INTEGRATOR), raw=raw)
    scenes.record_reductions(session=session, user_ids=report.linked_users)
    return report


@router.post("/accounts/records/files")
def push_record_file(
    file: Annotated[UploadFile, File(description="JSON Lines, CSV or Parquet records")],
    session: SessionDep,
    clock: ClockDep,
    actor: ActorDep,
) -> intake.IngestReport:
    """The same for a file (up to the upload limit): a file that cannot be read as a whole is refused
    with one code and nothing is kept."""
    partner = require(actor, Role.INTEGRATOR)
    suffix = Path(file.filename or "").suffix.lower()
    with tempfile.TemporaryDirectory(prefix="neutralize-records-") as workdir:
        source = Path(workdir) / f"records{suffix}"
        with source.open("wb") as handle:
            shutil.copyfileobj(file.file, handle)
        raw = read_records(source)
    report = intake.ingest(session=session, clock=clock, actor=partner, raw=raw)
    scenes.record_reductions(session=session, user_ids=report.linked_users)
    return report


@router.get("/accounts/{reference}")
def account(reference: str, session: SessionDep, clock: ClockDep, actor: ActorDep) -> AccountSummary:
    """One of the partner's accounts: grams credited and bundled, the person's claim, points, level."""
    found = accounts.account_of(session=session, actor=require(actor, Role.INTEGRATOR), reference=reference)
    level = accounts.reputation_of(session=session, clock=clock, accounts=[found])
    return AccountSummary(account=accounts.view(found), reputation=level)


@router.get("/accounts/{reference}/history")
def history(reference: str, session: SessionDep, actor: ActorDep) -> list[accounts.EntryView]:
    """The account's latest behaviour first, each record with its grams, code and methodology version."""
    found = accounts.account_of(session=session, actor=require(actor, Role.INTEGRATOR), reference=reference)
    return accounts.history(session=session, account=found)


@router.post("/accounts/{reference}/link-codes", status_code=CREATED)
def link_code(reference: str, session: SessionDep, clock: ClockDep, actor: ActorDep) -> LinkCode:
    """A one-time code for the partner's app to show the person, who confirms it on their page."""
    code, expires = accounts.issue_link_code(
        session=session, clock=clock, actor=require(actor, Role.INTEGRATOR), reference=reference
    )
    return LinkCode(code=code, expires_at=expires)


@router.post("/accounts/{reference}/redemptions", status_code=CREATED)
def redeem(
    reference: str, body: RedemptionCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> accounts.RedemptionPublic:
    """Spend the account's points on a benefit, once per idempotency key."""
    partner = require(actor, Role.INTEGRATOR)
    found = accounts.account_of(session=session, actor=partner, reference=reference)
    return accounts.redeem(
        session=session,
        clock=clock,
        actor=partner,
        account_id=found.id,
        benefit_id=body.benefit_id,
        idempotency_key=body.idempotency_key,
    )


@router.get("/benefits")
def benefits(session: SessionDep) -> list[accounts.BenefitPublic]:
    """Every offer on the platform, priced in points."""
    return accounts.benefits(session=session)


@router.post("/benefits", status_code=CREATED)
def publish_benefit(
    body: accounts.BenefitCreate, session: SessionDep, clock: ClockDep, actor: ActorDep
) -> accounts.BenefitPublic:
    return accounts.publish_benefit(session=session, clock=clock, actor=require(actor, *Role), cmd=body)


@router.get("/levels/{consent_id}")
def level(consent_id: str, session: SessionDep, clock: ClockDep, actor: ActorDep) -> Reputation:
    """A person's green level and badges, for the partner they granted this consent to."""
    return accounts.level_for_partner(
        session=session, clock=clock, actor=require(actor, *Role), consent_id=consent_id
    )
