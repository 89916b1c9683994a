"""Mirrored credits on SQLite and PostgreSQL: imports of public exports, home retirements and shares."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import exports, mirror, service
from neutralize.registry.domain import merkle_root
from neutralize.registry.importers import gold_standard, verra
from neutralize.registry.importers.records import Programme
from neutralize.registry.models import HomeHolding, ImportBatch, MirroredBlock, Project, RetirementShare
from tests.integration.registry.conftest import CLOCK, Registry, verra_serial

DATA = Path(__file__).resolve().parents[2] / "data" / "registry"


def load(session: Session, programme: Programme, name: str) -> mirror.ImportReport:
    return load_text(session, programme, (DATA / name).read_text(encoding="utf-8"), name)


def load_text(
    session: Session, programme: Programme, text: str, name: str = "export.csv"
) -> mirror.ImportReport:
    return mirror.import_export(
        session=session, clock=CLOCK, actor=SYSTEM, programme=programme, data=text.encode(), filename=name
    )


def verra_file(*blocks: tuple[int, int, int]) -> str:
    """A Verra export with one issued 2020 block per (project id, first unit, last unit)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=verra.COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for project_id, first, last in blocks:
        writer.writerow(
            {
                "Issuance Date": "2021-03-01",
                "Vintage Start": "2020-01-01",
                "Vintage End": "2020-12-31",
                "ID": str(project_id),
                "Name": f"Project {project_id}",
                "Country/Area": "Ethiopia",
                "Quantity Issued": str(last - first + 1),
                "Serial Number": verra_serial(project_id, first, last),
            }
        )
    return out.getvalue()


