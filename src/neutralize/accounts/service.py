"""Carbon-account use cases: partners' accounts, a person's links between them, balances and the
green level, partners' benefits and their redemption, consents, and the reconciliation of running
totals with the history. Services never commit.

Who may do what: an integrator key acts for its own organisation (the partner) and only on that
partner's accounts; a signed-in person acts on the accounts linked to them; an admin may read all.
Someone else's account is ``not_found``, so that references do not leak.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.accounts.levels import WINDOW_DAYS, Activity, Reputation, reputation
from neutralize.accounts.models import (
    GRAMS_PER_POINT,
    AccountEntry,
    Benefit,
    BundleTake,
    CarbonAccount,
    LevelConsent,
    LinkCode,
    Redemption,
)
from neutralize.core.clock import Clock, as_utc
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id
from neutralize.registry.models import Organisation
from neutralize.registry.schemas import Command

LINK_CODE_TTL = timedelta(minutes=15)
LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread
LINK_CODE_LENGTH = 8
HISTORY_SHOWN = 50


class AccountView(BaseModel):
    id: str
    partner_id: str
    reference: str
    linked: bool
    credited_g: int  # every verified gram
    bundled_g: int  # grams turned into registry credits: no longer the person's claim
    claim_g: int  # the person's reduction claim: credited - bundled
    points: int  # earned (1 per 100 g credited) - spent
    points_spent: int


class EntryView(BaseModel):
    id: int
    external_id: str
    behaviour: str
    started_at: datetime
    grams: int
    code: str | None
    methodology: str | None


class BenefitCreate(Command):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    points: int = Field(gt=0, le=10**9)
    stock: int | None = Field(default=None, ge=0, le=10**9)


class BenefitPublic(BaseModel):
    id: str
    partner_id: str
    title: str
    description: str
    points: int
    stock: int | None
    active: bool


class RedemptionPublic(BaseModel):
    id: str
    account_id: str
    benefit_id: str
    points: int
    created_at: datetime


class ConsentPublic(BaseModel):
    id: str
    partner_id: str
    granted_at: datetime
    withdrawn_at: datetime | None


class PartnerSummary(BaseModel):
    accounts: int
    linked: int
    credited_g: int
    records: int
    rejected_by_code: dict[str, int]
    rejected: list[EntryView]  # the newest


class Finding(BaseModel):
    code: str
    message: str


# --- accounts ---------------------------------------------------------------------------------------


def account_of(
    *, session: Session, actor: Actor, reference: str | None = None, account_id: str | None = None
) -> CarbonAccount:
    """An account the actor may see: by the partner's reference (integrators) or by id (the linked
    person, the partner, an admin)."""
    account: CarbonAccount | None
    if reference is not None:
        require(actor, Role.INTEGRATOR)
        account = session.scalars(
            select(CarbonAccount).where(
                CarbonAccount.partner_id == actor.organisation_id, CarbonAccount.reference == reference
            )
        ).first()
    else:
        account = session.get(CarbonAccount, account_id) if account_id else None
        if account is not None and not _may_see(actor, account):
            account = None
    if account is None:
        raise NotFoundError(f"no carbon account {reference or account_id!r} of yours")
    return account


def _may_see(actor: Actor, account: CarbonAccount) -> bool:
    if actor.is_admin:
        return True
    if actor.role is Role.INTEGRATOR:
        return account.partner_id == actor.organisation_id
    return account.user_id is not None and account.user_id == actor.id


def view(account: CarbonAccount) -> AccountView:
    return AccountView(
        id=account.id,
        partner_id=account.partner_id,
        reference=account.reference,
        linked=account.user_id is not None,
        credited_g=account.credited_g,
        bundled_g=account.bundled_g,
        claim_g=account.credited_g - account.bundled_g,
        points=account.credited_g // GRAMS_PER_POINT - account.points_spent,
        points_spent=account.points_spent,
    )


def accounts_of_person(*, session: Session, user_id: str) -> list[CarbonAccount]:
    return list(
        session.scalars(
            select(CarbonAccount).where(CarbonAccount.user_id == user_id).order_by(CarbonAccount.id)
        )
    )


def history(*, session: Session, account: CarbonAccount, limit: int = HISTORY_SHOWN) -> list[EntryView]:
    """The account's latest behaviour first, each entry with its grams, methodology version and code."""
    rows = session.scalars(
        select(AccountEntry)
        .where(AccountEntry.account_id == account.id)
        .order_by(AccountEntry.started_at.desc(), AccountEntry.id.desc())
        .limit(min(limit, 500))
    )
    return [_entry_view(r) for r in rows]


def _entry_view(row: AccountEntry) -> EntryView:
    return EntryView(
        id=row.id,
        external_id=row.external_id,
        behaviour=row.behaviour,
        started_at=as_utc(row.started_at),
        grams=row.grams,
        code=row.code,
        methodology=row.methodology,
    )


