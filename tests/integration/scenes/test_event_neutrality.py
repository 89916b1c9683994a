"""An event through the neutrality steps on each database: plan, reduce, account (registration
list, self-reports replacing their estimate, extrapolation, organiser items once each), offset with
eligible credits only (never its own boundary's), evaluate; the claim; the deadline's reminders."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import Actor, Role
from neutralize.access.models import OutboxMessage
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry.models import Project
from neutralize.scenes import events
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.models import EventRegistration
from neutralize.scenes.neutrality import EvaluationKind
from tests.integration.market.conftest import Market, Seller

REGISTRATIONS = """reference,origin,distance_km,mode,nights,hotel_country
R1,PEK,,,2,
R2,Chongqing,300,rail,1,
R3,,,,,
R4,,,,,
R5,Leshan,150,car,0,
"""


@pytest.fixture
def market(session: Session) -> Market:
    return Market(session)


@pytest.fixture
def organiser(session: Session, market: Market) -> Actor:
    user = users.sign_up(
        session=session,
        clock=market.clock,
        role=Role.ORGANISER,
        cmd=users.SignUp(email="forum@example.org", password="a long password", display_name="Forum"),
    )
    return Actor(id=user.id, role=Role.ORGANISER)


def forum(
    session: Session, market: Market, organiser: Actor, slug: str = "green-forum", country: str = "CN"
) -> str:
    scenes.create_scene(
        session=session,
        clock=market.clock,
        actor=organiser,
        cmd=scenes.SceneCreate(
            slug=slug, type=SceneType.CONFERENCE, name="Green Forum", country=country, region="CN-SC"
        ),
    )
    events.record_plan(
        session=session,
        clock=market.clock,
        actor=organiser,
        slug=slug,
        cmd=events.PlanCmd(
            expected_attendees=6,
            expected_kg=3_000,
            reduction_plan="Rail first; vegetarian lunch",
            destination_airport="TFU",
            starts_on=date(2026, 11, 20),
            ends_on=date(2026, 11, 21),
        ),
    )
    return slug


def eligible(session: Session, seller: Seller, **labels: object) -> None:
    """Mark the seller's project as approved carbon-inclusive credits (with any further labels)."""
    project = session.scalars(select(Project).where(Project.code == seller.project.code)).one()
    project.labels = {**project.labels, "carbon_inclusive": True, **labels}
    session.flush()


def state(session: Session, market: Market, slug: str) -> events.Neutrality:
    return events.neutrality(session=session, clock=market.clock, settings=market.settings, slug=slug)


def test_an_event_goes_through_every_step_to_its_claim(
    session: Session, market: Market, organiser: Actor
) -> None:
    slug = forum(session, market, organiser)
    ctx = {"session": session, "clock": market.clock, "actor": organiser, "slug": slug}
    events.add_measure(
        **ctx, cmd=events.MeasureCmd(description="Shuttle buses", evidence="contract BUS-7", saved_kg=120)
    )
    assert events.import_registrations(**ctx, text=REGISTRATIONS) == 5
    # a guest on the list reports by QR (twice), another guest is not on the list
    for _ in range(2):
        scenes.participate(
            session=session,
            clock=market.clock,
            slug=slug,
            registration_ref="R2",
            form={
                "travel_mode": "rail",
                "distance_km": "310",
                "round_trip": "true",
                "nights": "1",
                "meals": "3",
            },
        )
    scenes.participate(session=session, clock=market.clock, slug=slug, form={"nights": "1", "meals": "2"})
    before = state(session, market, slug)
    assert before.counted == {"self_reported": 2, "registration": 2, "extrapolated": 2}
    assert not before.steps[2]["complete"]  # no venue items yet
    events.record_item(
        **ctx, cmd=events.ItemCmd(kind="electricity", qualifier="CN-SC", quantity=Decimal(1_000))
    )
    events.record_item(
        **ctx, cmd=events.ItemCmd(kind="catering", qualifier="vegetarian", quantity=Decimal(300))
    )
    events.record_item(
        **ctx, cmd=events.ItemCmd(kind="catering", qualifier="vegetarian", quantity=Decimal(360))
    )
    events.record_item(
        **ctx,
        cmd=events.ItemCmd(
            kind="declared",
            qualifier="waste",
            quantity=Decimal(40),
            source="Venue waste contractor's statement",
        ),
    )
    now = state(session, market, slug)
    assert [i["key"] for i in now.items] == ["catering:vegetarian", "declared:waste", "electricity:CN-SC"]
    assert now.items[0]["quantity"] == 360  # entered again: replaced, not added
    assert now.steps[2]["complete"] and now.low_kg is not None and now.high_kg is not None
    assert now.low_kg < now.central_kg < now.high_kg  # type: ignore[operator]
    assert now.required_kg >= now.high_kg and now.claim is None
    # offsetting the whole upper bound with eligible credits, paid and certified
    seller = market.native_seller(kg=50_000)
    eligible(session, seller)
    order = events.offset_with_order(
        **ctx,
        settings=market.settings,
        listing_id=seller.listing.id,
        kg=now.required_kg,
        idempotency_key="offset-all-1",
    )
    assert state(session, market, slug).offset_kg == 0  # not paid yet: not counted
    market.notify(order)
    market.fulfil(order)
    paid = state(session, market, slug)
    assert paid.offset_kg == now.required_kg and paid.offsets[0].certificate_number
    assert paid.steps[3]["complete"] and not paid.complete and paid.claim is None
    events.record_evaluation(
        **ctx,
        cmd=events.EvaluationCmd(
            kind=EvaluationKind.THIRD_PARTY, evaluator="Sichuan Verification Centre", reference="SVC-2026-118"
        ),
    )
    done = state(session, market, slug)
    assert done.complete and done.claim is not None and "碳中和" in done.claim["zh"]
    assert f"{done.required_kg:,} kg" in done.claim["en"]


