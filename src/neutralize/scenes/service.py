"""Scene use cases: create a scene, take part in it (a guest's footprint), link the guest's offset,
and the organiser's dashboard and participant export. Services never commit."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.service import require
from neutralize.accounts import service as accounts
from neutralize.core.clock import Clock
from neutralize.core.db import add_once
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id
from neutralize.footprint import service as footprints
from neutralize.footprint.schemas import FootprintPublic
from neutralize.market import service as market
from neutralize.registry.models import Organisation
from neutralize.scenes.domain import (
    CATEGORY_OF_TYPE,
    TEMPLATES,
    SceneType,
    activities_from_form,
    check_slug,
    mask_name,
)
from neutralize.scenes.models import OrganisationTotal, Participation, ParticipationRank, Scene

MAX_EXPORT_ROWS = 100_000
ALL_SCENES = "all"  # the scope of an organisation's standing across every scene


class SceneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(min_length=3, max_length=60)
    type: SceneType
    name: str = Field(min_length=1, max_length=200)
    country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
    starts_on: date | None = None
    ends_on: date | None = None


class ScenePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    slug: str
    type: SceneType
    name: str
    country: str
    region: str | None
    starts_on: date | None
    ends_on: date | None
    organiser_id: str
    organisation_id: str | None

    @property
    def sections(self) -> tuple[str, ...]:
        return TEMPLATES[self.type].sections

    @property
    def intro(self) -> str:
        return TEMPLATES[self.type].intro


class Dashboard(BaseModel):
    scene: ScenePublic
    participants: int
    total_kg_co2e: Decimal
    by_category: dict[str, Decimal]
    by_mode: dict[str, Decimal]
    offset_kg: int
    offset_share_percent: Decimal  # of the participants' footprint, whole kilograms offset
    projects: dict[str, int]  # kg offset per project


def create_scene(*, session: Session, clock: Clock, actor: Actor, cmd: SceneCreate) -> ScenePublic:
    """A new scene run by an organiser (or an admin)."""
    require(actor, Role.ORGANISER, Role.ADMIN)
    check_slug(cmd.slug)
    if cmd.starts_on and cmd.ends_on and cmd.ends_on < cmd.starts_on:
        raise DomainError(code=ErrorCode.OUT_OF_RANGE, message="a scene ends on or after the day it starts")
    if session.scalars(select(Scene.id).where(Scene.slug == cmd.slug)).first() is not None:
        raise DomainError(code=ErrorCode.DUPLICATE, message=f"the short name {cmd.slug!r} is taken")
    now = clock.now()
    scene = Scene(
        id=new_id("scn", now),
        slug=cmd.slug,
        type=cmd.type.value,
        name=cmd.name.strip(),
        organiser_id=actor.id,
        organisation_id=actor.organisation_id,
        country=cmd.country,
        region=cmd.region,
        starts_on=cmd.starts_on,
        ends_on=cmd.ends_on,
        created_at=now,
    )
    add_once(  # the same short name asked for a moment ago: the first wins
        session,
        [scene],
        taken=lambda: session.scalars(select(Scene.id).where(Scene.slug == cmd.slug)).first() is not None,
        refusal=DomainError(code=ErrorCode.DUPLICATE, message=f"the short name {cmd.slug!r} is taken"),
    )
    return ScenePublic.model_validate(scene)


def get_scene(*, session: Session, slug: str) -> ScenePublic:
    scene = session.scalars(select(Scene).where(Scene.slug == slug)).first()
    if scene is None:
        raise NotFoundError(f"no scene {slug!r}")
    return ScenePublic.model_validate(scene)


def scenes_of(*, session: Session, actor: Actor) -> list[ScenePublic]:
    """The scenes an organiser runs (an admin sees all)."""
    query = select(Scene).order_by(Scene.created_at.desc())
    if not actor.is_admin:
        query = query.where(Scene.organiser_id == actor.id)
    return [ScenePublic.model_validate(s) for s in session.scalars(query.limit(500))]


def organised_scene(*, session: Session, actor: Actor, slug: str) -> ScenePublic:
    """A scene its organiser (or an admin) may manage; others are told it does not exist."""
    require(actor, Role.ORGANISER, Role.ADMIN)
    scene = get_scene(session=session, slug=slug)
    if not actor.is_admin and scene.organiser_id != actor.id:
        raise NotFoundError(f"no scene {slug!r} of yours")
    return scene


def participate(
    *,
    session: Session,
    clock: Clock,
    slug: str,
    form: Mapping[str, str],
    display_name: str | None = None,
    actor: Actor | None = None,
    registration_ref: str | None = None,
) -> tuple[FootprintPublic, str]:
    """A guest's footprint from the scene's calculator, kept with the scene; returns it and the
    participation's id (which the guest's offset order is linked to). A signed-in guest (``actor``)
    counts for their organisation on the organisations' leaderboards. A guest of an event may give
    their registration reference: their answers then replace the registration list's estimate."""
    scene = get_scene(session=session, slug=slug)
    activities = activities_from_form(scene.type, form, country=scene.country, region=scene.region)
    footprint = footprints.save(
        session=session, clock=clock, footprint=footprints.calculate(activities=activities)
    )
    by_category: Counter[str] = Counter()
    by_mode: Counter[str] = Counter()
    for line in footprint.lines:
        category = CATEGORY_OF_TYPE.get(line.type, "other")
        by_category[category] += line.kg_co2e  # type: ignore[assignment]
        if category == "travel":
            by_mode[line.type] += line.kg_co2e  # type: ignore[assignment]
    now = clock.now()
    participation = Participation(
        id=new_id("par", now),
        scene_id=scene.id,
        footprint_id=footprint.id,
        total_kg_co2e=footprint.total_kg_co2e,
        by_category={k: str(v) for k, v in by_category.items()},
        by_mode={k: str(v) for k, v in by_mode.items()},
        name=display_name.strip()[:200] if display_name else None,
        show_name=bool(display_name),
        user_id=actor.id if actor else None,
        organisation_id=actor.organisation_id if actor else None,
        registration_ref=registration_ref.strip()[:60] or None if registration_ref else None,
        created_at=now,
    )
    session.add(participation)
    session.flush()
    _count_for_organisation(session, participation, participants=1)
    return footprint, participation.id