def gold_standard_file(gsid: int, name: str, country: str, note: str) -> str:
    """A Gold Standard retirements export with one retired 2024 block of project ``gsid``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=gold_standard.RETIREMENT_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {
            "Vintage": "2024",
            "Credit Status": "Retired",
            "Quantity": "10",
            "GSID": str(gsid),
            "Project Name": name,
            "Country": country,
            "Issuance Date": "2025-01-10",
            "Retirement Date": "2025-02-10",
            "Serial Number": f"GS1-1-CN-GS{gsid}-16-2024-40001-1-10",
            "Note": note,
        }
    )
    return out.getvalue()


def blocks_of(session: Session, code: str) -> list[tuple[int, int]]:
    query = (
        select(MirroredBlock.first_unit, MirroredBlock.last_unit)
        .join(Project, Project.id == MirroredBlock.project_id)
        .where(Project.code == code)
        .order_by(MirroredBlock.first_unit)
    )
    return [(first, last) for first, last in session.execute(query)]


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
    assert flagged.labels["possible_duplicate_of"] == ["GS-2429"]


def test_a_block_starting_where_another_projects_earlier_block_starts_is_refused_on_its_line(
    session: Session,
) -> None:
    # given project 5001's units 1000-2999, mirrored from an earlier file
    load_text(session, Programme.VERRA, verra_file((5001, 1000, 2999)), "first.csv")
    # when another file gives project 5005 units 1000-1099 of the same unit space
    with pytest.raises(DomainError) as caught:
        load_text(session, Programme.VERRA, verra_file((5005, 1000, 1099)), "second.csv")
    # then the file is refused, its line and serial column named, and nothing of it is written
    assert caught.value.code == ErrorCode.INVALID_IMPORT
    assert [(p.row, p.field) for p in caught.value.problems] == [(2, "Serial Number")]
    assert "VCS-5001" in caught.value.problems[0].message
    assert blocks_of(session, "VCS-5001") == [(1000, 2999)]
    assert session.scalars(select(Project).where(Project.code == "VCS-5005")).first() is None


def test_every_block_overlapping_an_earlier_file_is_reported_with_its_line(session: Session) -> None:
    # given project 5001's units 1000-2999 and project 5002's 5000-5999, mirrored earlier
    load_text(session, Programme.VERRA, verra_file((5001, 1000, 2999), (5002, 5000, 5999)), "first.csv")
    # when a file's lines 3 and 4 run into them and its line 2 does not
    text = verra_file((5005, 7000, 7099), (5005, 2500, 3499), (5005, 5999, 6100))
    with pytest.raises(DomainError) as caught:
        load_text(session, Programme.VERRA, text, "second.csv")
    # then both lines are listed, in line order, and nothing of the file is written
    assert caught.value.code == ErrorCode.INVALID_IMPORT
    assert [(p.row, p.field) for p in caught.value.problems] == [(3, "Serial Number"), (4, "Serial Number")]
    assert blocks_of(session, "VCS-5005") == []


def test_a_newer_export_of_a_project_may_renumber_its_own_blocks(session: Session) -> None:
    # given project 5001's units 1000-2999 and project 5002's 5000-5999, mirrored earlier
    load_text(session, Programme.VERRA, verra_file((5001, 1000, 2999), (5002, 5000, 5999)), "first.csv")
    # when a newer export of project 5001 splits its range differently
    load_text(session, Programme.VERRA, verra_file((5001, 1000, 1999), (5001, 2000, 2999)), "second.csv")
    # then the new blocks replace the old, and the other project keeps its own
    assert blocks_of(session, "VCS-5001") == [(1000, 1999), (2000, 2999)]
    assert blocks_of(session, "VCS-5002") == [(5000, 5999)]


def test_an_export_of_issuances_leaves_the_retirements_mirrored_from_another_export(session: Session) -> None:
    # given a Gold Standard retirements export: project 11603 retired 110-5463 of its 2025 issuance
    load(session, Programme.GOLD_STANDARD, "gold_standard_retirements.csv")
    retired = blocks_of(session, "GS-11603")
    assert (110, 5463) in retired
    # when an issuances export names project 11603's issuance of another batch
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=gold_standard.ISSUANCE_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    issuance = {
        "Vintage": "2025",
        "Credit Status": "Issued",
        "GSID": "11603",
        "Country": "Kenya",
        "Project Name": "GS10789 VPA8: Efficient and Clean Cooking for households in Kenya",
        "Issuance Date": "2026-01-10",
    }
    writer.writerow({**issuance, "Quantity": "100", "Serial Number": "GS1-1-KE-GS11603-16-2025-30299-1-100"})
    load_text(session, Programme.GOLD_STANDARD, out.getvalue(), "issuances.csv")
    # then the retirements stay beside it: an export of one kind replaces only that kind
    assert sorted(blocks_of(session, "GS-11603")) == sorted([*retired, (1, 100)])
    # and an issuance cutting through one of them is refused with its line, not let to drop it
    writer.writerow({**issuance, "Quantity": "200", "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-1-200"})
    with pytest.raises(DomainError) as caught:
        load_text(session, Programme.GOLD_STANDARD, out.getvalue(), "issuances-2.csv")
    assert caught.value.code == ErrorCode.INVALID_IMPORT
    assert [p.row for p in caught.value.problems] == [3]
    assert "(issued) overlaps the retired range 110-5463" in caught.value.problems[0].message
    assert sorted(blocks_of(session, "GS-11603")) == sorted([*retired, (1, 100)])


def gold_standard_rows(*rows: dict[str, str]) -> str:
    """A Gold Standard export (retirements layout) of project 11603's 2025 batch 30256."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=gold_standard.RETIREMENT_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        first, last = row.pop("units").split("-")
        writer.writerow(
            {
                "Vintage": "2025",
                "GSID": "11603",
                "Country": "Kenya",
                "Project Name": "GS10789 VPA8: Efficient and Clean Cooking for households in Kenya",
                "Issuance Date": "2026-01-10",
                "Quantity": str(int(last) - int(first) + 1),
                "Serial Number": f"GS1-1-KE-GS11603-16-2025-30256-{first}-{last}",
                **row,
            }
        )
    return out.getvalue()


