"""Event neutrality use cases: an organiser takes an event through the MEE guideline steps (plan,
reduce, account, offset, report and evaluate), and anyone reads where it stands. Only the scene's
organiser (or an admin) changes anything; others are told the scene does not exist. Services never
commit. The rules themselves are pure, in ``scenes/neutrality.py``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import Actor
from neutralize.accounts.models import AccountEntry, Bundle, BundleTake, CarbonAccount
from neutralize.certificates import service as certificates
from neutralize.certificates.domain import word_neutrality_claim
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError, Problem
from neutralize.core.ids import new_id
from neutralize.footprint import service as footprints
from neutralize.footprint.schemas import FootprintLine
from neutralize.market import service as market
from neutralize.market.schemas import Beneficiary, ListingPublic, OrderCreate, OrderPublic, QuoteCreate
from neutralize.registry import service as registry
from neutralize.scenes import neutrality as rules
from neutralize.scenes.domain import DIETS, SceneType
from neutralize.scenes.models import (
    EventEvaluation,
    EventItem,
    EventMeasure,
    EventOffset,
    EventPlan,
    EventRegistration,
    EventReminder,
    Participation,
    Scene,
)
from neutralize.scenes.service import ScenePublic, get_scene, organised_scene

MAX_MEASURES = 200
MAX_ITEMS = 100
MAX_OFFSETS = 200
FUELS = ("diesel", "petrol", "lpg", "natural_gas")
DECLARED = ("materials", "waste")  # no factor in the footprint engine: the organiser's figure and source


class PlanCmd(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expected_attendees: int = Field(ge=1, le=1_000_000)
    expected_kg: int = Field(ge=0, le=10**12)
    reduction_plan: str = Field(min_length=1, max_length=5_000)
    destination_airport: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    starts_on: date
    ends_on: date


class MeasureCmd(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, max_length=500)
    evidence: str = Field(min_length=1, max_length=500, description="a reference, an address or a note")
    saved_kg: int | None = Field(default=None, ge=0, le=10**12)


class ItemCmd(BaseModel):
    """Venue electricity (kWh in a region), catering (meals of one diet), fuel burned on site (litres),
    or materials and waste, for which the footprint engine has no factor: the organiser's own figure
    (kg CO2e) and its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["electricity", "catering", "fuel", "declared"]
    qualifier: str = Field(min_length=1, max_length=20, description="region, diet, fuel, or materials/waste")
    quantity: Decimal = Field(gt=0, le=10**9, allow_inf_nan=False)
    source: str = Field(default="", max_length=500, description="declared items: where the figure comes from")


class EvaluationCmd(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: rules.EvaluationKind
    evaluator: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=500)


class OffsetLine(BaseModel):
    instrument: str
    reference: str
    kg: int
    counted_kg: int  # certified orders and recorded cancellations count; unpaid orders do not
    status: str
    certificate_number: str | None
    project_code: str | None


class Neutrality(BaseModel):
    """Where an event stands on every step, with its bounds, offsets and the claim it may make."""

    scene: ScenePublic
    plan: dict[str, Any] | None
    measures: list[dict[str, Any]]
    registrations: int
    counted: dict[str, int]  # attendees by basis: self_reported, registration, extrapolated
    attendees_kg: Decimal  # measured attendees' travel and stay
    extrapolation: dict[str, Any] | None
    items: list[dict[str, Any]]
    low_kg: Decimal | None
    central_kg: Decimal | None
    high_kg: Decimal | None
    required_kg: int
    offsets: list[OffsetLine]
    offset_kg: int
    deadline: date | None
    days_left: int | None
    evaluation: dict[str, Any] | None
    steps: list[dict[str, Any]]
    complete: bool
    claim: dict[str, str] | None  # the neutrality wording, once every step is complete
    claim_refused: str | None  # why no neutrality wording may be used


def _event(session: Session, actor: Actor, slug: str) -> ScenePublic:
    scene = organised_scene(session=session, actor=actor, slug=slug)
    if scene.type is not SceneType.CONFERENCE:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST, message="event neutrality is for conferences and events"
        )
    return scene