def link_order(*, session: Session, participation_id: str, order_id: str, beneficiary: str) -> None:
    """Note the order that offsets a participation (the first one; a retry changes nothing). A guest
    who gave no name appears under the beneficiary's name, masked. An order offsets one participation:
    one that another participation counts already is refused (``duplicate``)."""
    if session.get(Participation, participation_id) is None:
        raise NotFoundError(f"no participation {participation_id!r}")
    # One conditional statement: of two orders linked at once, the second finds the first's and
    # changes nothing (PostgreSQL re-checks the condition once the first commits).
    try:
        with session.begin_nested():
            session.execute(
                update(Participation)
                .where(Participation.id == participation_id, Participation.order_id.is_(None))
                .values(order_id=order_id, name=func.coalesce(Participation.name, beneficiary[:200]))
                .execution_options(synchronize_session="fetch")
            )
    except IntegrityError:  # the order's unique key: another participation has it (or took it meanwhile)
        holder = session.scalars(select(Participation.id).where(Participation.order_id == order_id)).first()
        if holder is None or holder == participation_id:
            raise
        raise DomainError(
            code=ErrorCode.DUPLICATE, message=f"order {order_id!r} already offsets another participation"
        ) from None


def dashboard(*, session: Session, actor: Actor, slug: str) -> Dashboard:
    """Participants, footprint by category and by mode, what share is offset and with which projects."""
    scene = organised_scene(session=session, actor=actor, slug=slug)
    rows = list(session.scalars(select(Participation).where(Participation.scene_id == scene.id)))
    by_category: Counter[str] = Counter()
    by_mode: Counter[str] = Counter()
    for row in rows:
        by_category.update({k: Decimal(v) for k, v in row.by_category.items()})
        by_mode.update({k: Decimal(v) for k, v in row.by_mode.items()})
    sold = market.sold_orders(session=session, order_ids=[r.order_id for r in rows if r.order_id])
    projects: Counter[str] = Counter()
    for kg, code in sold.values():
        projects[code] += kg
    total = sum((r.total_kg_co2e for r in rows), Decimal(0))
    offset = sum(projects.values())
    share = (Decimal(offset) * 100 / total).quantize(Decimal("0.1")) if total else Decimal(0)
    return Dashboard(
        scene=scene,
        participants=len(rows),
        total_kg_co2e=total,
        by_category=dict(by_category),
        by_mode=dict(by_mode),
        offset_kg=offset,
        offset_share_percent=min(share, Decimal(100)),
        projects=dict(projects),
    )


def participants_csv(*, session: Session, actor: Actor, slug: str) -> str:
    """The participants as CSV: names only where the guest agreed to show them, masked otherwise."""
    scene = organised_scene(session=session, actor=actor, slug=slug)
    rows = session.scalars(
        select(Participation)
        .where(Participation.scene_id == scene.id)
        .order_by(Participation.created_at)
        .limit(MAX_EXPORT_ROWS)
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["participation", "created_at", "name", "kg_co2e", "travel", "stay", "meals", "energy", "order"]
    )
    for r in rows:
        cat: dict[str, Any] = r.by_category
        writer.writerow(
            [
                r.id,
                r.created_at.isoformat(),
                _shown_name(r),
                r.total_kg_co2e,
                *(cat.get(k, "0") for k in ("travel", "stay", "meals", "energy")),
                r.order_id or "",
            ]
        )
    return out.getvalue()