def test_gold_standard_retirements_lie_inside_their_issuance_and_each_unit_counts_once(
    session: Session,
) -> None:
    # given a Gold Standard export of an issuance of 5,485 t with two retirements inside it, the
    # first from the issuance's first unit
    retired = {"Credit Status": "Retired", "Retirement Date": "2026-02-01"}
    text = gold_standard_rows(
        {"Credit Status": "Issued", "units": "1-5485"},
        {**retired, "units": "1-109", "Using Entity": "Example Tools AG"},
        {**retired, "units": "110-5463", "Using Entity": "Example Bank"},
    )
    # when it is imported
    report = load_text(session, Programme.GOLD_STANDARD, text)
    # then all three blocks are mirrored, and the report counts each unit once
    assert sorted(blocks_of(session, "GS-11603")) == [(1, 109), (1, 5485), (110, 5463)]
    assert report.kg_by_status == {"issued": 22_000, "retired": 5_463_000}
    # and the units export writes the issued block as the 22 units left outside the retirements
    rows = [r for r in exports.unit_rows(session) if r["projectId"] == "GS-11603"]
    assert [(r["unitBlockStart"], r["unitBlockEnd"], r["unitStatus"]) for r in rows] == [
        (1, 109, "Retired"),
        (110, 5463, "Retired"),
        (5464, 5485, "Held"),
    ]
    assert sum(r["unitCount"] for r in rows) == 5485
    # and a search for the batch shows where its units went
    found = mirror.find_home_serial(session=session, text="GS11603-16-2025-30256")
    assert [(b.first_unit, b.last_unit, b.remaining_kg, b.part_of) for b in found] == [
        (1, 5485, 22_000, None),
        (1, 109, None, "GS1-1-KE-GS11603-16-2025-30256-1-5485"),
        (110, 5463, None, "GS1-1-KE-GS11603-16-2025-30256-1-5485"),
    ]


def test_a_search_for_a_retired_sub_block_names_the_issuance_it_lies_in(session: Session) -> None:
    # given a retirement mirrored from one export and its issuance from another
    load_text(
        session,
        Programme.GOLD_STANDARD,
        gold_standard_rows(
            {"Credit Status": "Retired", "Retirement Date": "2026-02-01", "units": "110-5463"}
        ),
        "retirements.csv",
    )
    load_text(
        session, Programme.GOLD_STANDARD, gold_standard_rows({"Credit Status": "Issued", "units": "1-5485"})
    )
    # when the retired serial is searched for, it names the issued block it lies in
    found = mirror.find_home_serial(session=session, text="30256-110-5463")
    assert [(b.status, b.remaining_kg, b.part_of) for b in found] == [
        ("retired", None, "GS1-1-KE-GS11603-16-2025-30256-1-5485"),
    ]
    # and a search for the batch finds both, each once, the issued one with what is left of it
    batch = mirror.find_home_serial(session=session, text="GS11603-16-2025-30256")
    assert [(b.status, b.remaining_kg) for b in batch] == [("issued", 131_000), ("retired", None)]
    # and the project's page lists both, in unit order
    listed = mirror.mirrored_blocks_of(session=session, project_code="GS-11603")
    assert [(b.first_unit, b.status) for b in listed] == [(1, "issued"), (110, "retired")]


def test_a_gold_standard_developer_is_kept_and_compared_across_files(session: Session) -> None:
    # given a Gold Standard export whose GS 2429 names its developer, imported first
    load(session, Programme.GOLD_STANDARD, "gold_standard_retirements.csv")
    developer = session.scalars(select(Project).where(Project.code == "GS-2429")).one().labels["developer"]
    assert developer == "South Pole Ltd"
    # when a Verra export with a project of the same name and country follows
    report = load(session, Programme.VERRA, "verra_export.csv")
    # then the match knows GS 2429's developer, and only Verra is said to publish none
    [match] = [d for d in report.duplicates if "GS-2429" in d]
    assert match.endswith("no developer published by VCS")


def test_a_project_matched_with_two_others_keeps_both(session: Session) -> None:
    # given VCS 2250 flagged as a possible duplicate of GS 2429
    load(session, Programme.VERRA, "verra_export.csv")
    load(session, Programme.GOLD_STANDARD, "gold_standard_retirements.csv")
    # when a later Gold Standard export names VCS 2250 in the note of another project
    load_text(
        session, Programme.GOLD_STANDARD, gold_standard_file(8123, "Yunnan stoves", "China", "see VCS 2250")
    )
    # then VCS 2250 lists both, and each of them lists VCS 2250
    labels = {p.code: p.labels for p in session.scalars(select(Project).where(Project.native.is_(False)))}
    assert labels["VCS-2250"]["possible_duplicate_of"] == ["GS-2429", "GS-8123"]
    assert labels["GS-2429"]["possible_duplicate_of"] == ["VCS-2250"]
    assert labels["GS-8123"]["possible_duplicate_of"] == ["VCS-2250"]