def _event_to_change(session: Session, actor: Actor, slug: str) -> ScenePublic:
    """The event, held until the commit: a step sent again while the first is running (a double
    click, a retry) waits for it and then replaces or finds what it kept, instead of both reading
    "nothing yet" and the second meeting the first's unique key. FOR NO KEY UPDATE leaves guests
    free to take part meanwhile (their rows only share-lock the scene's key)."""
    scene = _event(session, actor, slug)
    session.execute(select(Scene.id).where(Scene.id == scene.id).with_for_update(key_share=True))
    return scene


def record_plan(*, session: Session, clock: Clock, actor: Actor, slug: str, cmd: PlanCmd) -> None:
    """Step 1: the plan (again: it replaces the earlier one), and the event's dates."""
    scene = _event_to_change(session, actor, slug)
    if cmd.ends_on < cmd.starts_on:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message="an event ends on or after the day it starts")
    row = session.get(EventPlan, scene.id) or EventPlan(scene_id=scene.id)
    row.expected_attendees, row.expected_kg = cmd.expected_attendees, cmd.expected_kg
    row.reduction_plan, row.destination_airport = cmd.reduction_plan.strip(), cmd.destination_airport
    row.recorded_by, row.recorded_at = actor.id, clock.now()
    session.add(row)
    stored = session.get(Scene, scene.id)
    assert stored is not None
    stored.starts_on, stored.ends_on = cmd.starts_on, cmd.ends_on
    session.flush()


def add_measure(*, session: Session, clock: Clock, actor: Actor, slug: str, cmd: MeasureCmd) -> None:
    """Step 2: a reduction measure with its evidence."""
    scene = _event_to_change(session, actor, slug)
    if len(_measures(session, scene.id)) >= MAX_MEASURES:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"at most {MAX_MEASURES} measures")
    now = clock.now()
    session.add(
        EventMeasure(
            id=new_id("msr", now),
            scene_id=scene.id,
            description=cmd.description.strip(),
            evidence=cmd.evidence.strip(),
            saved_kg=cmd.saved_kg,
            recorded_by=actor.id,
            recorded_at=now,
        )
    )
    session.flush()


def import_registrations(*, session: Session, clock: Clock, actor: Actor, slug: str, text: str) -> int:
    """Step 3a: the registration list (CSV), replacing the earlier one. Every row is checked and
    estimated first; one bad row refuses the whole list, each problem with its line number."""
    scene = _event_to_change(session, actor, slug)
    rows = rules.parse_registrations(text)
    plan = session.get(EventPlan, scene.id)
    airport = plan.destination_airport if plan else None
    activities: list[dict[str, Any]] = []
    owner: list[int] = []  # activity index → position in rows
    problems: list[Problem] = []
    for position, row in enumerate(rows):
        try:
            mine = rules.registration_activities(row, destination_airport=airport, country=scene.country)
        except DomainError as bad:
            problems.append(Problem(bad.code, bad.message, bad.problems[0].field, row=row.row))
            continue
        activities += mine
        owner += [position] * len(mine)
    kg: dict[int, Decimal] = {}
    if activities and not problems:
        kg = _estimates(activities, owner, rows)
    if problems:
        raise DomainError(
            code=problems[0].code,
            message=f"{len(problems)} rows need fixing; nothing was imported",
            problems=problems,
        )
    now = clock.now()
    session.execute(delete(EventRegistration).where(EventRegistration.scene_id == scene.id))
    for position, row in enumerate(rows):
        mine = [a for a, p in zip(activities, owner, strict=True) if p == position]
        session.add(
            EventRegistration(
                id=new_id("reg", now),
                scene_id=scene.id,
                reference=row.reference,
                row_number=row.row,
                activities=mine,
                kg_co2e=kg.get(position),
                recorded_at=now,
            )
        )
    session.flush()
    return len(rows)


