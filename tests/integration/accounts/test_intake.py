"""Taking in partners' records on both backends: credited column-wise and kept once, re-sending
changes nothing, refused rows keep their codes, and what earlier uploads credited still counts for
overlaps (across a person's linked partners) and daily caps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.accounts.ingest import records_frame
from neutralize.accounts.models import AccountEntry
from neutralize.core.clock import FixedClock
from neutralize.registry import service as registry
from neutralize.registry.schemas import OrganisationCreate
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.models import Participation
from tests.unit.accounts.helpers import record

CLOCK = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))
METRO_G = 467  # 10 km at Shenzhen's published 46.7 g per passenger-km, rounded down


def partner(session: Session, name: str) -> Actor:
    made = registry.create_organisation(
        session=session, clock=CLOCK, actor=SYSTEM, cmd=OrganisationCreate(name=name)
    )
    return Actor(id=f"key-{name}", role=Role.INTEGRATOR, organisation_id=made.id)


def take(session: Session, who: Actor, records: list[Any]) -> intake.IngestReport:
    return intake.ingest(session=session, clock=CLOCK, actor=who, raw=records_frame(records))


def test_records_are_credited_kept_once_and_refusals_keep_their_codes(session: Session) -> None:
    metro = partner(session, "Metro")
    sent = [
        record(account_ref="rider-1", external_id="t-1", partner="someone-else"),  # the key decides
        record(account_ref="rider-1", external_id="t-2", start_time="2026-03-03T08:00:00+08:00",
               end_time="2026-03-03T09:00:00+08:00"),
        record(account_ref="rider-2", external_id="t-3", mode="hovercraft"),  # refused
        record(account_ref="rider-2", external_id="t-3"),  # the same id, valid: this one is kept
        record(account_ref="rider-2", external_id="t-4", mode="hovercraft"),  # kept, refused
            record(account_ref="rider-1", external_id="t-1"),  # row 1's id again: a duplicate
        {"account_ref": "rider-3", "behaviour": "public_transport"},  # no id: reported only
    ]  # fmt: skip
    report = take(session, metro, sent)
    assert (report.received, report.credited, report.grams) == (7, 3, 3 * METRO_G)
    assert [(p.row, p.code) for p in report.problems] == [
        (3, "unknown_value"), (5, "unknown_value"), (6, "duplicate_record"), (7, "missing_field")
    ]  # fmt: skip
    one = accounts.account_of(session=session, actor=metro, reference="rider-1")
    two = accounts.account_of(session=session, actor=metro, reference="rider-2")
    assert (one.credited_g, two.credited_g) == (2 * METRO_G, METRO_G)
    assert [(h.external_id, h.grams, h.code) for h in accounts.history(session=session, account=two)] == [
        ("t-4", 0, "unknown_value"), ("t-3", METRO_G, None)
    ]  # fmt: skip
    entry = session.scalars(select(AccountEntry).where(AccountEntry.external_id == "t-1")).one()
    assert entry.methodology == "public_transport_shenzhen@1.0.0" and entry.distance_m == 10_000
    assert entry.measures == {"mode": "metro", "distance_km": "10"}
    # re-sending the file changes nothing
    again = take(session, metro, sent)
    assert (again.already_received, again.credited, again.grams) == (6, 0, 0)
    session.refresh(one)
    assert one.credited_g == 2 * METRO_G
    assert session.scalar(select(func.count()).select_from(AccountEntry)) == 4
    assert accounts.check(session=session) == []


def test_linked_partners_count_a_behaviour_once_and_caps_span_uploads(session: Session) -> None:
    metro, bus = partner(session, "Metro Two"), partner(session, "Bus Two")
    take(session, metro, [record(account_ref="m-1", external_id="m-1")])
    take(session, bus, [record(account_ref="b-1", external_id="b-0", start_time="2026-02-01T08:00:00+08:00",
                                end_time="2026-02-01T09:00:00+08:00")])  # fmt: skip
    cmd = users.SignUp(email="rider@example.org", password="a long enough password", display_name="Rider")
    person = users.sign_up(session=session, clock=CLOCK, cmd=cmd, role=Role.MEMBER).id
    for who, reference in ((metro, "m-1"), (bus, "b-1")):
        code, _ = accounts.issue_link_code(session=session, clock=CLOCK, actor=who, reference=reference)
        accounts.confirm_link(session=session, clock=CLOCK, user_id=person, code=code)
    # the bus app reports the same hour the metro app already credited
    overlapping = take(session, bus, [record(account_ref="b-1", external_id="b-1",
                                             start_time="2026-03-02T08:30:00+08:00",
                                             end_time="2026-03-02T09:30:00+08:00")])  # fmt: skip
    assert [(p.code, overlapping.grams) for p in overlapping.problems] == [("overlapping_behaviour", 0)]
    assert overlapping.linked_users == []
    # cycling: 1,000 g a day; 800 g credited in the morning leave 200 g for the evening
    ride = {"behaviour": "active_travel", "mode": "cycling", "account_ref": "m-1"}
    morning = take(session, metro, [record(**ride, external_id="c-1", distance_km=8,
                                           start_time="2026-03-05T07:00:00+08:00",
                                           end_time="2026-03-05T08:00:00+08:00")])  # fmt: skip
    evening = take(session, metro, [record(**ride, external_id="c-2", distance_km=8,
                                           start_time="2026-03-05T18:00:00+08:00",
                                           end_time="2026-03-05T19:00:00+08:00")])  # fmt: skip
    assert morning.grams > 0 and morning.grams + evening.grams == 1_000
    assert [p.code for p in evening.problems] == ["daily_cap_reached"] and evening.linked_users == [person]
    assert accounts.check(session=session) == []


def test_verified_reductions_rank_a_person_on_the_leaderboards(session: Session) -> None:
    metro = partner(session, "Metro Three")
    cmd = users.SignUp(email="cutter@example.org", password="a long enough password", display_name="Cutter")
    person = users.sign_up(session=session, clock=CLOCK, cmd=cmd, role=Role.MEMBER).id
    scenes.create_scene(
        session=session, clock=CLOCK, actor=Actor(id="usr_org", role=Role.ORGANISER),
        cmd=scenes.SceneCreate(slug="year-board", type=SceneType.LIFE, name="My year"),
    )  # fmt: skip
    home = {"kwh_per_year": "100", "home_region": "CN-SC"}
    member = Actor(id=person, role=Role.MEMBER)
    scenes.participate(session=session, clock=CLOCK, slug="year-board", form=home, actor=member)
    _fp, buyer = scenes.participate(session=session, clock=CLOCK, slug="year-board", form=home)
    bought = session.get(Participation, buyer)
    assert bought is not None
    scenes.set_scores(session=session, row=bought, offset_kg=5_000, reduction_g=0)
    take(session, metro, [record(account_ref="cutter", external_id="x-0")])
    code, _ = accounts.issue_link_code(session=session, clock=CLOCK, actor=metro, reference="cutter")
    accounts.confirm_link(session=session, clock=CLOCK, user_id=person, code=code)
    report = take(session, metro, [record(account_ref="cutter", external_id="x-1",
                                          start_time="2026-03-03T08:00:00+08:00",
                                          end_time="2026-03-03T09:00:00+08:00")])  # fmt: skip
    scenes.record_reductions(session=session, user_ids=report.linked_users)
    board = scenes.leaderboard(session=session, slug="year-board")
    assert [(s.reduction_g, s.offset_kg) for s in board.top] == [(2 * METRO_G, 0), (0, 5_000)]