def test_only_admins_import(session: Session) -> None:
    member = Actor(id="m", role=Role.MEMBER, organisation_id="org_x")
    with pytest.raises(DomainError) as caught:
        mirror.import_export(
            session=session, clock=CLOCK, actor=member, programme=Programme.VERRA, data=b"", filename="x.csv"
        )
    assert caught.value.code == ErrorCode.FORBIDDEN


def home_retirement(session: Session, tonnes: int = 2) -> mirror.HomeRetirementPublic:
    load(session, Programme.VERRA, "verra_export.csv")
    cmd = mirror.HomeRetirementCreate(
        project_code="VCS-1340",
        vintage=2020,
        home_retirement_id="HOME-1",
        serial=verra_serial(1340, 1, tonnes),
        quantity_tonnes=tonnes,
        retired_on=date(2026, 11, 1),
        beneficiary_text="Platform on behalf of buyers",
    )
    return mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def test_a_home_retirement_dated_after_today_is_refused(session: Session) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    tomorrow = CLOCK.now().date() + timedelta(days=1)
    cmd = mirror.HomeRetirementCreate(
        project_code="VCS-1340", vintage=2020, home_retirement_id="HOME-LATER",
        serial=verra_serial(1340, 1, 2), quantity_tonnes=2, retired_on=tomorrow,
        beneficiary_text="Platform on behalf of buyers",
    )  # fmt: skip
    with pytest.raises(DomainError) as caught:
        mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)
    assert caught.value.code is ErrorCode.OUT_OF_RANGE and caught.value.problems[0].field == "retired_on"
    today = cmd.model_copy(update={"retired_on": CLOCK.now().date()})
    recorded = mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=today)
    assert recorded.quantity_kg == 2_000


@pytest.mark.parametrize(
    ("serial", "tonnes", "code"),
    [
        ("x", 2, ErrorCode.INVALID_SERIAL),
        (verra_serial(1341, 1, 2), 2, ErrorCode.INVALID_SERIAL),  # another project's serial
        (verra_serial(1340, 1, 2), 3, ErrorCode.INVALID_REQUEST),  # two units are not three tonnes
    ],
)
def test_a_home_serial_must_be_the_projects_and_number_its_tonnes(
    session: Session, serial: str, tonnes: int, code: ErrorCode
) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    holding_cmd = mirror.HomeHoldingCreate(project_code="VCS-1340", home_account="Platform account 1",
                                           serial=serial, vintage=2020, quantity_tonnes=tonnes)  # fmt: skip
    retirement_cmd = mirror.HomeRetirementCreate(
        project_code="VCS-1340", vintage=2020, home_retirement_id="HOME-X", serial=serial,
        quantity_tonnes=tonnes, retired_on=date(2026, 11, 1), beneficiary_text="Platform",
    )  # fmt: skip
    with pytest.raises(DomainError) as holding_refused:
        mirror.record_holding(session=session, clock=CLOCK, actor=SYSTEM, cmd=holding_cmd)
    with pytest.raises(DomainError) as retirement_refused:
        mirror.record_retirement(session=session, clock=CLOCK, actor=SYSTEM, cmd=retirement_cmd)
    assert (holding_refused.value.code, retirement_refused.value.code) == (code, code)
    assert mirror.holdings_at_home(session=session) == []


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
        serial=verra_serial(1340, 941467432, 941467431 + tonnes),
        quantity_tonnes=tonnes,
    )
    return mirror.record_holding(session=session, clock=CLOCK, actor=SYSTEM, cmd=cmd)