def _estimates(
    activities: list[dict[str, Any]], owner: list[int], rows: Sequence[rules.Registration]
) -> dict[int, Decimal]:
    """Each registration's travel and stay from the footprint engine; its problems name the CSV line."""
    try:
        footprint = footprints.calculate(activities=activities)
    except DomainError as bad:
        problems = [
            Problem(
                p.code, p.message, p.field, p.hint, row=rows[owner[p.row]].row if p.row is not None else None
            )
            for p in bad.problems
        ]
        raise DomainError(
            code=bad.code,
            message=f"{len(problems)} rows need fixing; nothing was imported",
            problems=problems,
        ) from None
    kg: dict[int, Decimal] = {}
    for line in footprint.lines:
        kg[owner[line.index]] = kg.get(owner[line.index], Decimal(0)) + line.kg_co2e
    return kg


def record_item(*, session: Session, clock: Clock, actor: Actor, slug: str, cmd: ItemCmd) -> None:
    """Step 3d: an item the organiser entered, once per key (entering it again replaces it)."""
    scene = _event_to_change(session, actor, slug)
    key, unit, activity = _item_activity(cmd)
    if activity is None:
        if not cmd.source.strip():
            raise DomainError(
                code=ErrorCode.MISSING_FIELD,
                message="the footprint engine has no factor for materials or waste: give the figure's source",
            )
        kg = low = high = cmd.quantity
        source = f"declared by the organiser: {cmd.source.strip()}"
    else:
        line = footprints.calculate(activities=[activity]).lines[0]
        kg, low, high = _line_bounds(line)
        factor = line.factor
        source = f"{factor.factor_set} {factor.id}: {factor.activity}, {factor.value} {factor.unit}"[:500]
    row = session.scalars(
        select(EventItem).where(EventItem.scene_id == scene.id, EventItem.key == key)
    ).first()
    if row is None:
        if len(_items(session, scene.id)) >= MAX_ITEMS:
            raise DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"at most {MAX_ITEMS} items")
        row = EventItem(id=new_id("itm", clock.now()), scene_id=scene.id, key=key)
        session.add(row)
    row.kind, row.quantity, row.unit, row.source = cmd.kind, cmd.quantity, unit, source
    row.kg_co2e, row.low_kg_co2e, row.high_kg_co2e = kg, low, high
    row.recorded_by, row.recorded_at = actor.id, clock.now()
    session.flush()


def _item_activity(cmd: ItemCmd) -> tuple[str, str, dict[str, Any] | None]:
    """The item's unique key, its unit, and the footprint activity it is (None: declared)."""
    q = str(cmd.quantity)
    if cmd.kind == "electricity":
        region = cmd.qualifier.upper()
        return f"electricity:{region}", "kWh", {"type": "electricity", "region": region, "kwh": q}
    if cmd.kind == "catering":
        _one_of(cmd.qualifier, DIETS, "diet")
        return f"catering:{cmd.qualifier}", "meals", {"type": "meal", "diet": cmd.qualifier, "count": q}
    if cmd.kind == "fuel":
        _one_of(cmd.qualifier, FUELS, "fuel")
        return f"fuel:{cmd.qualifier}", "litres", {"type": "fuel", "fuel": cmd.qualifier, "litres": q}
    _one_of(cmd.qualifier, DECLARED, "declared item")
    return f"declared:{cmd.qualifier}", "kg CO2e", None