# --- leaderboards ----------------------------------------------------------------------------------


class Standing(BaseModel):
    rank: int
    name: str  # the name the guest agreed to show, masked otherwise
    reduction_g: int
    offset_kg: int
    me: bool = False


class Leaderboard(BaseModel):
    scene: ScenePublic | None  # None: across every scene
    top: list[Standing]
    me: Standing | None  # the asking guest's own standing, even outside the top


class OrganisationStanding(BaseModel):
    rank: int
    name: str  # organisations are public, as on the registry's pages
    participants: int
    reduction_g: int
    offset_kg: int


class OrganisationBoard(BaseModel):
    scene: ScenePublic | None  # None: across every scene
    top: list[OrganisationStanding]


def record_offsets(*, session: Session, order_ids: Sequence[str]) -> None:
    """Keep on each participation the kilograms its certified order retired (leaderboards rank by it)."""
    sold = market.sold_orders(session=session, order_ids=order_ids)
    if not sold:
        return
    for row in session.scalars(select(Participation).where(Participation.order_id.in_(list(sold)))):
        assert row.order_id is not None
        set_scores(session=session, row=row, offset_kg=sold[row.order_id][0], reduction_g=row.reduction_g)


def record_reductions(*, session: Session, user_ids: Sequence[str]) -> None:
    """Keep on each participation of these people their verified reductions (their own claim, from
    their linked carbon accounts) over the scene's dates, or over all time for a scene without dates:
    the leaderboards rank by them before offsets."""
    if not user_ids:
        return
    rows = session.execute(
        select(Participation, Scene.starts_on, Scene.ends_on)
        .join(Scene, Scene.id == Participation.scene_id)
        .where(Participation.user_id.in_(list(user_ids)))
    ).all()
    for row, starts_on, ends_on in rows:
        assert row.user_id is not None
        since = datetime.combine(starts_on, time.min, UTC) if starts_on else None
        until = datetime.combine(ends_on + timedelta(days=1), time.min, UTC) if ends_on else None
        reduction = accounts.claim_of(session=session, user_id=row.user_id, since=since, until=until)
        set_scores(session=session, row=row, offset_kg=row.offset_kg, reduction_g=reduction)


def set_scores(*, session: Session, row: Participation, offset_kg: int, reduction_g: int) -> None:
    """A participation's offsets (kg retired for it) and verified reductions (g), and the change in
    its organisation's totals: the one way leaderboard scores change."""
    _count_for_organisation(
        session, row, offset_kg=offset_kg - row.offset_kg, reduction_g=reduction_g - row.reduction_g
    )
    row.offset_kg, row.reduction_g = offset_kg, reduction_g


def _count_for_organisation(
    session: Session, row: Participation, *, participants: int = 0, offset_kg: int = 0, reduction_g: int = 0
) -> None:
    """Add a participation's change to its organisation's standings, in its scene and across all: one
    upsert each, so concurrent guests of one organisation add up instead of overwriting each other."""
    if row.organisation_id is None or not (participants or offset_kg or reduction_g):
        return
    dialect = session.get_bind().dialect.name
    upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for scope in (row.scene_id, ALL_SCENES):
        statement = upsert(OrganisationTotal).values(
            scope=scope,
            organisation_id=row.organisation_id,
            participants=participants,
            reduction_g=reduction_g,
            offset_kg=offset_kg,
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["scope", "organisation_id"],
                set_={
                    "participants": OrganisationTotal.participants + participants,
                    "offset_kg": OrganisationTotal.offset_kg + offset_kg,
                    "reduction_g": OrganisationTotal.reduction_g + reduction_g,
                },
            )
        )


def leaderboard(
    *, session: Session, slug: str | None, me: str | None = None, limit: int = 100
) -> Leaderboard:
    """The top participants of a scene (or of all scenes), ranked by verified reductions first and
    offsets second, so that buying is never ranked above cutting; and the asker's own standing."""
    scene = get_scene(session=session, slug=slug) if slug else None
    where = [Participation.scene_id == scene.id] if scene else []
    order = (Participation.reduction_g.desc(), Participation.offset_kg.desc(), Participation.id.desc())
    rows = session.scalars(select(Participation).where(*where).order_by(*order).limit(min(limit, 500))).all()
    top: list[Standing] = []
    rank = 0
    for position, row in enumerate(rows, start=1):  # ties share a rank: 1, 2, 2, 4
        earlier = rows[position - 2] if position > 1 else None
        if earlier is None or (earlier.reduction_g, earlier.offset_kg) != (row.reduction_g, row.offset_kg):
            rank = position
        top.append(_standing(row, rank, me))
    mine = next((s for s in top if s.me), None)
    if mine is None and me:
        asker = session.get(Participation, me)
        if asker is not None and (scene is None or asker.scene_id == scene.id):
            mine = _standing(asker, _my_rank(session, asker, scene.id if scene else None), me)
    return Leaderboard(scene=scene, top=top, me=mine)


