"""Demo data for ``make run``: organisations, registered projects, issued credits, some retired,
listings at indicative prices, and a few completed orders with certificates (sandbox payments).

Loading is idempotent: if the demo organisations exist, nothing is added.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from decimal import Decimal
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.access.models import User
from neutralize.accounts import bundles as carbon_bundles
from neutralize.accounts import intake
from neutralize.accounts import service as carbon
from neutralize.accounts.ingest import records_frame
from neutralize.accounts.records import Behaviour
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.signing import KeyRing
from neutralize.market import service as market
from neutralize.market.gateways.base import EventKind, GatewayEvent
from neutralize.market.schemas import Beneficiary, ListingCreate, OrderCreate, OrderPublic, QuoteCreate
from neutralize.registry import mirror, service
from neutralize.registry.importers.records import Programme
from neutralize.registry.models import Organisation
from neutralize.registry.schemas import (
    IssueCmd,
    Labels,
    OrganisationCreate,
    ProjectCreate,
    ProjectTransition,
    RetireCmd,
    Units,
    VerificationCreate,
)
from neutralize.scenes import events
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.neutrality import EvaluationKind

PLATFORM = "Neutralize demo platform"
VERIFIER = Actor(id="demo-verifier", role=Role.VERIFIER)
_REPORT = "0" * 63 + "1"

PROJECTS = [
    (
        "Chengdu Green Travel",
        {
            "code": "CDCER-CD-METRO",
            "name": "Chengdu metro and electric bus riders (carbon-inclusive)",
            "standard": "CDCER",
            "methodology": "CDCER public transport",
            "methodology_version": "2.0",
            "project_type": "low-carbon travel",
            "credit_type": "avoidance",
            "nature_based": False,
            "country": "CN",
            "region": "CN-SC",
            "labels": Labels(carbon_inclusive=True),
        },
        (date(2025, 1, 1), date(2025, 12, 31), 250_000),
    ),
    (
        "Sichuan Forestry Co",
        {
            "code": "CN-SC-FOREST-01",
            "name": "Longquan Mountains new forestry carbon sink",
            "standard": "CCER",
            "methodology": "CCER-14-001-V01 afforestation",
            "methodology_version": "1.0",
            "project_type": "afforestation",
            "credit_type": "removal",
            "nature_based": True,
            "country": "CN",
            "region": "CN-SC",
            "buffer_permille": 200,
            "labels": Labels(icvcm_ccp=True),
        },
        (date(2024, 1, 1), date(2024, 12, 31), 500_000),
    ),
    (
        "Guangdong Wind Power",
        {
            "code": "CCER-GD-WIND-LEGACY",
            "name": "Zhanjiang onshore wind farm (legacy CCER)",
            "standard": "CCER",
            "methodology": "CM-001-V02 grid-connected renewables",
            "methodology_version": "2.0",
            "project_type": "onshore wind",
            "credit_type": "avoidance",
            "nature_based": False,
            "country": "CN",
            "region": "CN-GD",
            "labels": Labels(legacy_ccer=True),
        },
        (date(2016, 1, 1), date(2016, 12, 31), 1_000_000),
    ),
]

RETIREMENTS = [
    (
        "CDCER-CD-METRO",
        2025,
        340,
        "Guest at the Tianfu Carbon Neutrality Forum",
        "travel and two hotel nights",
    ),
    ("CDCER-CD-METRO", 2025, 1_250, "Chengdu Eco Hotel", "guest nights, November 2026"),
    ("CN-SC-FOREST-01", 2024, 10_000, "Tianfu Carbon Neutrality Forum 2026", "event footprint"),
]


# Indicative prices per tonne in fen (CNY minor units), in the range seen in 2025: carbon-inclusive
# credits and legacy CCER well below new CCER; Verra avoidance credits at a few dollars.
LISTINGS = [
    ("CDCER-CD-METRO", 2025, 4_500, 100_000),
    ("CN-SC-FOREST-01", 2024, 8_800, 100_000),
    ("CCER-GD-WIND-LEGACY", 2016, 2_500, 200_000),
    ("VCS-1340", 2020, 3_500, 20_000),
]

ORDERS = [
    ("CDCER-CD-METRO", 340, "张伟", "Tianfu Carbon Neutrality Forum: travel and two hotel nights"),
    ("CN-SC-FOREST-01", 1_200, "Tianfu Carbon Neutrality Forum organisers", "Speakers' flights"),
    ("VCS-1340", 520, "Anna Keller", "Flight Frankfurt–Chengdu"),
]


def load(*, session: Session, clock: Clock, settings: Settings, keys: KeyRing) -> bool:
    """Add the demo data unless it is there; returns whether anything was added."""
    if session.scalars(select(Organisation).where(Organisation.name == PLATFORM)).first() is not None:
        return False
    platform = service.create_organisation(
        session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name=PLATFORM)
    )
    holders: dict[str, Actor] = {}
    for owner_name, fields, (start, end, kg) in PROJECTS:
        owner = service.create_organisation(
            session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name=owner_name)
        )
        actor = Actor(id=f"demo-{fields['code']}", role=Role.PROJECT_OWNER, organisation_id=owner.id)
        holders[str(fields["code"])] = actor
        project = service.create_project(
            session=session,
            clock=clock,
            actor=actor,
            cmd=ProjectCreate.model_validate({**fields, "owner_organisation_id": owner.id}),
        )
        for status, who in (("submitted", actor), ("validated", VERIFIER), ("registered", SYSTEM)):
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
            cmd=VerificationCreate(
                project_code=project.code,
                verifier="Demo Verification Centre",
                period_start=start,
                period_end=end,
                verified_kg=kg,
                report_sha256=_REPORT,
            ),
        )
        service.issue(
            session=session,
            clock=clock,
            actor=SYSTEM,
            cmd=IssueCmd(verification_id=verification.id, idempotency_key=f"demo-issue-{project.code}"),
        )
    _mirrored(session, clock)
    for code, vintage, kg, beneficiary, reason in RETIREMENTS:
        service.retire(
            session=session,
            clock=clock,
            actor=holders[code],
            cmd=RetireCmd(
                units=Units(project_code=code, vintage=vintage, quantity_kg=kg),
                beneficiary=beneficiary,
                reason=reason,
                idempotency_key=f"demo-retire-{code}-{beneficiary}",
            ),
        )
    _market(session, clock, settings, keys, holders, platform.id)
    _scenes(session, clock, settings, keys)
    _carbon_accounts(session, clock)
    return True


def _market(
    session: Session,
    clock: Clock,
    settings: Settings,
    keys: KeyRing,
    holders: dict[str, Actor],
    platform_id: str,
) -> None:
    """Listings, and orders paid through the sandbox and completed, each with its certificate."""
    listing_ids = {}
    for code, vintage, price, kg in LISTINGS:
        listing = market.create_listing(
            session=session,
            clock=clock,
            actor=holders.get(code, SYSTEM),
            cmd=ListingCreate(
                project_code=code,
                vintage=vintage,
                price_per_tonne_minor=price,
                available_kg=kg,
                seller_organisation_id=None if code in holders else platform_id,
            ),
        )
        listing_ids[code] = listing.id
    for n, (code, kg, name, reason) in enumerate(ORDERS, start=1):
        quote = market.create_quote(
            session=session,
            clock=clock,
            settings=settings,
            cmd=QuoteCreate(kg=kg, listing_id=listing_ids[code]),
        )
        order = market.create_order(
            session=session,
            clock=clock,
            settings=settings,
            cmd=OrderCreate(
                quote_id=quote.id,
                beneficiary=Beneficiary(display_name=name, reason=reason),
                idempotency_key=f"demo-order-{n:04d}",
            ),
        )
        _pay(session, clock, settings, keys, order, f"demo-event-{n}")


def _mirrored(session: Session, clock: Clock) -> None:
    """Mirrored Verra and Gold Standard public data, and one retirement the platform made at home."""
    data = resources.files("neutralize") / "demo_data"
    for programme, name in (
        (Programme.VERRA, "verra_public_export.csv"),
        (Programme.GOLD_STANDARD, "gold_standard_public_export.csv"),
        (Programme.GOLD_STANDARD, "gold_standard_issuances_export.csv"),  # retirements lie inside
    ):
        mirror.import_export(
            session=session,
            clock=clock,
            actor=SYSTEM,
            programme=programme,
            data=(data / name).read_bytes(),
            filename=name,
        )
    stock = mirror.record_holding(
        session=session,
        clock=clock,
        actor=SYSTEM,
        cmd=mirror.HomeHoldingCreate(
            project_code="VCS-1340",
            home_account="Neutralize demo platform at Verra",
            serial="19385-941467432-941467481-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
            vintage=2020,
            quantity_tonnes=50,
        ),
    )
    mirror.record_retirement(
        session=session,
        clock=clock,
        actor=SYSTEM,
        cmd=mirror.HomeRetirementCreate(
            holding_id=stock.id,
            project_code="VCS-1340",
            home_retirement_id="DEMO-VCS-RETIREMENT-1",
            serial="19385-941467432-941467441-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
            quantity_tonnes=10,
            retired_on=date(2026, 11, 2),
            beneficiary_text="Neutralize demo platform on behalf of its buyers",
        ),
    )
    # its kilograms go to buyers as shares when the demo orders below are fulfilled: no share is made up


# Accounts for trying the platform out (development only: the passwords are public).
DEMO_ACCOUNTS = [
    ("organiser@demo.neutralize.example", "Forum organiser", Role.ORGANISER, "demo-organiser-2026"),
    ("admin@demo.neutralize.example", "Platform operator", Role.ADMIN, "demo-admin-2026"),
    ("member@demo.neutralize.example", "Li Wei", Role.MEMBER, "demo-member-2026"),
    ("partner@demo.neutralize.example", "Metro app operator", Role.INTEGRATOR, "demo-partner-2026"),
]
# Forum guests who take part signed in, for their companies (the organisations' leaderboard).
COMPANIES = {"Chengdu Green Logistics Co.": ["Li Wei", "Wang Fang"], "Sichuan Solar Institute": ["Chen Jie"]}
SCENES = [
    ("tianfu-forum-2026", SceneType.CONFERENCE, "Tianfu Carbon Neutrality Forum 2026", "CN-SC"),
    ("dujiangyan", SceneType.SCENIC_SPOT, "Dujiangyan Irrigation System", "CN-SC"),
    ("jinjiang-hotel", SceneType.HOTEL, "Jinjiang Hotel Chengdu", "CN-SC"),
    ("kuanzhai-kitchen", SceneType.RESTAURANT, "Kuanzhai Alley Kitchen", "CN-SC"),
    ("my-year", SceneType.LIFE, "My carbon footprint this year", "CN-SC"),
]
_AIRPORTS = ["PEK", "PVG", "CAN", "SZX", "XIY", "KMG", "HGH", "WUH", "NKG", "CKG", "HKG", "SIN"]


def _scenes(session: Session, clock: Clock, settings: Settings, keys: KeyRing) -> None:
    """The demo organiser's scenes, and a few dozen forum guests (some of whom offset)."""
    organisation = service.create_organisation(
        session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name="Tianfu Forum Secretariat")
    )
    company_of: dict[str, str] = {}
    for company, names in COMPANIES.items():
        made = service.create_organisation(
            session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name=company)
        )
        company_of |= dict.fromkeys(names, made.id)
    accounts = DEMO_ACCOUNTS + [
        (f"{name.lower().replace(' ', '.')}@demo.neutralize.example", name, Role.MEMBER, "demo-member-2026")
        for name in ("Wang Fang", "Chen Jie")
    ]
    organiser = None
    members = []
    for email, name, role, password in accounts:
        if role is Role.INTEGRATOR:  # the carbon-account partners' operator: see _carbon_accounts
            continue
        home = organisation.id if role is Role.ORGANISER else company_of.get(name)
        user = users.sign_up(
            session=session,
            clock=clock,
            cmd=users.SignUp(email=email, password=password, display_name=name),
            role=role,
            organisation_id=home,
        )
        if role is Role.ORGANISER:
            organiser = Actor(id=user.id, role=role, organisation_id=home)
        elif role is Role.MEMBER:
            members.append(Actor(id=user.id, role=role, organisation_id=home))
    assert organiser is not None
    for slug, kind, name, region in SCENES:
        scenes.create_scene(
            session=session,
            clock=clock,
            actor=organiser,
            cmd=scenes.SceneCreate(slug=slug, type=kind, name=name, country="CN", region=region),
        )
    _forum_plan(session, clock, organiser)
    for n in range(36):
        form = _guest_form(n)
        _footprint, participation = scenes.participate(
            session=session, clock=clock, slug="tianfu-forum-2026", form=form,
            display_name=f"Guest {n + 1}" if n % 3 == 0 else None,
            actor=members[n // 4] if n % 4 == 0 and n // 4 < len(members) else None,
            registration_ref=f"TF-{n + 1:03d}" if n % 2 == 0 else None,
        )  # fmt: skip
        if n % 4 == 0:
            _offset(session, clock, settings, keys, _footprint.id or "", participation, n)
    _salon(session, clock, settings, keys, organiser)


FORUM_DATES = (date(2026, 11, 20), date(2026, 11, 21))
_REDUCTION_PLAN = (
    "Venue on the metro line; shuttle buses from the high-speed rail station; vegetarian lunches by "
    "default; no printed programmes; reusable badges and stage sets."
)
FORUM_MEASURES = [
    ("Shuttle buses from Chengdu East station instead of taxis", "Bus contract TF-BUS-2026-07", 1_800),
    ("Vegetarian lunches by default (meat on request)", "Caterer's menu and order sheet, 20 Nov 2026", 900),
    (
        "Digital programme only; badges collected for reuse",
        "Photo of the badge return box; print order of 0",
        None,
    ),
]
FORUM_ITEMS = [
    events.ItemCmd(kind="electricity", qualifier="CN-SC", quantity=Decimal(6_400)),
    events.ItemCmd(kind="catering", qualifier="vegetarian", quantity=Decimal(180)),
    events.ItemCmd(kind="catering", qualifier="medium_meat", quantity=Decimal(60)),
    events.ItemCmd(kind="fuel", qualifier="diesel", quantity=Decimal(40)),
    events.ItemCmd(kind="declared", qualifier="waste", quantity=Decimal(95),
                   source="Venue waste contractor's statement for 20-21 Nov 2026 (demo figure)"),
]  # fmt: skip
_CITIES = [("CHONGQING", 300, "rail"), ("LESHAN", 150, "car"), ("MIANYANG", 130, "bus")]


def forum_registrations(count: int = 44) -> str:
    """The demo forum's registration list: most fly in, some come by rail, car or coach, and every
    seventh attendee gave no origin (extrapolated)."""
    lines = ["reference,origin,distance_km,mode,nights,hotel_country"]
    for n in range(count):
        ref, nights = f"TF-{n + 1:03d}", 1 + n % 3
        if n % 7 == 6:
            lines.append(f"{ref},,,,,")
        elif n % 5 == 3:
            city, km, mode = _CITIES[n % len(_CITIES)]
            lines.append(f"{ref},{city},{km},{mode},{nights},")
        else:
            lines.append(f"{ref},{_AIRPORTS[n % len(_AIRPORTS)]},,,{nights},{'SG' if n % 11 == 10 else ''}")
    return "\n".join(lines) + "\n"


def _forum_plan(session: Session, clock: Clock, organiser: Actor) -> None:
    """The forum's neutrality in progress: plan, measures, registration list and venue items, no
    offset yet."""
    slug = "tianfu-forum-2026"
    plan = events.PlanCmd(
        expected_attendees=48,
        expected_kg=40_000,
        reduction_plan=_REDUCTION_PLAN,
        destination_airport="TFU",
        starts_on=FORUM_DATES[0],
        ends_on=FORUM_DATES[1],
    )
    events.record_plan(session=session, clock=clock, actor=organiser, slug=slug, cmd=plan)
    for description, evidence, saved in FORUM_MEASURES:
        measure = events.MeasureCmd(description=description, evidence=evidence, saved_kg=saved)
        events.add_measure(session=session, clock=clock, actor=organiser, slug=slug, cmd=measure)
    events.import_registrations(
        session=session, clock=clock, actor=organiser, slug=slug, text=forum_registrations()
    )
    for item in FORUM_ITEMS:
        events.record_item(session=session, clock=clock, actor=organiser, slug=slug, cmd=item)


SALON = "chengdu-green-salon-2026"
SALON_REGISTRATIONS = """reference,origin,distance_km,mode,nights,hotel_country
GS-1,PEK,,,1,
GS-2,CHONGQING,300,rail,1,
GS-3,MIANYANG,130,rail,0,
GS-4,LESHAN,150,rail,0,
GS-5,,,,,
"""


def _salon(session: Session, clock: Clock, settings: Settings, keys: KeyRing, organiser: Actor) -> None:
    """A second, small event taken through every step: offset with new-forestry credits, paid and
    certified, and evaluated by a named third party, so its public page may use neutrality wording."""
    cmd = scenes.SceneCreate(
        slug=SALON, type=SceneType.CONFERENCE, name="Chengdu Green Finance Salon 2026", region="CN-SC"
    )
    scenes.create_scene(session=session, clock=clock, actor=organiser, cmd=cmd)
    plan = events.PlanCmd(
        expected_attendees=6,
        expected_kg=3_000,
        reduction_plan="Metro and rail only; a vegetarian buffet.",
        destination_airport="TFU",
        starts_on=date(2026, 11, 10),
        ends_on=date(2026, 11, 10),
    )
    events.record_plan(session=session, clock=clock, actor=organiser, slug=SALON, cmd=plan)
    measure = events.MeasureCmd(
        description="Venue by a metro station; no car park", evidence="Booking CGF-11"
    )
    events.add_measure(session=session, clock=clock, actor=organiser, slug=SALON, cmd=measure)
    events.import_registrations(
        session=session, clock=clock, actor=organiser, slug=SALON, text=SALON_REGISTRATIONS
    )
    for kind, qualifier, quantity in (("electricity", "CN-SC", 400), ("catering", "vegetarian", 12)):
        item = events.ItemCmd.model_validate({"kind": kind, "qualifier": qualifier, "quantity": quantity})
        events.record_item(session=session, clock=clock, actor=organiser, slug=SALON, cmd=item)
    required = events.neutrality(session=session, clock=clock, settings=settings, slug=SALON).required_kg
    forest = next(x for x in market.list_listings(session=session) if x.project_code == "CN-SC-FOREST-01")
    order = events.offset_with_order(
        session=session,
        clock=clock,
        actor=organiser,
        slug=SALON,
        settings=settings,
        listing_id=forest.id,
        kg=required,
        idempotency_key="demo-salon-offset",
    )
    _pay(session, clock, settings, keys, order, "demo-salon-event")
    evaluation = events.EvaluationCmd(
        kind=EvaluationKind.THIRD_PARTY, evaluator="Demo Verification Centre", reference="DVC-2026-031 (demo)"
    )
    events.record_evaluation(session=session, clock=clock, actor=organiser, slug=SALON, cmd=evaluation)


def _guest_form(n: int) -> dict[str, str]:
    """A forum guest's answers: most fly in, some take the train or drive; 1-3 nights; meals."""
    form = {
        "nights": str(1 + n % 3),
        "meals": str(2 + n % 4),
        "diet": ["medium_meat", "vegetarian", "low_meat"][n % 3],
    }
    if n % 5 == 3:
        return {**form, "travel_mode": "rail", "distance_km": str(300 + 40 * n), "round_trip": "true"}
    if n % 7 == 5:
        return {**form, "travel_mode": "car", "distance_km": str(60 + 5 * n), "round_trip": "true"}
    return {**form, "travel_mode": "flight", "origin": _AIRPORTS[n % len(_AIRPORTS)], "destination": "TFU",
            "round_trip": "true"}  # fmt: skip


def _offset(
    session: Session,
    clock: Clock,
    settings: Settings,
    keys: KeyRing,
    footprint_id: str,
    participation: str,
    n: int,
) -> None:
    quote = market.create_quote(
        session=session, clock=clock, settings=settings, cmd=QuoteCreate(footprint_id=footprint_id)
    )
    order = market.create_order(
        session=session,
        clock=clock,
        settings=settings,
        cmd=OrderCreate(
            quote_id=quote.id,
            beneficiary=Beneficiary(display_name=f"Forum guest {n + 1}"),
            idempotency_key=f"demo-forum-guest-{n:04d}",
        ),
    )
    scenes.link_order(
        session=session, participation_id=participation, order_id=order.id, beneficiary=order.beneficiary_name
    )
    _pay(session, clock, settings, keys, order, f"demo-forum-event-{n}")
    scenes.record_offsets(session=session, order_ids=[order.id])


def _pay(
    session: Session, clock: Clock, settings: Settings, keys: KeyRing, order: OrderPublic, event_id: str
) -> None:
    """The sandbox's notification that the order was paid, then its completion."""
    payment = market.payment_by_ref(
        session=session, gateway="sandbox", provider_ref=order.next_action["url"].rsplit("/", 1)[1]
    )
    event = GatewayEvent(
        event_id=event_id,
        provider_ref=payment.provider_ref,
        kind=EventKind.SUCCEEDED,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )
    market.apply_payment_event(
        session=session, clock=clock, settings=settings, gateway="sandbox", event=event
    )
    market.fulfil(session=session, clock=clock, settings=settings, keys=keys, order_id=order.id)


# --- carbon accounts -----------------------------------------------------------------------------------

PARTNERS = {
    "transit": "Chengdu Metro Riders App",
    "freight": "Sichuan Freight Match",
    "bank": "Tianfu Green Bank",
}
BENEFITS = [
    ("transit", "A free day pass on the metro", 50),
    ("freight", "A free tyre check at a partner garage", 200),
    ("bank", "0.1 % off a green car loan's rate", 300),
]
RIDERS, DRIVERS, DAYS = 240, 80, 30
CHINA = timezone(timedelta(hours=8))


def _carbon_accounts(session: Session, clock: Clock) -> None:
    """A transit and a freight partner with a month of records for a few hundred people, a bank, the
    partners' benefits, the demo member's metro account linked to them, and the first three weeks
    bundled into the carbon-inclusive metro project's credits."""
    partners = {
        kind: Actor(
            id=f"demo-{kind}",
            role=Role.INTEGRATOR,
            organisation_id=service.create_organisation(
                session=session, clock=clock, actor=SYSTEM, cmd=OrganisationCreate(name=name)
            ).id,
        )
        for kind, name in PARTNERS.items()
    }
    email, name, role, password = next(a for a in DEMO_ACCOUNTS if a[2] is Role.INTEGRATOR)
    users.sign_up(
        session=session,
        clock=clock,
        cmd=users.SignUp(email=email, password=password, display_name=name),
        role=role,
        organisation_id=partners["transit"].organisation_id,
    )
    rng = random.Random(20261125)
    today = clock.now().date()
    transit = [
        _trip(rng, f"rider-{n:04d}", f"metro-{n:04d}-{d:02d}-{leg}", today - timedelta(days=d), leg)
        for n in range(1, RIDERS + 1)
        for d in range(1, DAYS + 1)
        if rng.random() < 0.6
        for leg in (0, 1)
    ]
    freight = [
        _haul(rng, f"driver-{n:04d}", f"order-{n:04d}-{d:02d}", today - timedelta(days=d))
        for n in range(1, DRIVERS + 1)
        for d in range(1, DAYS + 1)
        if rng.random() < 0.3
    ]
    for kind, records in (("transit", transit), ("freight", freight)):
        intake.ingest(session=session, clock=clock, actor=partners[kind], raw=records_frame(records))
    for kind, title, points in BENEFITS:
        cmd = carbon.BenefitCreate(title=title, points=points)
        carbon.publish_benefit(session=session, clock=clock, actor=partners[kind], cmd=cmd)
    member = session.scalars(select(User).where(User.email == DEMO_ACCOUNTS[2][0])).one()
    code, _ = carbon.issue_link_code(
        session=session, clock=clock, actor=partners["transit"], reference="rider-0001"
    )
    carbon.confirm_link(session=session, clock=clock, user_id=member.id, code=code)
    scenes.record_reductions(session=session, user_ids=[member.id])
    # The operator bundles the month's first three weeks (ended) into the metro project's credits.
    carbon_bundles.bundle(
        session=session,
        clock=clock,
        actor=SYSTEM,
        cmd=carbon_bundles.BundleCreate(
            project_code="CDCER-CD-METRO",
            period_start=today - timedelta(days=DAYS),
            period_end=today - timedelta(days=DAYS - 20),
            verifier="Demo Verification Centre",
            report_sha256=_REPORT,
            behaviours=[Behaviour.PUBLIC_TRANSPORT],
        ),
    )


def _trip(rng: random.Random, rider: str, external_id: str, day: date, leg: int) -> dict[str, object]:
    """A metro or electric-bus ride to work (leg 0) or home (leg 1), 3-25 km, in China time."""
    start = datetime.combine(day, dt_time(8 if leg == 0 else 18, rng.randrange(60)), CHINA)
    km = round(rng.uniform(3, 25), 1)
    end = start + timedelta(minutes=20 + int(km * 2))
    return {
        "account_ref": rider, "external_id": external_id, "behaviour": "public_transport",
        "mode": "metro" if rng.random() < 0.75 else "electric_bus", "distance_km": km,
        "start_time": start.isoformat(), "end_time": end.isoformat(),
    }  # fmt: skip


def _haul(rng: random.Random, driver: str, external_id: str, day: date) -> dict[str, object]:
    """A matched freight order: 150-600 km loaded, the empty return shortened by the match."""
    start = datetime.combine(day, dt_time(6, rng.randrange(60)), CHINA)
    loaded = rng.randrange(150, 600)
    return {
        "account_ref": driver, "external_id": external_id, "behaviour": "freight_matching",
        "truck_class": rng.choice(["medium_6_8m", "heavy_9_6m", "tractor_13m"]), "loaded_km": loaded,
        "empty_km": rng.randrange(0, loaded // 4), "cargo_tonnes": rng.randrange(5, 30),
        "start_time": start.isoformat(), "end_time": (start + timedelta(hours=loaded / 60 + 1)).isoformat(),
    }  # fmt: skip