def _one_of(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise DomainError(code=ErrorCode.UNKNOWN_VALUE, message=f"{what} is one of {', '.join(allowed)}")


def _line_bounds(line: FootprintLine) -> tuple[Decimal, Decimal, Decimal]:
    if line.uncertainty is None:
        return line.kg_co2e, line.kg_co2e, line.kg_co2e
    return line.kg_co2e, line.uncertainty.low_kg_co2e, line.uncertainty.high_kg_co2e


def offset_with_order(
    *,
    session: Session,
    clock: Clock,
    settings: Settings,
    actor: Actor,
    slug: str,
    listing_id: str,
    kg: int,
    idempotency_key: str,
) -> OrderPublic:
    """Step 4: order ``kg`` from a listing for the event. Only eligible instruments from outside the
    event's own boundary are accepted; the order counts once its credits are retired."""
    scene = _event_to_change(session, actor, slug)
    earlier = session.scalars(
        select(EventOffset).where(
            EventOffset.scene_id == scene.id, EventOffset.reference == f"key:{idempotency_key}"
        )
    ).first()
    if earlier is not None and earlier.order_id is not None:  # a double submit: the first order
        return market.order_public(session=session, order_id=earlier.order_id)
    listing = market.get_listing(session=session, listing_id=listing_id)
    project = registry.get_project(session=session, code=listing.project_code)
    instrument = rules.check_offset_credit(_origin(session, project.model_dump()), (scene.id, scene.slug))
    if len(_offsets(session, scene.id)) >= MAX_OFFSETS:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message=f"at most {MAX_OFFSETS} offsets")
    quote = market.create_quote(
        session=session, clock=clock, settings=settings, cmd=QuoteCreate(kg=kg, listing_id=listing_id)
    )
    order = market.create_order(
        session=session,
        clock=clock,
        settings=settings,
        cmd=OrderCreate(
            quote_id=quote.id,
            beneficiary=Beneficiary(display_name=scene.name, reason=f"The footprint of {scene.name}"),
            idempotency_key=f"event-{scene.id}-{idempotency_key}",
        ),
    )
    now = clock.now()
    session.add(
        EventOffset(
            id=new_id("eof", now),
            scene_id=scene.id,
            instrument=instrument.value,
            order_id=order.id,
            reference=f"key:{idempotency_key}",
            kg=order.kg,
            recorded_by=actor.id,
            recorded_at=now,
        )
    )
    session.flush()
    return order


class EventListing(BaseModel):
    listing: ListingPublic
    instrument: str | None  # None: may not offset this event
    refused: str | None  # why not, with the rule's code
    refused_code: str | None


def event_listings(*, session: Session, actor: Actor, slug: str) -> list[EventListing]:
    """The listings on offer, each with whether it may offset this event and, if not, why."""
    scene = _event(session, actor, slug)
    result = []
    for listing in market.list_listings(session=session):
        project = registry.get_project(session=session, code=listing.project_code)
        try:
            instrument = rules.check_offset_credit(
                _origin(session, project.model_dump()), (scene.id, scene.slug)
            )
        except DomainError as refused:
            result.append(
                EventListing(
                    listing=listing, instrument=None, refused=refused.message, refused_code=refused.code.value
                )
            )
            continue
        result.append(
            EventListing(listing=listing, instrument=instrument.value, refused=None, refused_code=None)
        )
    return result


def _origin(session: Session, project: Mapping[str, Any]) -> rules.CreditOrigin:
    """A project's origin: the event boundaries its reductions came from are those its labels declare
    (``source_scenes``) and those of its bundled carbon-account grams (``bundled_scenes``)."""
    labels: Mapping[str, Any] = project["labels"]
    declared = {str(s) for s in labels.get("source_scenes") or ()}
    return rules.CreditOrigin(
        standard=project["standard"],
        project_type=project["project_type"],
        credit_type=project["credit_type"],
        nature_based=project["nature_based"],
        country=project["country"],
        carbon_inclusive=bool(labels.get("carbon_inclusive")),
        source_scenes=frozenset(declared | bundled_scenes(session=session, project_id=project["id"])),
    )


def bundled_scenes(*, session: Session, project_id: str) -> set[str]:
    """The events (ids and short names) inside whose boundary some of the project's bundled grams were
    made: grams of a person who took part in the event signed in, credited for behaviour during the
    event's dates (their low-carbon travel to it, above all)."""
    rows = session.execute(
        select(Scene.id, Scene.slug)
        .distinct()
        .join(Participation, Participation.scene_id == Scene.id)
        .join(CarbonAccount, CarbonAccount.user_id == Participation.user_id)
        .join(BundleTake, BundleTake.account_id == CarbonAccount.id)
        .join(Bundle, Bundle.id == BundleTake.bundle_id)
        .join(AccountEntry, AccountEntry.id == BundleTake.entry_id)
        .where(
            Bundle.project_id == project_id,
            Scene.starts_on.is_not(None),
            Scene.ends_on.is_not(None),
            func.date(AccountEntry.started_at) >= Scene.starts_on,
            func.date(AccountEntry.started_at) <= Scene.ends_on,
        )
    )
    return {name for scene_id, slug in rows for name in (scene_id, slug)}


