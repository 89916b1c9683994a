"""Bundling verified grams into registry credits: whole kilograms through a verification and an
issuance, oldest entries first, the remainder left for the next bundle, never a gram twice, and the
people's claims reduced by what was bundled."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.accounts import bundles
from neutralize.accounts import service as accounts
from neutralize.accounts.models import BundleTake
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import service as registry
from neutralize.registry.domain import ProjectStatus
from neutralize.registry.schemas import Labels, ProjectCreate
from neutralize.scenes import events, neutrality
from neutralize.scenes import service as scenes
from neutralize.scenes.domain import SceneType
from neutralize.scenes.models import Scene
from tests.integration.accounts.test_intake import CLOCK, METRO_G, partner, take
from tests.integration.registry.conftest import VERIFIER, Registry
from tests.unit.accounts.helpers import record

REPORT = "ab" * 32


def carbon_inclusive_project(session: Session) -> str:
    rows = Registry(session)
    owner = rows.organisation("Chengdu carbon-inclusive platform")
    project = registry.create_project(
        session=session, clock=rows.clock, actor=owner.owner,
        cmd=ProjectCreate(code="CDCER-RIDES", name="Chengdu riders", standard="CDCER", methodology="transit",
                          methodology_version="1.0", project_type="transport", credit_type="avoidance",
                          nature_based=False, country="CN", region="CN-SC", owner_organisation_id=owner.id,
                          labels=Labels(carbon_inclusive=True)),
    )  # fmt: skip
    for to, actor in ((ProjectStatus.SUBMITTED, owner.owner), (ProjectStatus.VALIDATED, VERIFIER),
                      (ProjectStatus.REGISTERED, SYSTEM)):  # fmt: skip
        project = rows.move(project, to, actor)
    return project.code


def trips(prefix: str, days: int) -> list[dict[str, object]]:
    return [record(account_ref=f"{prefix}-rider", external_id=f"{prefix}-{d}",
                   start_time=f"2026-03-{d + 1:02d}T08:00:00+08:00",
                   end_time=f"2026-03-{d + 1:02d}T09:00:00+08:00") for d in range(days)]  # fmt: skip


def test_a_period_is_bundled_in_whole_kilograms_and_never_twice(session: Session) -> None:
    code = carbon_inclusive_project(session)
    metro, bus = partner(session, "Metro Bundle"), partner(session, "Bus Bundle")
    take(session, metro, trips("m", 3))  # 3 x 467 g
    take(session, bus, trips("b", 2))  # 2 x 467 g: 2,335 g in all
    cmd = bundles.BundleCreate(project_code=code, period_start=date(2026, 3, 1), period_end=date(2026, 3, 31),
                               verifier="Sichuan Verification Co.", report_sha256=REPORT)  # fmt: skip
    made = bundles.bundle(session=session, clock=Registry(session).clock, actor=SYSTEM, cmd=cmd)
    assert (made.kg, made.grams_taken, made.accounts) == (2, 2_000, 2)
    holdings = registry.get_project(session=session, code=code)
    assert holdings.labels["carbon_inclusive"] and made.serial
    # the 335 g left wait for the next bundle, which has no whole kilogram yet
    with pytest.raises(DomainError) as short:
        bundles.bundle(session=session, clock=Registry(session).clock, actor=SYSTEM,
                       cmd=cmd.model_copy(update={"report_sha256": "cd" * 32}))  # fmt: skip
    assert short.value.code is ErrorCode.INSUFFICIENT_UNITS and "335" in short.value.message
    assert session.scalar(select(func.sum(BundleTake.grams))) == 2_000
    metro_account = accounts.account_of(session=session, actor=metro, reference="m-rider")
    session.refresh(metro_account)
    shown = accounts.view(metro_account)
    assert shown.bundled_g == 3 * METRO_G and shown.claim_g == 0 and shown.points == 3 * METRO_G // 100
    assert accounts.check(session=session) == []
    # only admins bundle
    with pytest.raises(DomainError) as refused:
        bundles.bundle(session=session, clock=Registry(session).clock,
                       actor=Actor(id="k", role=Role.INTEGRATOR, organisation_id="x"), cmd=cmd)  # fmt: skip
    assert refused.value.code is ErrorCode.FORBIDDEN


def test_bundled_grams_of_an_events_attendees_cannot_offset_that_event(session: Session) -> None:
    code = carbon_inclusive_project(session)
    metro = partner(session, "Metro Boundary")
    scenes.create_scene(
        session=session, clock=Registry(session).clock, actor=Actor(id="usr_org", role=Role.ORGANISER),
        cmd=scenes.SceneCreate(slug="march-forum", type=SceneType.CONFERENCE, name="March forum"),
    )  # fmt: skip
    forum = session.scalars(select(Scene).where(Scene.slug == "march-forum")).one()
    forum.starts_on, forum.ends_on = date(2026, 3, 2), date(2026, 3, 3)
    cmd = users.SignUp(email="guest@example.org", password="a long enough password", display_name="Guest")
    guest = users.sign_up(session=session, clock=CLOCK, cmd=cmd, role=Role.MEMBER).id
    scenes.participate(session=session, clock=CLOCK, slug="march-forum", form={"nights": "1"},
                       actor=Actor(id=guest, role=Role.MEMBER))  # fmt: skip
    february = {"start_time": "2026-02-01T08:00:00+08:00", "end_time": "2026-02-01T09:00:00+08:00"}
    take(session, metro, [record(account_ref="guest", external_id="g-0", **february)])  # opens the account
    link, _ = accounts.issue_link_code(session=session, clock=CLOCK, actor=metro, reference="guest")
    accounts.confirm_link(session=session, clock=CLOCK, user_id=guest, code=link)
    take(
        session, metro, [record(account_ref="guest", external_id="g-1", distance_km=30)]
    )  # to the forum, 2 March
    project = registry.get_project(session=session, code=code)
    assert events.bundled_scenes(session=session, project_id=project.id) == set()
    made = bundles.bundle(session=session, clock=CLOCK, actor=SYSTEM, cmd=bundles.BundleCreate(
        project_code=code, period_start=date(2026, 3, 1), period_end=date(2026, 3, 31),
        verifier="Sichuan Verification Co.", report_sha256=REPORT))  # fmt: skip
    assert made.kg == 1
    assert events.bundled_scenes(session=session, project_id=project.id) == {forum.id, "march-forum"}
    origin = neutrality.CreditOrigin(standard="CDCER", project_type="transport", credit_type="avoidance",
                                     nature_based=False, country="CN", carbon_inclusive=True,
                                     source_scenes=frozenset({forum.id, "march-forum"}))  # fmt: skip
    with pytest.raises(DomainError) as inside:
        neutrality.check_offset_credit(origin, (forum.id, forum.slug))
    assert inside.value.code is ErrorCode.OWN_BOUNDARY_CREDIT
