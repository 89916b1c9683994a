"""Carbon accounts on both backends: records kept once, balances and the person's claim, linking a
person's accounts by code, levels through a consent, benefits redeemed once and never below zero,
and the reconciliation of running totals with the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.levels import Badge, Level
from neutralize.accounts.models import AccountEntry, CarbonAccount
from neutralize.core.clock import FixedClock
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate

NOW = datetime(2026, 11, 25, 9, tzinfo=UTC)
CLOCK = FixedClock(NOW)


def partner(session: Session, name: str) -> Actor:
    made = registry.create_organisation(
        session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name=name)
    )
    return Actor(id=f"key-{name}", role=Role.INTEGRATOR, organisation_id=made.id)


def person(session: Session, email: str) -> str:
    cmd = users.SignUp(email=email, password="a long enough password", display_name="Person")
    return users.sign_up(session=session, clock=CLOCK, cmd=cmd, role=Role.MEMBER).id


def keep(session: Session, who: Actor, reference: str, outcomes: list[intake.Credited]) -> int:
    partner_id = who.organisation_id or ""
    return intake.keep(
        session=session, clock=CLOCK, partner_id=partner_id, reference=reference, outcomes=outcomes
    )


def trips(prefix: str, grams: list[int], start: datetime = NOW) -> list[intake.Credited]:
    """Metro trips a day apart, credited ``grams`` each (0 with a code for a rejected one)."""
    return [
        intake.Credited(
            external_id=f"{prefix}-{n}",
            behaviour="public_transport",
            started_at=start - timedelta(days=n),
            ended_at=start - timedelta(days=n) + timedelta(minutes=30),
            measures={"mode": "metro", "distance_km": 10},
            grams=g,
            code=None if g else "speed_implausible",
            methodology="public_transport@1.0.0" if g else None,
            parameters_sha256="0" * 64 if g else None,
        )
        for n, g in enumerate(grams)
    ]


def test_records_are_kept_once_and_balances_follow(session: Session) -> None:
    metro = partner(session, "Metro App")
    assert keep(session, metro, "rider-1", trips("t", [467, 0, 300])) == 3
    again = trips("t", [467, 0, 300]) + trips("u", [1_000])
    assert keep(session, metro, "rider-1", again) == 1
    account = accounts.account_of(session=session, actor=metro, reference="rider-1")
    session.refresh(account)
    shown = accounts.view(account)
    assert (shown.credited_g, shown.claim_g, shown.points) == (1_767, 1_767, 17)
    history = accounts.history(session=session, account=account)
    assert len(history) == 4 and {h.code for h in history} == {None, "speed_implausible"}
    assert accounts.check(session=session) == []
    # another partner cannot see the account; an unknown reference is not found either
    bus = partner(session, "Bus App")
    with pytest.raises(DomainError) as hidden:
        accounts.account_of(session=session, actor=bus, reference="rider-1")
    assert hidden.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(DomainError) as person:
        accounts.account_of(session=session, actor=Actor(id="usr_x", role=Role.MEMBER), account_id=account.id)
    assert person.value.code is ErrorCode.NOT_FOUND


def test_a_person_links_accounts_by_code_and_lets_a_bank_read_the_level(session: Session) -> None:
    metro, freight, bank = (
        partner(session, "Metro"),
        partner(session, "Freight"),
        partner(session, "Green Bank"),
    )
    keep(session, metro, "m-7", trips("m", [400] * 100))
    keep(session, freight, "f-7", trips("f", [30_000]))
    me = person(session, "rider@example.org")
    for who, reference in ((metro, "m-7"), (freight, "f-7")):
        code, expires = accounts.issue_link_code(session=session, clock=CLOCK, actor=who, reference=reference)
        assert expires == CLOCK.now() + accounts.LINK_CODE_TTL and len(code) == accounts.LINK_CODE_LENGTH
        accounts.confirm_link(session=session, clock=CLOCK, user_id=me, code=f" {code.lower()} ")
        with pytest.raises(DomainError) as used:  # a code works once
            accounts.confirm_link(session=session, clock=CLOCK, user_id=me, code=code)
        assert used.value.code is ErrorCode.TOKEN_INVALID
    mine = accounts.accounts_of_person(session=session, user_id=me)
    assert {a.reference for a in mine} == {"m-7", "f-7"}
    level = accounts.reputation_of(session=session, clock=CLOCK, accounts=mine)
    assert level.level is Level.GREEN_COMMUTER  # 70 kg in the last year, over 4 months
    assert Badge.HUNDRED_RIDES in level.badges and Badge.FIRST_REDUCTION in level.badges
    # a bank reads the level only with the person's consent, and not after it is withdrawn
    consent = accounts.grant_consent(
        session=session, clock=CLOCK, user_id=me, partner_id=bank.organisation_id or ""
    )
    assert (
        accounts.level_for_partner(session=session, clock=CLOCK, actor=bank, consent_id=consent.id) == level
    )
    with pytest.raises(DomainError) as other:
        accounts.level_for_partner(session=session, clock=CLOCK, actor=metro, consent_id=consent.id)
    assert other.value.code is ErrorCode.NOT_FOUND
    accounts.withdraw_consent(session=session, clock=CLOCK, user_id=me, consent_id=consent.id)
    with pytest.raises(DomainError):
        accounts.level_for_partner(session=session, clock=CLOCK, actor=bank, consent_id=consent.id)
    # someone else cannot take a linked account; an expired code is refused
    code, _ = accounts.issue_link_code(session=session, clock=CLOCK, actor=metro, reference="m-7")
    with pytest.raises(DomainError) as taken:
        someone = person(session, "someone@example.org")
        accounts.confirm_link(session=session, clock=CLOCK, user_id=someone, code=code)
    assert taken.value.code is ErrorCode.ALREADY_CLAIMED
    late = FixedClock(CLOCK.now() + accounts.LINK_CODE_TTL)
    code, _ = accounts.issue_link_code(session=session, clock=CLOCK, actor=freight, reference="f-7")
    with pytest.raises(DomainError) as expired:
        accounts.confirm_link(session=session, clock=late, user_id=me, code=code)
    assert expired.value.code is ErrorCode.TOKEN_INVALID


def test_benefits_are_redeemed_once_and_points_never_go_negative(session: Session) -> None:
    metro, tyres = partner(session, "Metro Line"), partner(session, "Tyre Maker")
    keep(session, metro, "r", trips("r", [25_050]))  # 250 points
    account = accounts.account_of(session=session, actor=metro, reference="r")
    discount = accounts.publish_benefit(
        session=session,
        clock=CLOCK,
        actor=tyres,
        cmd=accounts.BenefitCreate(title="10% off tyres", points=200, stock=5),
    )
    assert [b.id for b in accounts.benefits(session=session)] == [discount.id]

    def redeem(key: str, benefit: str = discount.id) -> accounts.RedemptionPublic:
        return accounts.redeem(
            session=session,
            clock=CLOCK,
            actor=metro,
            account_id=account.id,
            benefit_id=benefit,
            idempotency_key=key,
        )

    first = redeem("k1")
    assert redeem("k1") == first  # a retry returns the first redemption
    with pytest.raises(DomainError) as short:
        redeem("k2")  # 50 points left
    assert short.value.code is ErrorCode.INSUFFICIENT_POINTS
    cheap = accounts.publish_benefit(
        session=session,
        clock=CLOCK,
        actor=tyres,
        cmd=accounts.BenefitCreate(title="Valve caps", points=10, stock=0),
    )
    with pytest.raises(DomainError) as conflict:
        redeem("k1", cheap.id)
    assert conflict.value.code is ErrorCode.IDEMPOTENCY_CONFLICT
    with pytest.raises(DomainError) as gone:
        redeem("k3", cheap.id)
    assert gone.value.code is ErrorCode.BENEFIT_UNAVAILABLE
    session.refresh(account)
    assert accounts.view(account).points == 50 and accounts.check(session=session) == []
    # the database refuses points spent beyond those earned, whatever the code does
    with pytest.raises((IntegrityError, DBAPIError)), session.begin_nested():
        session.execute(update(CarbonAccount).where(CarbonAccount.id == account.id).values(points_spent=251))


def test_the_history_is_insert_only_and_the_check_finds_drift(session: Session) -> None:
    metro = partner(session, "Metro Drift")
    keep(session, metro, "d", trips("d", [100]))
    with pytest.raises((IntegrityError, DBAPIError)), session.begin_nested():
        session.execute(update(AccountEntry).values(grams=1_000_000))
    with session.begin_nested():
        session.execute(update(CarbonAccount).where(CarbonAccount.reference == "d").values(credited_g=150))
    found = accounts.check(session=session)
    assert [f.code for f in found] == ["totals_differ"] and "150 vs 100" in found[0].message