def record_allowance(
    *, session: Session, clock: Clock, actor: Actor, slug: str, reference: str, tonnes: int
) -> None:
    """Step 4: allowances cancelled elsewhere (e.g. at an emissions-trading registry) for the event,
    recorded as evidence with the cancellation's reference; each reference once."""
    scene = _event_to_change(session, actor, slug)
    reference = reference.strip()
    if not reference or len(reference) > 120 or not 0 < tonnes <= 10**7:
        raise DomainError(
            code=ErrorCode.OUT_OF_RANGE, message="a reference (≤ 120 characters) and 1-10,000,000 t"
        )
    now = clock.now()
    try:
        with session.begin_nested():
            session.add(
                EventOffset(
                    id=new_id("eof", now),
                    scene_id=scene.id,
                    instrument=rules.Instrument.ALLOWANCE.value,
                    order_id=None,
                    reference=reference,
                    kg=tonnes * 1_000,
                    recorded_by=actor.id,
                    recorded_at=now,
                )
            )
    except IntegrityError:
        raise DomainError(
            code=ErrorCode.DUPLICATE, message=f"cancellation {reference!r} is recorded already"
        ) from None


def record_evaluation(*, session: Session, clock: Clock, actor: Actor, slug: str, cmd: EvaluationCmd) -> None:
    """Step 5: who evaluated the event's neutrality (again: it replaces the earlier record)."""
    scene = _event_to_change(session, actor, slug)
    row = session.get(EventEvaluation, scene.id) or EventEvaluation(scene_id=scene.id)
    row.kind, row.evaluator, row.reference = cmd.kind.value, cmd.evaluator.strip(), cmd.reference.strip()
    row.recorded_by, row.recorded_at = actor.id, clock.now()
    session.add(row)
    session.flush()


# --- reading ---------------------------------------------------------------------------------------


def organised_neutrality(
    *, session: Session, clock: Clock, settings: Settings, actor: Actor, slug: str
) -> Neutrality:
    """The organiser's view (only they and admins may open it)."""
    _event(session, actor, slug)
    return neutrality(session=session, clock=clock, settings=settings, slug=slug)