def claim_of(
    *, session: Session, user_id: str, since: datetime | None = None, until: datetime | None = None
) -> int:
    """A person's own reduction claim in grams over their linked accounts (between ``since`` and
    ``until``, by the records' start): what was credited, less what was bundled into credits."""
    entries = AccountEntry
    where = [CarbonAccount.user_id == user_id, entries.grams > 0]
    if since is not None:
        where.append(entries.started_at >= since)
    if until is not None:
        where.append(entries.started_at < until)
    credited = session.scalar(
        select(func.coalesce(func.sum(entries.grams), 0))
        .join(CarbonAccount, CarbonAccount.id == entries.account_id)
        .where(*where)
    )
    bundled = session.scalar(
        select(func.coalesce(func.sum(BundleTake.grams), 0))
        .join(entries, entries.id == BundleTake.entry_id)
        .join(CarbonAccount, CarbonAccount.id == entries.account_id)
        .where(*where)
    )
    return int(credited or 0) - int(bundled or 0)


def reputation_of(*, session: Session, clock: Clock, accounts: Sequence[CarbonAccount]) -> Reputation:
    """The green level and badges of a person's accounts taken together (or of one account)."""
    ids = [a.id for a in accounts]
    since = clock.now() - timedelta(days=WINDOW_DAYS)
    entries = AccountEntry
    credited = (entries.account_id.in_(ids), entries.grams > 0)
    recent = session.execute(
        select(entries.grams, entries.started_at).where(*credited, entries.started_at >= since)
    ).all()
    months = {(as_utc(at).year, as_utc(at).month) for _grams, at in recent}
    by_behaviour = {
        behaviour: (int(count), int(grams or 0), int(metres or 0))
        for behaviour, count, grams, metres in session.execute(
            select(entries.behaviour, func.count(), func.sum(entries.grams), func.sum(entries.distance_m))
            .where(*credited)
            .group_by(entries.behaviour)
        )
    }
    activity = Activity(
        grams_last_year=sum(int(grams) for grams, _at in recent),
        active_months_last_year=len(months),
        grams_ever=sum(grams for _count, grams, _m in by_behaviour.values()),
        public_transport_trips=by_behaviour.get("public_transport", (0, 0, 0))[0],
        active_travel_m=by_behaviour.get("active_travel", (0, 0, 0))[2],
        freight_grams=by_behaviour.get("freight_matching", (0, 0, 0))[1],
    )
    return reputation(activity)


def partner_summary(*, session: Session, actor: Actor) -> PartnerSummary:
    """A partner's view of its accounts: how many, how many linked, grams credited, and the records
    the rules rejected, by code and newest first."""
    partner_id = require(actor, Role.INTEGRATOR).organisation_id
    count, linked, grams = session.execute(
        select(
            func.count(),
            func.count(CarbonAccount.user_id),
            func.coalesce(func.sum(CarbonAccount.credited_g), 0),
        ).where(CarbonAccount.partner_id == partner_id)
    ).one()
    ours = AccountEntry.partner_id == partner_id
    records = session.scalar(select(func.count()).select_from(AccountEntry).where(ours)) or 0
    rejected = AccountEntry.grams == 0
    by_code = session.execute(
        select(AccountEntry.code, func.count()).where(ours, rejected).group_by(AccountEntry.code)
    ).all()
    newest = session.scalars(
        select(AccountEntry).where(ours, rejected).order_by(AccountEntry.id.desc()).limit(HISTORY_SHOWN)
    )
    return PartnerSummary(
        accounts=int(count),
        linked=int(linked),
        credited_g=int(grams),
        records=int(records),
        rejected_by_code={str(code): int(n) for code, n in by_code},
        rejected=[_entry_view(r) for r in newest],
    )


def partners_offering_benefits(*, session: Session) -> list[tuple[str, str]]:
    """(id, name) of the organisations with a benefit on offer: whom a person may grant a consent."""
    rows = session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.id.in_(select(Benefit.partner_id).where(Benefit.active.is_(True))))
        .order_by(Organisation.name)
    )
    return [(str(i), str(n)) for i, n in rows]


# --- linking a person's accounts ----------------------------------------------------------------------


def issue_link_code(*, session: Session, clock: Clock, actor: Actor, reference: str) -> tuple[str, datetime]:
    """A one-time code (valid 15 minutes) the partner's app shows the person behind ``reference``."""
    account = account_of(session=session, actor=actor, reference=reference)
    code = "".join(secrets.choice(LINK_ALPHABET) for _ in range(LINK_CODE_LENGTH))
    expires = clock.now() + LINK_CODE_TTL
    session.add(LinkCode(code_sha256=_digest(code), account_id=account.id, expires_at=expires))
    session.flush()
    return code, expires


