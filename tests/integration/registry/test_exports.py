"""Exports on SQLite and PostgreSQL: unit counts that match the serials, exact tonnes, mirrored
projects' developers, and CSV cells a spreadsheet cannot run as formulas."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM
from neutralize.registry import exports, mirror, service
from neutralize.registry.importers.records import Programme
from neutralize.registry.models import Project
from neutralize.registry.schemas import ProjectPublic, RetireCmd
from tests.integration.registry.conftest import CLOCK, Org, Registry, units

DATA = Path(__file__).resolve().parents[2] / "data" / "registry"


def load(session: Session, programme: Programme, name: str) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    mirror.import_export(
        session=session, clock=CLOCK, actor=SYSTEM, programme=programme, data=text.encode(), filename=name
    )


def rows(session: Session, kind: str) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = json.loads(exports.export(session=session, kind=kind, fmt="json"))
    return parsed


def csv_rows(session: Session, kind: str) -> list[dict[str, str]]:
    return list(
        csv.DictReader(io.StringIO(exports.export(session=session, kind=kind, fmt="csv"), newline=""))
    )


@pytest.fixture
def owner(registry: Registry) -> Org:
    return registry.organisation("Chengdu Transit Credits")


@pytest.fixture
def project(registry: Registry, owner: Org) -> ProjectPublic:
    return registry.project(owner)


def retire(registry: Registry, owner: Org, project: ProjectPublic, kg: int, beneficiary: str) -> None:
    cmd = RetireCmd(
        units=units(project, kg),
        beneficiary=beneficiary,
        reason="travel",
        idempotency_key=registry.key("retire"),
    )
    service.retire(session=registry.session, clock=CLOCK, actor=owner.owner, cmd=cmd)


def test_tonnes_are_written_as_exact_decimals(registry: Registry, owner: Org) -> None:
    # given 123,456,789 kg issued to one project and 1,234,567 t to another
    small, large = registry.project(owner), registry.project(owner)
    registry.issuance(small, kg=123_456_789)
    registry.issuance(large, kg=1_234_567_000)
    # when the units are exported
    tonnes = {row["projectId"]: row["unitCountTonnes"] for row in rows(registry.session, "units")}
    # then the tonnes are exact, without rounding or exponent
    assert tonnes == {small.code: "123456.789", large.code: "1234567"}


def test_every_unit_row_counts_the_units_its_serials_number(
    registry: Registry, project: ProjectPublic
) -> None:
    # given a native issuance (kilogram serials) and a mirrored Verra export (tonne serials)
    registry.issuance(project, kg=10_340)
    load(registry.session, Programme.VERRA, "verra_export.csv")
    # when the units are exported
    found = rows(registry.session, "units")
    native = [row for row in found if row["projectId"] == project.code]
    mirrored = [row for row in found if row["projectId"].startswith("VCS-")]
    assert native and mirrored
    # then every row counts its serials' units, and gives its kilograms and tonnes beside them
    assert all(row["unitBlockEnd"] - row["unitBlockStart"] + 1 == row["unitCount"] for row in found)
    assert [(r["unitCount"], r["quantityKg"], r["unitCountTonnes"], r["unitMetric"]) for r in native] == [
        (10_340, 10_340, "10.34", "kg CO2e")
    ]
    assert all(row["quantityKg"] == row["unitCount"] * 1000 for row in mirrored)
    assert all(row["unitMetric"].startswith("t CO2e") for row in mirrored)
    assert {row["unitCountTonnes"] for row in mirrored} >= {"425", "1250"}


def test_a_mirrored_project_is_exported_with_its_home_developer(registry: Registry, owner: Org) -> None:
    # given a native project, a Gold Standard export naming developers, and a Verra one naming none
    native = registry.project(owner)
    load(registry.session, Programme.GOLD_STANDARD, "gold_standard_issuances.csv")
    load(registry.session, Programme.VERRA, "verra_export.csv")
    # when the projects are exported
    developers = {row["projectId"]: row["projectDeveloper"] for row in csv_rows(registry.session, "projects")}
    # then each names its own developer, never the organisation that mirrors the data
    assert developers[native.code] == "Chengdu Transit Credits"
    assert developers["GS-11236"] == "Example Stoves Inc."
    assert developers["VCS-1340"] == ""
    assert not any("mirrored public data" in name for name in developers.values())


def test_a_projects_tags_give_every_label_set_and_its_home_registrys_as_published(
    registry: Registry, owner: Org
) -> None:
    # given a native project with a CORSIA phase, and a Verra project with its additional certifications
    native = registry.project(owner)
    registry.session.execute(
        update(Project)
        .where(Project.code == native.code)
        .values(labels={"icvcm_ccp": True, "corsia_phase": "first", "legacy_ccer": False})
    )
    load(registry.session, Programme.VERRA, "verra_export.csv")
    rows = {row["projectId"]: row for row in csv_rows(registry.session, "projects")}
    # then each label set is a tag, a phase with its value, and the mirrored one's are as published
    assert rows[native.code]["projectTags"] == "corsia_phase: first, icvcm_ccp"
    assert "CCB-No Distinction" in rows["VCS-1340"]["projectTags"]
    # and a mirrored methodology is given as published, with no version of ours
    assert not rows["VCS-1340"]["methodology"].endswith(" -")
    assert {row["coveredByNDC"] for row in rows.values()} == {"Unknown"}


@pytest.mark.parametrize(
    "beneficiary",
    ['=HYPERLINK("http://evil.example","click")', "+1+cmd", "-2+3", "@SUM(A1:A9)", "\tA"],
)
def test_a_csv_cell_a_spreadsheet_would_run_is_written_as_text(
    registry: Registry, owner: Org, project: ProjectPublic, beneficiary: str
) -> None:
    # given 340 kg retired for a beneficiary whose text starts like a formula
    registry.issuance(project, kg=10_000)
    retire(registry, owner, project, 340, beneficiary)
    # when the units are exported as CSV
    [retired] = [row for row in csv_rows(registry.session, "units") if row["unitStatus"] == "Retired"]
    # then the cell starts with a quote, while numbers and the JSON export are left as they are
    assert retired["retirementBeneficiary"] == f"'{beneficiary}"
    assert (retired["unitCount"], retired["quantityKg"], retired["unitCountTonnes"]) == ("340", "340", "0.34")
    [as_json] = [row for row in rows(registry.session, "units") if row["unitStatus"] == "Retired"]
    assert as_json["retirementBeneficiary"] == beneficiary


def test_a_cell_with_a_carriage_return_stays_in_its_cell(
    registry: Registry, owner: Org, project: ProjectPublic
) -> None:
    # given retirements for a beneficiary that starts with a carriage return and one with one inside
    registry.issuance(project, kg=10_000)
    retire(registry, owner, project, 340, "\r=1+1")
    retire(registry, owner, project, 20, "Line one\rLine two")
    # when the units are exported as CSV (RFC 4180: lines end with CRLF, such cells are quoted)
    text = exports.export(session=registry.session, kind="units", fmt="csv")
    assert text.endswith("\r\n") and '"\'\r=1+1"' in text
    # then a CSV reader gets each cell back whole, the formula one starting with a quote
    read = list(csv.DictReader(io.StringIO(text, newline="")))
    assert sorted(r["retirementBeneficiary"] for r in read if r["unitStatus"] == "Retired") == [
        "'\r=1+1",
        "Line one\rLine two",
    ]
