"""Demo data for ``make run``: organisations, registered projects, issued credits, some retired.

Loading is idempotent: if the demo organisations exist, nothing is added.
"""

from __future__ import annotations

from datetime import date
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM, Actor, Role
from neutralize.core.clock import Clock
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


def load(*, session: Session, clock: Clock) -> bool:
    """Add the demo data unless it is there; returns whether anything was added."""
    if session.scalars(select(Organisation).where(Organisation.name == PLATFORM)).first() is not None:
        return False
    service.create_organisation(
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
    return True


def _mirrored(session: Session, clock: Clock) -> None:
    """Mirrored Verra and Gold Standard public data, and one retirement the platform made at home."""
    data = resources.files("neutralize") / "demo_data"
    for programme, name in (
        (Programme.VERRA, "verra_public_export.csv"),
        (Programme.GOLD_STANDARD, "gold_standard_public_export.csv"),
    ):
        mirror.import_export(
            session=session,
            clock=clock,
            actor=SYSTEM,
            programme=programme,
            text=(data / name).read_text(encoding="utf-8"),
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
    retirement = mirror.record_retirement(
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
    for kg, beneficiary, reference in (
        (340, "Guest at the Tianfu Carbon Neutrality Forum", "demo-order-1"),
        (2_000, "Demo conference", "demo-order-2"),
    ):
        mirror.allocate_share(
            session=session,
            clock=clock,
            actor=SYSTEM,
            cmd=mirror.ShareCreate(
                home_retirement_id=retirement.id, kg=kg, beneficiary=beneficiary, reference=reference
            ),
        )