def confirm_link(*, session: Session, clock: Clock, user_id: str, code: str) -> CarbonAccount:
    """The signed-in person confirms a code: that account is theirs from now on. An account another
    person linked first is ``already_claimed``."""
    normalised = code.strip().upper().replace(" ", "").replace("-", "")
    row = session.get(LinkCode, _digest(normalised), with_for_update=True)
    now = clock.now()
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= now:
        raise DomainError(code=ErrorCode.TOKEN_INVALID, message="this link code is unknown, used or expired")
    account = session.get(CarbonAccount, row.account_id, with_for_update=True)
    assert account is not None
    if account.user_id not in (None, user_id):
        raise DomainError(code=ErrorCode.ALREADY_CLAIMED, message="this account is linked to another person")
    account.user_id = user_id
    row.used_at = now
    session.flush()
    return account


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


# --- benefits and points --------------------------------------------------------------------------------


def publish_benefit(*, session: Session, clock: Clock, actor: Actor, cmd: BenefitCreate) -> BenefitPublic:
    """A partner's offer, priced in points."""
    require(actor, Role.INTEGRATOR, Role.ADMIN)
    if actor.organisation_id is None:
        raise DomainError(code=ErrorCode.FORBIDDEN, message="a benefit is offered by an organisation")
    now = clock.now()
    benefit = Benefit(
        id=new_id("ben", now),
        partner_id=actor.organisation_id,
        title=cmd.title,
        description=cmd.description,
        points=cmd.points,
        stock=cmd.stock,
        active=True,
        created_at=now,
    )
    session.add(benefit)
    session.flush()
    return _benefit_public(benefit)


def benefits(*, session: Session) -> list[BenefitPublic]:
    """The offers people can redeem now."""
    rows = session.scalars(
        select(Benefit).where(Benefit.active.is_(True)).order_by(Benefit.points, Benefit.id)
    )
    return [_benefit_public(b) for b in rows]


def _benefit_public(benefit: Benefit) -> BenefitPublic:
    return BenefitPublic(
        id=benefit.id,
        partner_id=benefit.partner_id,
        title=benefit.title,
        description=benefit.description,
        points=benefit.points,
        stock=benefit.stock,
        active=benefit.active,
    )


def redeem(
    *, session: Session, clock: Clock, actor: Actor, account_id: str, benefit_id: str, idempotency_key: str
) -> RedemptionPublic:
    """Spend an account's points on a benefit, once per idempotency key: a retry returns the first
    redemption, the same key for another benefit is ``idempotency_conflict``. Points never go below
    zero (the account row is locked, and the database checks it too)."""
    account = account_of(session=session, actor=actor, account_id=account_id)
    earlier = _earlier_redemption(session, account.id, idempotency_key, benefit_id)
    if earlier is not None:
        return earlier
    session.get(CarbonAccount, account.id, with_for_update=True, populate_existing=True)  # one at a time
    benefit = session.get(Benefit, benefit_id, with_for_update=True)
    if benefit is None or not benefit.active:
        raise NotFoundError(f"no benefit {benefit_id!r} on offer")
    if benefit.stock is not None and benefit.stock < 1:
        raise DomainError(code=ErrorCode.BENEFIT_UNAVAILABLE, message=f"{benefit.title!r} is out of stock")
    available = account.credited_g // GRAMS_PER_POINT - account.points_spent
    if available < benefit.points:
        raise DomainError(
            code=ErrorCode.INSUFFICIENT_POINTS,
            message=f"{benefit.points} points needed, {available} available",
        )
    now = clock.now()
    redemption = Redemption(
        id=new_id("red", now),
        account_id=account.id,
        benefit_id=benefit.id,
        idempotency_key=idempotency_key,
        points=benefit.points,
        created_at=now,
    )
    try:
        with session.begin_nested():  # the same key in flight elsewhere: its redemption wins
            account.points_spent += benefit.points
            if benefit.stock is not None:
                benefit.stock -= 1
            session.add(redemption)
    except IntegrityError:
        session.expire_all()
        first = _earlier_redemption(session, account.id, idempotency_key, benefit_id)
        if first is None:
            raise
        return first
    return _redemption_public(redemption)


def _earlier_redemption(
    session: Session, account_id: str, key: str, benefit_id: str
) -> RedemptionPublic | None:
    earlier = session.scalars(
        select(Redemption).where(Redemption.account_id == account_id, Redemption.idempotency_key == key)
    ).first()
    if earlier is None:
        return None
    if earlier.benefit_id != benefit_id:
        raise DomainError(
            code=ErrorCode.IDEMPOTENCY_CONFLICT, message="this idempotency key redeemed another benefit"
        )
    return _redemption_public(earlier)