def neutrality(*, session: Session, clock: Clock, settings: Settings, slug: str) -> Neutrality:
    """Where an event stands on every step: public (no attendee is named)."""
    scene = get_scene(session=session, slug=slug)
    if scene.type is not SceneType.CONFERENCE:
        raise NotFoundError(f"no event {slug!r}")
    plan = session.get(EventPlan, scene.id)
    measures = _measures(session, scene.id)
    registrations = {
        r.reference: r.kg_co2e
        for r in session.scalars(select(EventRegistration).where(EventRegistration.scene_id == scene.id))
    }
    attendance = rules.count_attendees(registrations, _self_reports(session, scene.id))
    extrapolation = rules.extrapolate(attendance.respondent_kg, attendance.non_respondents)
    items = _items(session, scene.id)
    figures = [rules.ItemFigures(i.kg_co2e, i.low_kg_co2e, i.high_kg_co2e) for i in items]
    ready, note = _account_state(attendance, extrapolation, items)
    limits = rules.bounds(attendance, extrapolation, figures) if ready and extrapolation else None
    required = limits.upper_whole_kg if limits else 0
    offsets = _offset_lines(session, scene.id)
    offset_kg = sum(o.counted_kg for o in offsets)
    evaluation = session.get(EventEvaluation, scene.id)
    status = rules.steps(
        planned=plan is not None,
        measures=len(measures),
        account_ready=ready,
        account_note=note,
        offset_kg=offset_kg,
        required_kg=required,
        evaluated=evaluation is not None,
    )
    complete = all(s.complete for s in status)
    claim, refused = _claim(scene, required, complete)
    deadline = (
        rules.offset_deadline(scene.ends_on, settings.event_offset_deadline_months) if scene.ends_on else None
    )
    basis = {b.value: sum(1 for c in attendance.counted if c.basis is b) for b in rules.Basis}
    basis[rules.Basis.EXTRAPOLATED.value] = attendance.non_respondents
    return Neutrality(
        scene=scene,
        plan=_plan_dict(plan),
        measures=[
            {
                "description": m.description,
                "evidence": m.evidence,
                "saved_kg": m.saved_kg,
                "recorded_at": m.recorded_at,
            }
            for m in measures
        ],
        registrations=len(registrations),
        counted=basis,
        attendees_kg=attendance.measured_kg,
        extrapolation=None
        if extrapolation is None
        else {
            "method": "mean per respondent × non-respondents; bounds: the mean's 95 % confidence interval",
            "respondents": extrapolation.respondents,
            "non_respondents": extrapolation.non_respondents,
            "mean_kg": extrapolation.mean_kg,
            "low_kg": extrapolation.low_kg,
            "central_kg": extrapolation.central_kg,
            "high_kg": extrapolation.high_kg,
        },
        items=[
            {
                "key": i.key,
                "kind": i.kind,
                "quantity": i.quantity,
                "unit": i.unit,
                "kg": i.kg_co2e,
                "low_kg": i.low_kg_co2e,
                "high_kg": i.high_kg_co2e,
                "source": i.source,
            }
            for i in items
        ],
        low_kg=limits.low_kg if limits else None,
        central_kg=limits.central_kg if limits else None,
        high_kg=limits.high_kg if limits else None,
        required_kg=required,
        offsets=offsets,
        offset_kg=offset_kg,
        deadline=deadline,
        days_left=(deadline - clock.now().date()).days if deadline else None,
        evaluation=None
        if evaluation is None
        else {
            "kind": evaluation.kind,
            "evaluator": evaluation.evaluator,
            "reference": evaluation.reference,
            "recorded_at": evaluation.recorded_at,
        },
        steps=[{"step": s.step.value, "complete": s.complete, "note": s.note} for s in status],
        complete=complete,
        claim=claim,
        claim_refused=refused,
    )


def _account_state(
    attendance: rules.Attendance, extrapolation: rules.Extrapolation | None, items: Sequence[EventItem]
) -> tuple[bool, str]:
    if not attendance.counted:
        return False, "no attendees counted yet: upload the registration list or wait for self-reports"
    if extrapolation is None:
        return (
            False,
            f"{attendance.non_respondents} non-respondents but fewer than two respondents to "
            "extrapolate from",
        )
    if not items:
        return False, "no venue, catering, materials or waste items entered yet"
    return (
        True,
        f"{len(attendance.counted)} attendees measured, {attendance.non_respondents} extrapolated, "
        f"{len(items)} items",
    )


def _claim(scene: ScenePublic, kg: int, complete: bool) -> tuple[dict[str, str] | None, str | None]:
    try:
        worded = word_neutrality_claim(
            certificates.claims_policy(),
            jurisdiction=rules.jurisdiction_of(scene.country),
            subject=scene.name,
            kg=kg,
            steps_completed=complete,
        )
    except DomainError as refused:
        return None, refused.message
    return worded, None


def _plan_dict(plan: EventPlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "expected_attendees": plan.expected_attendees,
        "expected_kg": plan.expected_kg,
        "reduction_plan": plan.reduction_plan,
        "destination_airport": plan.destination_airport,
        "recorded_by": plan.recorded_by,
        "recorded_at": plan.recorded_at,
    }


def _self_reports(session: Session, scene_id: str) -> list[rules.SelfReport]:
    """Guests' QR answers, oldest first: travel and stay only (meals are the caterer's item)."""
    rows = session.execute(
        select(Participation.id, Participation.registration_ref, Participation.by_category)
        .where(Participation.scene_id == scene_id)
        .order_by(Participation.created_at, Participation.id)
    ).all()
    return [
        rules.SelfReport(pid, ref, Decimal(cat.get("travel", "0")) + Decimal(cat.get("stay", "0")))
        for pid, ref, cat in rows
    ]


