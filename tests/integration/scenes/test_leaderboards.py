"""Leaderboards: reductions before offsets, ties share a rank, names masked unless shown, and "my
rank" from the refreshed ranks or, for a changed row, live."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import FixedClock
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.models import OrganisationTotal, Participation

CLOCK = FixedClock(datetime(2026, 11, 25, 9, tzinfo=UTC))
ORGANISER = Actor(id="usr_organiser", role=Role.ORGANISER)


def guests(session: Session, slug: str, scores: list[tuple[int, int]], names: list[str | None]) -> list[str]:
    scenes.create_scene(
        session=session, clock=CLOCK, actor=ORGANISER,
        cmd=scenes.SceneCreate(slug=slug, type=SceneType.HOTEL, name="Hotel"),
    )  # fmt: skip
    ids = []
    for (reduction_g, offset_kg), name in zip(scores, names, strict=True):
        _fp, pid = scenes.participate(
            session=session, clock=CLOCK, slug=slug, form={"nights": "1"}, display_name=name
        )
        row = session.get(Participation, pid)
        assert row is not None
        row.reduction_g, row.offset_kg = reduction_g, offset_kg
        ids.append(pid)
    session.flush()
    return ids


def test_reductions_rank_before_offsets_and_ties_share_a_rank(session: Session) -> None:
    ids = guests(
        session, "rank-hotel", [(0, 900), (5_000, 0), (0, 300), (0, 300)], ["Big Buyer", None, "张伟", None]
    )
    board = scenes.leaderboard(session=session, slug="rank-hotel")
    assert [(s.rank, s.reduction_g, s.offset_kg) for s in board.top] == [
        (1, 5_000, 0), (2, 0, 900), (3, 0, 300), (3, 0, 300)
    ]  # fmt: skip
    names = {s.name for s in board.top}
    assert "Big Buyer" in names and "张伟" in names and "G*" in names  # unnamed guests are masked
    # my rank outside a top of one: from the ranks refreshed, and live once my offset changed
    scenes.refresh_ranks(session=session)
    mine = scenes.leaderboard(session=session, slug="rank-hotel", me=ids[2], limit=1).me
    assert mine is not None and mine.rank == 3
    row = session.get(Participation, ids[2])
    assert row is not None
    row.offset_kg = 1_000
    session.flush()
    live = scenes.leaderboard(session=session, slug="rank-hotel", me=ids[2], limit=1).me
    assert live is not None and live.rank == 2


def test_a_guest_from_another_scene_has_no_rank_here(session: Session) -> None:
    mine = guests(session, "scene-a", [(0, 1)], [None])
    guests(session, "scene-b", [(0, 2)], [None])
    assert scenes.leaderboard(session=session, slug="scene-b", me=mine[0]).me is None
    overall = scenes.leaderboard(session=session, slug=None, me=mine[0])
    assert overall.me is not None and overall.me.rank == 2


def test_organisations_rank_by_their_signed_in_people(session: Session) -> None:
    made = [
        registry.create_organisation(
            session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name=name)
        )
        for name in ("Cutters Ltd", "Buyers Ltd", "Also Buyers Ltd")
    ]
    scenes.create_scene(
        session=session, clock=CLOCK, actor=ORGANISER,
        cmd=scenes.SceneCreate(slug="org-hotel", type=SceneType.HOTEL, name="Hotel"),
    )  # fmt: skip
    scores = [(0, 0, 400), (0, 0, 500), (1, 2_000, 0), (2, 0, 900), (None, 0, 10_000)]
    for which, reduction_g, offset_kg in scores:  # the last guest is not signed in: no organisation
        member = (
            None
            if which is None
            else Actor(id=f"usr_{which}", role=Role.MEMBER, organisation_id=made[which].id)
        )
        _fp, pid = scenes.participate(
            session=session, clock=CLOCK, slug="org-hotel", form={"nights": "1"}, actor=member
        )
        row = session.get(Participation, pid)
        assert row is not None and row.user_id == (member.id if member else None)
        scenes.set_scores(session=session, row=row, offset_kg=offset_kg, reduction_g=reduction_g)
    session.flush()
    board = scenes.organisation_leaderboard(session=session, slug="org-hotel")
    standings = [(s.rank, s.name, s.participants, s.reduction_g, s.offset_kg) for s in board.top]
    assert standings[0] == (1, "Buyers Ltd", 1, 2_000, 0)  # a cut ranks above any amount bought
    assert sorted(standings[1:]) == [
        (2, "Also Buyers Ltd", 1, 0, 900),
        (2, "Cutters Ltd", 2, 0, 900),
    ]  # a tie
    assert [s.name for s in scenes.organisation_leaderboard(session=session, slug=None).top][:1] == [
        "Buyers Ltd"
    ]
    # the totals kept as people take part and offset are the totals of their participations
    live = session.execute(
        select(Participation.organisation_id, func.count(), func.sum(Participation.offset_kg))
        .where(Participation.organisation_id.is_not(None))
        .group_by(Participation.organisation_id)
    ).all()
    kept = session.execute(
        select(
            OrganisationTotal.organisation_id, OrganisationTotal.participants, OrganisationTotal.offset_kg
        ).where(OrganisationTotal.scope == scenes.ALL_SCENES)
    ).all()
    assert sorted(map(tuple, live)) == sorted(map(tuple, kept)) and len(kept) == 3