def _redemption_public(redemption: Redemption) -> RedemptionPublic:
    return RedemptionPublic(
        id=redemption.id,
        account_id=redemption.account_id,
        benefit_id=redemption.benefit_id,
        points=redemption.points,
        created_at=as_utc(redemption.created_at),
    )


# --- consents: partners reading a person's level ----------------------------------------------------------


def grant_consent(*, session: Session, clock: Clock, user_id: str, partner_id: str) -> ConsentPublic:
    """The person lets ``partner_id`` read their level; the grant's id is what they hand the partner."""
    now = clock.now()
    consent = LevelConsent(id=new_id("lvc", now), user_id=user_id, partner_id=partner_id, granted_at=now)
    session.add(consent)
    session.flush()
    return _consent_public(consent)


def withdraw_consent(*, session: Session, clock: Clock, user_id: str, consent_id: str) -> None:
    consent = session.get(LevelConsent, consent_id)
    if consent is None or consent.user_id != user_id:
        raise NotFoundError(f"no consent {consent_id!r} of yours")
    if consent.withdrawn_at is None:
        consent.withdrawn_at = clock.now()


def consents_of(*, session: Session, user_id: str) -> list[ConsentPublic]:
    rows = session.scalars(
        select(LevelConsent).where(LevelConsent.user_id == user_id).order_by(LevelConsent.id)
    )
    return [_consent_public(c) for c in rows]


def level_for_partner(*, session: Session, clock: Clock, actor: Actor, consent_id: str) -> Reputation:
    """What a partner may read with a person's consent: their level and badges, nothing else."""
    require(actor, Role.INTEGRATOR)
    consent = session.get(LevelConsent, consent_id)
    if consent is None or consent.partner_id != actor.organisation_id or consent.withdrawn_at is not None:
        raise NotFoundError(f"no consent {consent_id!r} for your organisation")
    return reputation_of(
        session=session, clock=clock, accounts=accounts_of_person(session=session, user_id=consent.user_id)
    )


def _consent_public(consent: LevelConsent) -> ConsentPublic:
    return ConsentPublic(
        id=consent.id,
        partner_id=consent.partner_id,
        granted_at=as_utc(consent.granted_at),
        withdrawn_at=as_utc(consent.withdrawn_at) if consent.withdrawn_at else None,
    )


# --- reconciliation -----------------------------------------------------------------------------------------


def check(*, session: Session) -> list[Finding]:
    """Every running total equals its history: grams credited and bundled per account, points spent;
    no entry bundled beyond its grams. An empty list means all is well."""
    findings: list[Finding] = []
    credited = (
        select(AccountEntry.account_id, func.sum(AccountEntry.grams).label("grams"))
        .group_by(AccountEntry.account_id)
        .subquery()
    )
    bundled = (
        select(BundleTake.account_id, func.sum(BundleTake.grams).label("grams"))
        .group_by(BundleTake.account_id)
        .subquery()
    )
    spent = (
        select(Redemption.account_id, func.sum(Redemption.points).label("points"))
        .group_by(Redemption.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            CarbonAccount.id,
            CarbonAccount.credited_g,
            func.coalesce(credited.c.grams, 0),
            CarbonAccount.bundled_g,
            func.coalesce(bundled.c.grams, 0),
            CarbonAccount.points_spent,
            func.coalesce(spent.c.points, 0),
        )
        .outerjoin(credited, credited.c.account_id == CarbonAccount.id)
        .outerjoin(bundled, bundled.c.account_id == CarbonAccount.id)
        .outerjoin(spent, spent.c.account_id == CarbonAccount.id)
        .where(
            (CarbonAccount.credited_g != func.coalesce(credited.c.grams, 0))
            | (CarbonAccount.bundled_g != func.coalesce(bundled.c.grams, 0))
            | (CarbonAccount.points_spent != func.coalesce(spent.c.points, 0))
        )
        .limit(100)
    ).all()
    for account_id, kept_g, history_g, kept_b, history_b, kept_p, history_p in rows:
        findings.append(
            Finding(
                code="totals_differ",
                message=f"{account_id}: credited {kept_g} vs {history_g} g, bundled {kept_b} vs "
                f"{history_b} g, points spent {kept_p} vs {history_p}",
            )
        )
    over = session.execute(
        select(BundleTake.entry_id)
        .join(AccountEntry, AccountEntry.id == BundleTake.entry_id)
        .group_by(BundleTake.entry_id, AccountEntry.grams)
        .having(func.sum(BundleTake.grams) > AccountEntry.grams)
        .limit(100)
    ).scalars()
    findings.extend(
        Finding(code="bundled_twice", message=f"entry {e} bundled beyond its grams") for e in over
    )
    return findings