def _measures(session: Session, scene_id: str) -> list[EventMeasure]:
    query = select(EventMeasure).where(EventMeasure.scene_id == scene_id).order_by(EventMeasure.recorded_at)
    return list(session.scalars(query.limit(MAX_MEASURES)))


def _items(session: Session, scene_id: str) -> list[EventItem]:
    return list(
        session.scalars(select(EventItem).where(EventItem.scene_id == scene_id).order_by(EventItem.key))
    )


def _offsets(session: Session, scene_id: str) -> list[EventOffset]:
    query = select(EventOffset).where(EventOffset.scene_id == scene_id).order_by(EventOffset.recorded_at)
    return list(session.scalars(query.limit(MAX_OFFSETS)))


def _offset_lines(session: Session, scene_id: str) -> list[OffsetLine]:
    rows = _offsets(session, scene_id)
    sold = market.sold_orders(session=session, order_ids=[r.order_id for r in rows if r.order_id])
    lines = []
    for row in rows:
        if row.order_id is None:
            lines.append(
                OffsetLine(
                    instrument=row.instrument,
                    reference=row.reference,
                    kg=row.kg,
                    counted_kg=row.kg,
                    status="recorded",
                    certificate_number=None,
                    project_code=None,
                )
            )
            continue
        order = market.order_public(session=session, order_id=row.order_id)
        counted = sold[row.order_id][0] if row.order_id in sold else 0
        lines.append(
            OffsetLine(
                instrument=row.instrument,
                reference=order.id,
                kg=order.kg,
                counted_kg=counted,
                status=order.status,
                certificate_number=order.certificate_number,
                project_code=order.project_code,
            )
        )
    return lines


# --- the offset deadline's reminders ----------------------------------------------------------------


def send_deadline_reminders(*, session: Session, clock: Clock, settings: Settings) -> list[tuple[str, int]]:
    """E-mail each organiser whose event is not yet fully offset 90, 30 and 7 days before its offset
    deadline, each reminder once (the periodic job calls this); returns (scene, days) sent."""
    today = clock.now().date()
    sent: list[tuple[str, int]] = []
    events = session.scalars(
        select(Scene).join(EventPlan, EventPlan.scene_id == Scene.id).where(Scene.ends_on.is_not(None))
    )
    for scene in list(events):
        assert scene.ends_on is not None
        deadline = rules.offset_deadline(scene.ends_on, settings.event_offset_deadline_months)
        done = session.scalars(
            select(EventReminder.days_before).where(EventReminder.scene_id == scene.id)
        ).all()
        days = rules.due_reminder(deadline, today, done)
        if days is None:
            continue
        state = neutrality(session=session, clock=clock, settings=settings, slug=scene.slug)
        if state.steps[3]["complete"]:
            continue
        try:
            with session.begin_nested():
                session.add(EventReminder(scene_id=scene.id, days_before=days, sent_at=clock.now()))
        except IntegrityError:  # another process sent this one a moment ago
            continue
        _remind(session, clock, settings, scene, state, deadline)
        sent.append((scene.slug, days))
    return sent


def _remind(
    session: Session, clock: Clock, settings: Settings, scene: Scene, state: Neutrality, deadline: date
) -> None:
    to = users.email_of(session=session, user_id=scene.organiser_id)
    if to is None:
        return
    link = f"{settings.public_url.rstrip('/')}/organiser/scenes/{scene.slug}/neutrality"
    body = (
        f"{scene.name} is to be offset by {deadline.isoformat()} ({state.days_left} days left): "
        f"{state.offset_kg:,} of {state.required_kg:,} kg CO2e are offset so far.\n\n{link}\n"
    )
    users.send_mail(
        session=session,
        clock=clock,
        settings=settings,
        to=to,
        subject=f"Offset deadline in {state.days_left} days: {scene.name}",
        body=body,
    )