def organisation_leaderboard(*, session: Session, slug: str | None, limit: int = 100) -> OrganisationBoard:
    """Organisations by what their signed-in people did in a scene (or in all): their reductions
    first and offsets second, as for people; ties share a rank."""
    scene = get_scene(session=session, slug=slug) if slug else None
    totals = OrganisationTotal
    rows = session.execute(
        select(Organisation.name, totals.participants, totals.reduction_g, totals.offset_kg)
        .join(Organisation, Organisation.id == totals.organisation_id)
        .where(totals.scope == (scene.id if scene else ALL_SCENES))
        .order_by(totals.reduction_g.desc(), totals.offset_kg.desc(), totals.organisation_id)
        .limit(min(limit, 500))
    ).all()
    top: list[OrganisationStanding] = []
    for position, (name, people, reduction_g, offset_kg) in enumerate(rows, start=1):
        earlier = top[-1] if top else None
        tied = earlier is not None and (earlier.reduction_g, earlier.offset_kg) == (reduction_g, offset_kg)
        standing = OrganisationStanding(
            rank=earlier.rank if tied and earlier else position,
            name=name,
            participants=people,
            reduction_g=int(reduction_g or 0),
            offset_kg=int(offset_kg or 0),
        )
        top.append(standing)
    return OrganisationBoard(scene=scene, top=top)


def refresh_ranks(*, session: Session) -> int | None:
    """Rank everyone again, per scene and overall (ties share a rank); returns how many were ranked,
    or None when another process is doing it right now."""
    if session.get_bind().dialect.name == "postgresql":
        busy = not session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext('neutralize.ranks'))"))
        if busy:
            return None
    ordering = (Participation.reduction_g.desc(), Participation.offset_kg.desc())
    ranked = select(
        Participation.id,
        func.rank().over(partition_by=Participation.scene_id, order_by=ordering),
        func.rank().over(order_by=ordering),
        Participation.reduction_g,
        Participation.offset_kg,
    )
    session.execute(delete(ParticipationRank))
    columns = ["participation_id", "scene_rank", "overall_rank", "reduction_g", "offset_kg"]
    session.execute(insert(ParticipationRank).from_select(columns, ranked))
    return int(session.scalar(select(func.count()).select_from(ParticipationRank)) or 0)


def _my_rank(session: Session, row: Participation, scene_id: str | None) -> int:
    cached = session.get(ParticipationRank, row.id)
    if cached is not None and (cached.reduction_g, cached.offset_kg) == (row.reduction_g, row.offset_kg):
        return cached.scene_rank if scene_id else cached.overall_rank
    return _rank(session, row, scene_id)


def _rank(session: Session, row: Participation, scene_id: str | None) -> int:
    """1 + how many stand ahead: more reductions, or as many and more offsets (ties share a rank)."""
    where = [Participation.scene_id == scene_id] if scene_id else []
    ahead = session.scalar(
        select(func.count())
        .select_from(Participation)
        .where(
            *where,
            or_(
                Participation.reduction_g > row.reduction_g,
                and_(Participation.reduction_g == row.reduction_g, Participation.offset_kg > row.offset_kg),
            ),
        )
    )
    return int(ahead or 0) + 1


def _standing(row: Participation, rank: int, me: str | None) -> Standing:
    return Standing(
        rank=rank,
        name=_shown_name(row),
        reduction_g=row.reduction_g,
        offset_kg=row.offset_kg,
        me=row.id == me,
    )


def _shown_name(row: Participation) -> str:
    """The name a guest agreed to show, or their name (or "Guest") masked: 张*, G*."""
    return row.name if row.show_name and row.name else mask_name(row.name or "Guest")


def participation_of_order(*, session: Session, order_id: str) -> tuple[str, str] | None:
    """The scene (its short name) and participation an order offsets, if it came from a scene."""
    row = session.execute(
        select(Scene.slug, Participation.id)
        .join(Scene, Scene.id == Participation.scene_id)
        .where(Participation.order_id == order_id)
    ).first()
    return (row[0], row[1]) if row else None