def test_a_bad_registration_list_keeps_the_old_one(
    session: Session, market: Market, organiser: Actor
) -> None:
    slug = forum(session, market, organiser)
    ctx = {"session": session, "clock": market.clock, "actor": organiser, "slug": slug}
    events.import_registrations(**ctx, text=REGISTRATIONS)
    with pytest.raises(DomainError) as refused:
        events.import_registrations(**ctx, text="reference,origin,nights\nX1,PEK,1\nX2,QQQ,1\n")
    assert [(p.row, p.code) for p in refused.value.problems] == [(3, ErrorCode.UNKNOWN_AIRPORT)]
    kept = session.scalars(
        select(EventRegistration.reference).where(EventRegistration.reference.like("R%"))
    ).all()
    assert sorted(kept) == ["R1", "R2", "R3", "R4", "R5"]


def test_ineligible_and_own_boundary_credits_are_refused(
    session: Session, market: Market, organiser: Actor
) -> None:
    slug = forum(session, market, organiser)
    ctx = {
        "session": session,
        "clock": market.clock,
        "actor": organiser,
        "slug": slug,
        "settings": market.settings,
    }
    verra = market.mirrored_listing()
    with pytest.raises(DomainError) as refused:
        events.offset_with_order(**ctx, listing_id=verra.id, kg=100, idempotency_key="verra-1")
    assert refused.value.code is ErrorCode.INSTRUMENT_NOT_ELIGIBLE
    seller = market.native_seller()
    eligible(session, seller, source_scenes=[slug])
    with pytest.raises(DomainError) as own:
        events.offset_with_order(**ctx, listing_id=seller.listing.id, kg=100, idempotency_key="own-1")
    assert own.value.code is ErrorCode.OWN_BOUNDARY_CREDIT
    assert state(session, market, slug).offsets == []


def test_only_the_organiser_changes_an_event(session: Session, market: Market, organiser: Actor) -> None:
    slug = forum(session, market, organiser)
    rival = Actor(id="usr_rival", role=Role.ORGANISER)
    with pytest.raises(DomainError) as hidden:
        events.add_measure(
            session=session,
            clock=market.clock,
            actor=rival,
            slug=slug,
            cmd=events.MeasureCmd(description="x", evidence="y"),
        )
    assert hidden.value.code is ErrorCode.NOT_FOUND
    admin = Actor(id="usr_admin", role=Role.ADMIN)
    events.add_measure(
        session=session,
        clock=market.clock,
        actor=admin,
        slug=slug,
        cmd=events.MeasureCmd(description="LED lighting", evidence="invoice 42"),
    )
    assert len(state(session, market, slug).measures) == 1


def test_allowance_cancellations_count_once_each(session: Session, market: Market, organiser: Actor) -> None:
    slug = forum(session, market, organiser)
    ctx = {"session": session, "clock": market.clock, "actor": organiser, "slug": slug}
    events.record_allowance(**ctx, reference="HBETS-CANCEL-2026-9", tonnes=2)
    with pytest.raises(DomainError) as again:
        events.record_allowance(**ctx, reference="HBETS-CANCEL-2026-9", tonnes=2)
    assert again.value.code is ErrorCode.DUPLICATE
    assert state(session, market, slug).offset_kg == 2_000


def test_an_eu_event_never_gets_neutrality_wording(
    session: Session, market: Market, organiser: Actor
) -> None:
    slug = forum(session, market, organiser, slug="berlin-forum", country="DE")
    refused = state(session, market, slug).claim_refused
    assert refused is not None and "2024/825" in refused


def test_reminders_go_out_90_30_and_7_days_before_the_deadline_once(
    session: Session, market: Market, organiser: Actor
) -> None:
    slug = forum(session, market, organiser)
    deadline = date(2027, 11, 21)
    assert state(session, market, slug).deadline == deadline

    def run(on: date) -> list[tuple[str, int]]:
        market.clock.advance(timedelta(days=(on - market.clock.now().date()).days))
        return events.send_deadline_reminders(session=session, clock=market.clock, settings=market.settings)

    assert run(deadline - timedelta(days=91)) == []
    assert run(deadline - timedelta(days=90)) == [(slug, 90)]
    assert run(deadline - timedelta(days=89)) == []
    assert run(deadline - timedelta(days=30)) == [(slug, 30)]
    assert run(deadline - timedelta(days=7)) == [(slug, 7)]
    assert run(deadline - timedelta(days=6)) == []
    mails = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "forum@example.org")).all()
    assert [m.subject for m in mails] == [f"Offset deadline in {d} days: Green Forum" for d in (90, 30, 7)]
