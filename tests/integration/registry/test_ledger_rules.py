"""Rules every movement keeps: suspended projects' units stay, drafts stay hidden, mirrored projects are
issued at home, cancellations keep their reason, and bad inputs are refused with a code."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from neutralize.access.domain import Actor, Role
from neutralize.core.errors import ErrorCode, validation_problems
from neutralize.registry import service
from neutralize.registry.domain import ProjectStatus, Span, serial
from neutralize.registry.models import Project
from neutralize.registry.schemas import (
    CancelCmd,
    ExportCmd,
    PostCmd,
    ProjectTransition,
    RetireCmd,
    TransferCmd,
    Units,
    VerificationCreate,
)

from .conftest import ADMIN, CLOCK, PERIOD_2025, VERIFIER, VINTAGE, Registry, refused, units


def codes(model: type[Any], data: dict[str, Any]) -> list[tuple[str | None, ErrorCode]]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(p.field, p.code) for p in validation_problems(caught.value.errors())]


# --- suspended projects ---------------------------------------------------------------------------


def test_a_suspended_projects_units_are_not_transferred_retired_or_sent_out(registry: Registry) -> None:
    # given 10,000 kg issued, then the project suspended
    owner, buyer = registry.organisation(), registry.organisation()
    project = registry.project(owner)
    registry.issuance(project)
    registry.move(project, ProjectStatus.SUSPENDED, ADMIN)
    session, some = registry.session, units(project, 10)
    moves = [
        lambda: service.transfer(session=session, clock=CLOCK, actor=owner.owner,
                                 cmd=TransferCmd(units=some, to_account_id=buyer.holding,
                                                 idempotency_key="t")),
        lambda: service.retire(session=session, clock=CLOCK, actor=owner.owner,
                               cmd=RetireCmd(units=some, beneficiary="B", reason="r", idempotency_key="r")),
        lambda: service.export(session=session, clock=CLOCK, actor=owner.owner,
                               cmd=ExportCmd(units=some, destination_registry="VCS", reference="x",
                                             idempotency_key="e")),
    ]  # fmt: skip
    # then each movement is refused, and the units stay held
    for move in moves:
        with refused(session, ErrorCode.PROJECT_NOT_REGISTERED):
            move()
    assert registry.kg_by_state(owner) == {"held": 10_000}
    # but units issued in error may still be cancelled, and once registered again they move
    service.cancel(session=session, clock=CLOCK, actor=owner.owner,
                   cmd=CancelCmd(units=some, reason="issued in error", idempotency_key="c"))  # fmt: skip
    registry.move(project, ProjectStatus.REGISTERED, ADMIN)
    moves[1]()
    assert registry.kg_by_state(owner) == {"held": 9_980, "cancelled": 10, "retired": 10}
    registry.assert_sound()


# --- cancellations keep their reason ----------------------------------------------------------------


def test_a_cancellation_keeps_its_reason_on_the_cancelled_units(registry: Registry) -> None:
    owner = registry.organisation()
    project = registry.project(owner)
    registry.issuance(project)
    result = service.cancel(
        session=registry.session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=CancelCmd(units=units(project, 50), reason="double counted with VCS 1234", idempotency_key="c"),
    )
    [shown] = service.where_did_it_go(session=registry.session, text=result.blocks[0].serial)
    assert (shown.state, shown.destination) == ("cancelled", "double counted with VCS 1234")
    [held] = [b for b in registry.holdings(owner) if b.state == "cancelled"]
    assert held.destination == "double counted with VCS 1234"


# --- drafts stay hidden -----------------------------------------------------------------------------


def test_a_draft_of_another_organisation_answers_as_a_missing_project(registry: Registry) -> None:
    # given a draft of organisation A, and a project owner and a verifier of organisation B
    owner, other = registry.organisation(), registry.organisation()
    draft = registry.draft_project(owner)
    outsider = Actor(id="verifier-b", role=Role.VERIFIER, organisation_id=other.id)
    session = registry.session
    looks = {
        "serial": lambda actor: service.where_did_it_go(
            session=session, text=serial(draft.code, VINTAGE, Span(1, 1)), actor=actor
        ),
        "retirements": lambda actor: service.retirements_of(
            session=session, project_code=draft.code, public=True, actor=actor
        ),
        "transition": lambda actor: service.transition_project(
            session=session, clock=CLOCK, actor=actor, project_code=draft.code,
            cmd=ProjectTransition(to_status="submitted"),
        ),
        "verification": lambda actor: service.record_verification(
            session=session, clock=CLOCK, actor=actor, cmd=verification_of(draft.code),
        ),
    }  # fmt: skip
    # then to them (and to the public) each answers exactly as for a code that does not exist
    for name, look in looks.items():
        # (the public and a project owner have no say on verifications: their role is refused first)
        for actor in {"transition": (other.owner, outsider), "verification": (outsider,)}.get(
            name, (None, other.owner, outsider)
        ):
            with refused(session, ErrorCode.NOT_FOUND):
                look(actor)
    # while its owner and admins still see it
    assert (
        service.retirements_of(session=session, project_code=draft.code, public=True, actor=owner.owner) == []
    )
    assert (
        service.where_did_it_go(session=session, text=serial(draft.code, VINTAGE, Span(1, 1)), actor=ADMIN)
        == []
    )


def verification_of(code: str, period: tuple[date, date] = PERIOD_2025) -> VerificationCreate:
    return VerificationCreate(project_code=code, verifier="Sichuan Verification Co.", period_start=period[0],
                              period_end=period[1], verified_kg=1_000, report_sha256="ab" * 32)  # fmt: skip


# --- mirrored projects --------------------------------------------------------------------------------


def test_a_mirrored_project_is_neither_verified_nor_issued_here(registry: Registry) -> None:
    # given a registered project that mirrors one at Verra, with a verification recorded before
    owner = registry.organisation()
    project = registry.project(owner)
    verification = registry.verification(project)
    mirrored = registry.session.get(Project, project.id)
    assert mirrored is not None
    mirrored.native, mirrored.home_registry = False, "Verra"
    registry.session.flush()
    # then a new verification and an issuance are both refused
    with refused(registry.session, ErrorCode.PROJECT_NOT_REGISTERED):
        service.record_verification(
            session=registry.session,
            clock=CLOCK,
            actor=VERIFIER,
            cmd=verification_of(project.code, (date(2024, 1, 1), date(2024, 12, 31))),
        )
    with refused(registry.session, ErrorCode.PROJECT_NOT_REGISTERED):
        registry.issue(verification.id)


# --- retirements by beneficiary ------------------------------------------------------------------------


def test_the_beneficiary_filter_takes_percent_and_underscore_literally(registry: Registry) -> None:
    owner = registry.organisation()
    project = registry.project(owner)
    registry.issuance(project)
    for n, beneficiary in enumerate(("100% green", "1000 green", "a_b", "axb")):
        service.retire(
            session=registry.session,
            clock=CLOCK,
            actor=owner.owner,
            cmd=RetireCmd(
                units=units(project, 1), beneficiary=beneficiary, reason="r", idempotency_key=f"r{n}"
            ),
        )

    def found(text: str) -> list[str]:
        return [r.beneficiary for r in service.retirements_of(session=registry.session, beneficiary=text)]

    assert found("0% g") == ["100% green"]
    assert found("a_b") == ["a_b"]


# --- commands refused at the boundary ----------------------------------------------------------------


def test_units_named_both_ways_are_refused_not_half_read() -> None:
    both = {"serial": "NZ-P-2025-1-10", "project_code": "P", "vintage": 2025, "quantity_kg": 5}
    assert codes(Units, both) == [(None, ErrorCode.CONFLICTING_FIELDS)]
    assert codes(Units, {"serial": "NZ-P-2025-1-10", "quantity_kg": 5}) == [
        (None, ErrorCode.CONFLICTING_FIELDS)
    ]


@pytest.mark.parametrize("quantity", [True, "5", 1e3, 5.0])
def test_a_quantity_is_a_whole_number_of_kilograms_not_text_a_flag_or_a_float(quantity: Any) -> None:
    data = {"project_code": "P", "vintage": 2025, "quantity_kg": quantity}
    assert codes(Units, data) == [("quantity_kg", ErrorCode.WRONG_TYPE)]


def test_blank_text_and_unknown_countries_are_refused() -> None:
    data = {"reservation": "o-1", "idempotency_key": "  ", "beneficiary": " \t", "reason": "ok",
            "claim_country": "XX"}  # fmt: skip
    assert sorted(codes(PostCmd, data)) == [
        ("beneficiary", ErrorCode.OUT_OF_RANGE),
        ("claim_country", ErrorCode.UNKNOWN_VALUE),
        ("idempotency_key", ErrorCode.OUT_OF_RANGE),
    ]
    # text is kept as given otherwise (a beneficiary may start with a tab)
    assert PostCmd.model_validate(
        {**data, "idempotency_key": "k", "beneficiary": "\tA", "claim_country": "CN"}
    )
