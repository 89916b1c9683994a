"""Mirrored credits on SQLite and PostgreSQL: imports of public exports, home retirements and shares."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import mirror, service
from neutralize.registry.domain import merkle_root
from neutralize.registry.importers.records import Programme
from neutralize.registry.models import HomeHolding, MirroredBlock, Project, RetirementShare
from tests.integration.registry.conftest import CLOCK

DATA = Path(__file__).resolve().parents[2] / "data" / "registry"


def load(session: Session, programme: Programme, name: str) -> mirror.ImportReport:
    text = (DATA / name).read_text(encoding="utf-8")
    return mirror.import_export(
        session=session, clock=CLOCK, actor=SYSTEM, programme=programme, text=text, filename=name
    )


def test_a_verra_export_imports_with_every_unit_accounted_for(session: Session) -> None:
    # given the sample Verra export; when it is imported
    report = load(session, Programme.VERRA, "verra_export.csv")
    # then every block is mirrored with tonnes x 1,000 kg, matching its serial range
    blocks = list(session.scalars(select(MirroredBlock).where(MirroredBlock.batch_id == report.batch_id)))
    assert len(blocks) == report.blocks > 0
    assert all(b.quantity_kg == (b.last_unit - b.first_unit + 1) * 1000 for b in blocks)
    assert sum(report.kg_by_status.values()) == sum(b.quantity_kg for b in blocks)
    project = session.scalars(select(Project).where(Project.code == "VCS-1340")).one()
    assert not project.native and project.home_registry == "Verra"


def test_the_same_file_twice_changes_nothing(session: Session) -> None:
    first = load(session, Programme.VERRA, "verra_export.csv")
    count = session.scalar(select(func.count()).select_from(MirroredBlock))
    again = load(session, Programme.VERRA, "verra_export.csv")
    assert again.already_imported and again.batch_id == first.batch_id
    assert session.scalar(select(func.count()).select_from(MirroredBlock)) == count


def test_a_file_with_bad_rows_imports_nothing(session: Session) -> None:
    with pytest.raises(DomainError) as caught:
        load(session, Programme.VERRA, "verra_bad_rows.csv")
    assert caught.value.code == ErrorCode.INVALID_IMPORT
    assert all(p.row is not None and p.row >= 3 for p in caught.value.problems)
    assert session.scalar(select(func.count()).select_from(MirroredBlock)) == 0


def test_a_project_under_two_programmes_is_flagged(session: Session) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    report = load(session, Programme.GOLD_STANDARD, "gold_standard_retirements.csv")
    assert any("VCS-2250" in d and "GS-2429" in d for d in report.duplicates)
    flagged = session.scalars(select(Project).where(Project.code == "VCS-2250")).one()
    assert flagged.labels["possible_duplicate_of"] == "GS-2429"


def test_only_admins_import(session: Session) -> None:
    member = Actor(id="m", role=Role.MEMBER, organisation_id="org_x")
    with pytest.raises(DomainError) as caught:
        mirror.import_export(
            session=session, clock=CLOCK, actor=member, programme=Programme.VERRA, text="", filename="x.csv"
        )
    assert caught.value.code == ErrorCode.FORBIDDEN


def home_retirement(session: Session, tonnes: int = 2) -> mirror.HomeRetirementPublic:
    load(session, Programme.VERRA, "verra_export.csv")
    cmd = mirror.HomeRetirementCreate(
        project_code="VCS-1340",
        vintage=2020,
        home_retirement_id="HOME-1",
        serial="19385-1-2",
        quantity_tonnes=tonnes,
        retired_on=date(2026, 11, 1),
        beneficiary_text="Platform on behalf of buyers",
    )
    return mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def share(session: Session, retirement_id: str, kg: int, reference: str) -> mirror.HomeRetirementPublic:
    cmd = mirror.ShareCreate(
        home_retirement_id=retirement_id, kg=kg, beneficiary=f"buyer {reference}", reference=reference
    )
    return mirror.allocate_share(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def test_shares_never_exceed_the_home_retirement(session: Session) -> None:
    # given a recorded 2-tonne home retirement
    retirement = home_retirement(session)
    assert retirement.quantity_kg == 2_000
    # when 340 kg and 1,660 kg are allocated, then the 2 tonnes are used exactly
    share(session, retirement.id, 340, "order-1")
    full = share(session, retirement.id, 1_660, "order-2")
    assert full.allocated_kg == 2_000 and [s.kg for s in full.shares] == [340, 1_660]
    # and one more kilogram is refused
    with pytest.raises(DomainError) as caught:
        share(session, retirement.id, 1, "order-3")
    assert caught.value.code == ErrorCode.INSUFFICIENT_UNITS


def test_the_published_root_covers_every_share(session: Session) -> None:
    retirement = home_retirement(session)
    before = share(session, retirement.id, 100, "a").merkle_root
    after = share(session, retirement.id, 200, "b")
    assert after.merkle_root != before
    assert service.check(session=session).ok
    # when a share is changed behind the registry's back, the check sees it
    session.execute(update(RetirementShare).where(RetirementShare.reference == "a").values(kg=150))
    report = service.check(session=session)
    assert not report.ok and any("HOME-1" in p for p in report.problems)
    assert merkle_root([]) != after.merkle_root


def test_native_projects_do_not_record_home_retirements(session: Session) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    session.execute(update(Project).where(Project.code == "VCS-1340").values(native=True))
    with pytest.raises(DomainError) as caught:
        home_retirement(session)
    assert caught.value.code == ErrorCode.INVALID_REQUEST


def test_home_serials_are_found_by_part_of_their_text(session: Session) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    found = mirror.find_home_serial(session=session, text="941467007")
    assert [b.quantity_kg for b in found] == [425_000]
    with pytest.raises(DomainError):
        mirror.find_home_serial(session=session, text="94")


def holding(session: Session, tonnes: int = 5) -> mirror.HomeHoldingPublic:
    load(session, Programme.VERRA, "verra_export.csv")
    cmd = mirror.HomeHoldingCreate(
        project_code="VCS-1340",
        home_account="Neutralize at Verra",
        vintage=2020,
        serial="19385-941467432-941467436-VCS-VCU-1507-VER-ET-14-1340-01012020-31122020-1",
        quantity_tonnes=tonnes,
    )
    return mirror.record_holding(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def retire_from(session: Session, holding_id: str, tonnes: int, home_id: str) -> mirror.HomeRetirementPublic:
    cmd = mirror.HomeRetirementCreate(
        holding_id=holding_id,
        project_code="VCS-1340",
        home_retirement_id=home_id,
        serial=f"part of the holding ({home_id})",
        quantity_tonnes=tonnes,
        retired_on=date(2026, 11, 2),
        beneficiary_text="Platform for buyers",
    )
    return mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def test_home_retirements_draw_down_the_platforms_holding(session: Session) -> None:
    # given 5 t held at Verra; when 2 t and then 3 t are retired there from it
    stock = holding(session, tonnes=5)
    retire_from(session, stock.id, 2, "H-1")
    retire_from(session, stock.id, 3, "H-2")
    # then nothing is left, and one more tonne is refused
    [after] = mirror.holdings_at_home(session=session, project_code="VCS-1340")
    assert (after.quantity_tonnes, after.retired_tonnes) == (5, 5)
    with pytest.raises(DomainError) as caught:
        retire_from(session, stock.id, 1, "H-3")
    assert caught.value.code == ErrorCode.INSUFFICIENT_UNITS
    assert service.check(session=session).ok


def test_a_holding_out_of_step_with_its_retirements_fails_the_check(session: Session) -> None:
    stock = holding(session, tonnes=5)
    retire_from(session, stock.id, 2, "H-1")
    session.execute(update(HomeHolding).where(HomeHolding.id == stock.id).values(retired_tonnes=1))
    report = service.check(session=session)
    assert not report.ok and any("home holding" in p for p in report.problems)


def test_a_holding_or_a_share_sent_twice_is_refused_the_second_time(session: Session) -> None:
    first = holding(session)
    again_cmd = mirror.HomeHoldingCreate(
        project_code="VCS-1340",
        home_account="Neutralize at Verra",
        vintage=2020,
        serial=first.serial,
        quantity_tonnes=first.quantity_tonnes,
    )
    with pytest.raises(DomainError) as again:
        mirror.record_holding(session=session, clock=CLOCK, actor=SYSTEM, cmd=again_cmd)
    assert again.value.code == ErrorCode.DUPLICATE
    retirement = retire_from(session, first.id, 2, "HOME-7")
    share(session, retirement.id, 100, "order-1")
    with pytest.raises(DomainError) as twice:
        share(session, retirement.id, 100, "order-1")
    assert twice.value.code == ErrorCode.DUPLICATE
    assert session.scalar(select(func.count()).select_from(HomeHolding)) == 1
    assert session.scalar(select(func.count()).select_from(RetirementShare)) == 1