def retire_from(session: Session, holding_id: str, tonnes: int, home_id: str) -> mirror.HomeRetirementPublic:
    cmd = mirror.HomeRetirementCreate(
        holding_id=holding_id,
        project_code="VCS-1340",
        home_retirement_id=home_id,
        serial=verra_serial(1340, 941467432, 941467431 + tonnes),  # part of the holding
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


@pytest.mark.parametrize(
    ("limits", "field_of_column"),
    [
        (verra.LIMITS, {"Name": "name", "Methodology": "methodology", "Project Type": "project_type",
                        "Serial Number": "serial", "Retirement Beneficiary": "beneficiary",
                        "Retirement Reason": "reason"}),
        (gold_standard.LIMITS, {"Project Name": "name", "Methodology": "methodology",
                                "Project Type": "project_type", "Serial Number": "serial",
                                "Using Entity": "beneficiary", "Use Case": "reason"}),
    ],
)  # fmt: skip
def test_the_importers_refuse_cells_longer_than_the_columns_that_keep_them(
    limits: dict[str, int], field_of_column: dict[str, str]
) -> None:
    # a cell the registry could keep only in part is refused by the importer, so nothing is cut
    for column, field in field_of_column.items():
        table = (
            Project.__table__ if field in {"name", "methodology", "project_type"} else MirroredBlock.__table__
        )
        assert limits[column] == table.c[field].type.length, column


def verra_rows(*rows: tuple[int, int, bool]) -> str:
    """A Verra export of project 5001's 2020 units (first, last, retired?) in one unit space."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=verra.COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    for first, last, retired in rows:
        dated = {"Retirement/Cancellation Date": "2026-04-10", "Retirement Beneficiary": "Buyer"}
        writer.writerow(
            {
                "Issuance Date": "2021-03-01",
                "Vintage Start": "2020-01-01",
                "Vintage End": "2020-12-31",
                "ID": "5001",
                "Name": "Project 5001",
                "Country/Area": "Ethiopia",
                "Quantity Issued": str(last - first + 1),
                "Serial Number": verra_serial(5001, first, last),
                **(dated if retired else {}),
            }
        )
    return out.getvalue()


def statuses_of(session: Session, code: str) -> list[tuple[int, int, str]]:
    return [
        (b.first_unit, b.last_unit, b.status)
        for b in mirror.mirrored_blocks_of(session=session, project_code=code)
    ]


def test_a_newer_verra_export_of_retirements_takes_their_units_out_of_earlier_active_blocks(
    session: Session,
) -> None:
    # given an active Verra block of 1,000 t
    load_text(session, Programme.VERRA, verra_rows((1, 1000, False)), "v1.csv")
    # when a newer export lists 100-200 of it as retired (Verra splits the block at home)
    report = load_text(session, Programme.VERRA, verra_rows((100, 200, True)), "v2.csv")
    # then the active block keeps only its other units, with the serial as published
    assert report.replaced_blocks == 1
    assert statuses_of(session, "VCS-5001") == [
        (1, 99, "issued"),
        (100, 200, "retired"),
        (201, 1000, "issued"),
    ]
    assert {
        b.serial for b in mirror.mirrored_blocks_of(session=session, project_code="VCS-5001", status="issued")
    } == {verra_serial(5001, 1, 1000)}
    # and an export where everything has retired since leaves nothing active
    final = load_text(session, Programme.VERRA, verra_rows((1, 200, True), (201, 1000, True)), "v3.csv")
    assert final.replaced_blocks == 3  # the retirement 100-200 and the two active pieces
    assert statuses_of(session, "VCS-5001") == [(1, 200, "retired"), (201, 1000, "retired")]
    # and a file listing only some units leaves the others as they were
    partial = load_text(session, Programme.VERRA, verra_rows((1, 99, True)), "v4.csv")
    assert partial.replaced_blocks == 1
    assert statuses_of(session, "VCS-5001") == [
        (1, 99, "retired"),
        (100, 200, "retired"),
        (201, 1000, "retired"),
    ]
    # and an older file sent again is not applied over them; its report says it was superseded
    again = load_text(session, Programme.VERRA, verra_rows((1, 1000, False)), "v1.csv")
    assert (again.already_imported, again.superseded, again.kg_by_status) == (
        True,
        True,
        {"issued": 1_000_000},
    )
    assert len(statuses_of(session, "VCS-5001")) == 3


def test_a_verra_export_listing_one_retirement_keeps_the_retirements_listed_before(session: Session) -> None:
    # given a split block: active 1-39, retired 40-60 and 61-70, active 71-100
    split = verra_rows((1, 39, False), (40, 60, True), (61, 70, True), (71, 100, False))
    load_text(session, Programme.VERRA, split, "split.csv")
    # when a newer export lists only a later retirement, 80-85
    report = load_text(session, Programme.VERRA, verra_rows((80, 85, True)), "later.csv")
    # then only the block it lies in changes: every unit is still in exactly one block
    assert report.replaced_blocks == 1
    assert statuses_of(session, "VCS-5001") == [
        (1, 39, "issued"),
        (40, 60, "retired"),
        (61, 70, "retired"),
        (71, 79, "issued"),
        (80, 85, "retired"),
        (86, 100, "issued"),
    ]
    # and an active block may not take back retired units
    with pytest.raises(DomainError) as caught:
        load_text(session, Programme.VERRA, verra_rows((50, 55, False)), "back.csv")
    assert caught.value.code == ErrorCode.INVALID_IMPORT


def test_an_import_never_takes_over_a_native_project_with_its_code(session: Session) -> None:
    # a native project may not take a code mirrored projects are named by
    registry = Registry(session)
    owner = registry.organisation()
    with pytest.raises(ValidationError) as refused:
        registry.draft_project(owner, code="GS-11603")
    assert "name mirrored projects" in str(refused.value)
    # given one that holds such a code from before that rule
    native = registry.draft_project(owner, code="NATIVE-11603")
    session.execute(update(Project).where(Project.code == native.code).values(code="GS-11603"))
    # when that project's export is imported, it is refused with a code and the native one is unchanged
    with pytest.raises(DomainError) as caught:
        load_text(
            session, Programme.GOLD_STANDARD, gold_standard_rows({"Credit Status": "Issued", "units": "1-10"})
        )
    assert caught.value.code == ErrorCode.DUPLICATE
    assert service.get_project(session=session, code="GS-11603").name == native.name


def test_the_file_is_imported_as_its_bytes(session: Session) -> None:
    # given a Gold Standard export with CRLF line ends and a line break inside a cell
    text = (
        gold_standard_rows(
            {
                "Credit Status": "Retired",
                "Retirement Date": "2026-02-01",
                "units": "1-10",
                "Using Entity": "Line 1\r\nLine 2",
            }
        )
        .replace("\n", "\r\n")
        .replace("Line 1\r\r\nLine 2", "Line 1\r\nLine 2")
    )
    data = text.encode()
    # when it is imported twice, the second time is recognised by the file's own digest
    first = mirror.import_export(
        session=session,
        clock=CLOCK,
        actor=SYSTEM,
        programme=Programme.GOLD_STANDARD,
        data=data,
        filename="a.csv",
    )
    again = mirror.import_export(
        session=session,
        clock=CLOCK,
        actor=SYSTEM,
        programme=Programme.GOLD_STANDARD,
        data=data,
        filename="b.csv",
    )
    assert (first.already_imported, again.already_imported, again.batch_id) == (False, True, first.batch_id)
    batch = session.get(ImportBatch, first.batch_id)
    assert batch is not None and batch.sha256 == hashlib.sha256(data).hexdigest()
    # and the cell keeps its line break as published
    [block] = mirror.mirrored_blocks_of(session=session, project_code="GS-11603")
    assert block.beneficiary == "Line 1\r\nLine 2"
    # and the same bytes sent as another programme's export are refused for their columns
    with pytest.raises(DomainError) as caught:
        mirror.import_export(
            session=session, clock=CLOCK, actor=SYSTEM, programme=Programme.VERRA, data=data, filename="c.csv"
        )
    assert caught.value.code == ErrorCode.INVALID_IMPORT


def test_a_layout_without_a_column_keeps_what_an_earlier_file_said(session: Session) -> None:
    # given a retirements export naming the developer and a cross-reference
    load_text(
        session,
        Programme.GOLD_STANDARD,
        gold_standard_rows(
            {"Credit Status": "Retired", "Retirement Date": "2026-02-01", "units": "1-10",
             "Project Developer": "ECC", "Note": "Buffer zone of VCS 1340", "Methodology": "GS TPDDTEC v3.1"}
        ),
    )  # fmt: skip
    # when an issuances export without them is imported
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=gold_standard.ISSUANCE_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerow(
        {"Vintage": "2025", "Credit Status": "Issued", "Quantity": "10", "GSID": "11603", "Country": "Kenya",
         "Project Name": "GS10789 VPA8: Efficient and Clean Cooking for households in Kenya",
         "Issuance Date": "2026-01-10", "Serial Number": "GS1-1-KE-GS11603-16-2025-30256-1-10"}
    )  # fmt: skip
    load_text(session, Programme.GOLD_STANDARD, out.getvalue(), "issuances.csv")
    # then the project keeps them
    project = service.get_project(session=session, code="GS-11603")
    assert (project.labels["developer"], project.labels["cross_references"], project.methodology) == (
        "ECC",
        ["VCS:1340"],
        "GS TPDDTEC v3.1",
    )


def test_a_home_serial_search_is_literal_in_any_case_and_paged(session: Session) -> None:
    load(session, Programme.GOLD_STANDARD, "gold_standard_retirements.csv")
    assert mirror.find_home_serial(session=session, text="%%%%%%") == []
    assert mirror.find_home_serial(session=session, text="______") == []
    lower = mirror.find_home_serial(session=session, text="gs1-1-ke-gs11603")
    assert {b.serial for b in lower} == {
        "GS1-1-KE-GS11603-16-2025-30256-110-5463",
        "GS1-1-KE-GS11603-16-2024-30255-485-12623",
    }
    first = mirror.find_home_serial(session=session, text="GS1-1-", page_size=1)
    second = mirror.find_home_serial(session=session, text="GS1-1-", page=2, page_size=1)
    assert len(first) == len(second) == 1 and first[0].serial != second[0].serial


def test_a_page_of_sub_blocks_names_the_issued_block_each_lies_in(session: Session) -> None:
    retired = {"Credit Status": "Retired", "Retirement Date": "2026-02-01"}
    load_text(
        session,
        Programme.GOLD_STANDARD,
        gold_standard_rows(
            {"Credit Status": "Issued", "units": "1-5485"},
            {**retired, "units": "1-109"},
            {**retired, "units": "110-200"},
        ),
    )
    issued = "GS1-1-KE-GS11603-16-2025-30256-1-5485"
    only_retired = mirror.mirrored_blocks_of(session=session, project_code="GS-11603", status="retired")
    assert [(b.first_unit, b.part_of) for b in only_retired] == [(1, issued), (110, issued)]
    # a page starts with the issued block where a sub-block starts at the same unit
    [head] = mirror.mirrored_blocks_of(session=session, project_code="GS-11603", page_size=1)
    assert (head.status, head.remaining_kg) == ("issued", 5_285_000)
    [third] = mirror.mirrored_blocks_of(session=session, project_code="GS-11603", page=3, page_size=1)
    assert (third.first_unit, third.part_of) == (110, issued)


def test_the_check_finds_mirrored_blocks_sharing_units_against_the_rule(session: Session) -> None:
    # given a Gold Standard issuance with a retirement inside it, and a Verra split block
    retired = {"Credit Status": "Retired", "Retirement Date": "2026-02-01"}
    load_text(
        session,
        Programme.GOLD_STANDARD,
        gold_standard_rows({"Credit Status": "Issued", "units": "1-100"}, {**retired, "units": "1-10"}),
    )
    load_text(session, Programme.VERRA, verra_rows((1, 50, False), (51, 100, True)), "split.csv")
    assert mirror.block_problems(session=session) == []
    # when a Verra block is stretched over its neighbour behind the importer's back
    session.execute(
        update(MirroredBlock)
        .where(MirroredBlock.programme == "VCS", MirroredBlock.first_unit == 1)
        .values(last_unit=60, quantity_kg=60_000)
    )
    # then the check names the two blocks
    [problem] = mirror.block_problems(session=session)
    assert "(1-60)" in problem and "(51-100)" in problem


def test_a_mirrored_project_states_no_credit_type_or_nature_its_export_does_not_give(
    session: Session,
) -> None:
    load(session, Programme.VERRA, "verra_export.csv")
    project = service.get_project(session=session, code="VCS-1340")
    assert (project.credit_type, project.nature_based, project.native) == (None, None, False)
