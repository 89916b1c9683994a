"""Buffer reversals: credits found invalid are replaced from the forestry buffer."""

from __future__ import annotations

from datetime import date

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import service
from neutralize.registry.domain import Span, serial
from neutralize.registry.schemas import (
    BlockPublic,
    BufferReversalCmd,
    OperationResult,
    ProjectPublic,
    RetireCmd,
)
from tests.integration.registry.conftest import (
    ADMIN,
    CLOCK,
    VINTAGE,
    Org,
    Registry,
    refused,
    span_of,
    units,
)


def test_a_reversal_cancels_buffer_units_and_links_the_invalid_credits(registry: Registry) -> None:
    # given a forestry project with a 20% buffer and 340 kg retired for a guest
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=200)
    issued = registry.issuance(project, kg=10_000)
    assert sorted(b.kg for b in issued.blocks) == [2_000, 8_000]
    retired = service.retire(
        session=registry.session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=RetireCmd(units=units(project, 340), beneficiary="Guest", reason="travel", idempotency_key="r"),
    )
    invalid = retired.blocks[0].serial
    # when the retired credits are found invalid (a fire)
    reversal = service.reverse_buffer(
        session=registry.session,
        clock=CLOCK,
        actor=ADMIN,
        cmd=BufferReversalCmd(invalid_serial=invalid, reason="fire", idempotency_key="f"),
    )
    # then 340 kg of the buffer are cancelled, and the retired block names them, unchanged otherwise
    assert [(b.state, b.kg) for b in reversal.blocks] == [("cancelled", 340)]
    [after] = service.where_did_it_go(session=registry.session, private=True, text=invalid)
    assert (after.state, after.kg, after.retirement_id) == ("retired", 340, retired.retirement_id)
    assert after.replaced_by == reversal.blocks[0].serial
    assert registry.kg_by_state(owner) == {"held": 7_660, "retired": 340, "buffer": 1_660, "cancelled": 340}
    registry.assert_sound()


def test_a_reversal_larger_than_the_buffer_is_refused(registry: Registry) -> None:
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=10)
    issued = registry.issuance(project, kg=10_000)
    held = next(b for b in issued.blocks if b.state == "held")
    with pytest.raises(DomainError) as caught:
        service.reverse_buffer(
            session=registry.session,
            clock=CLOCK,
            actor=ADMIN,
            cmd=BufferReversalCmd(invalid_serial=held.serial, reason="fire", idempotency_key="x"),
        )
    assert caught.value.code == ErrorCode.INSUFFICIENT_UNITS
    registry.assert_sound()


def test_only_admins_reverse(registry: Registry) -> None:
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=200)
    issued = registry.issuance(project)
    with pytest.raises(DomainError) as caught:
        service.reverse_buffer(
            session=registry.session,
            clock=CLOCK,
            actor=owner.owner,
            cmd=BufferReversalCmd(invalid_serial=issued.blocks[0].serial, reason="x", idempotency_key="y"),
        )
    assert caught.value.code == ErrorCode.FORBIDDEN


def test_only_the_invalid_units_of_a_held_block_are_linked_and_the_link_goes_with_them(
    registry: Registry,
) -> None:
    # given 8,000 kg held in one block, of which ten kilograms in its middle are found invalid
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=200)
    held = next(b for b in registry.issuance(project, kg=10_000).blocks if b.state == "held")
    first = span_of(held.serial).start
    invalid = Span(first + 100, first + 109)
    reversal = service.reverse_buffer(
        session=registry.session,
        clock=CLOCK,
        actor=ADMIN,
        cmd=BufferReversalCmd(invalid_serial=serial(project.code, VINTAGE, invalid), reason="pests",
                              idempotency_key="pests"),
    )  # fmt: skip
    link = reversal.blocks[0].serial
    # then the held block is split: only the invalid units carry the link
    linked = {span_of(b.serial): b.replaced_by for b in registry.holdings(owner) if b.state == "held"}
    assert linked == {
        Span(first, first + 99): None,
        invalid: link,
        Span(first + 110, first + 7_999): None,
    }
    # and when 105 kg are retired, lowest serials first, the five invalid ones among them keep the link
    retired = service.retire(
        session=registry.session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=RetireCmd(units=units(project, 105), beneficiary="Guest", reason="travel", idempotency_key="r"),
    )
    assert [(span_of(b.serial), b.replaced_by) for b in retired.blocks] == [
        (Span(first, first + 99), None),
        (Span(first + 100, first + 104), link),
    ]
    [rest] = service.where_did_it_go(
        private=True,
        session=registry.session,
        text=serial(project.code, VINTAGE, Span(first + 105, first + 109)),
    )
    assert (rest.state, rest.replaced_by) == ("held", link)
    registry.assert_sound()


def reverse(registry: Registry, invalid: str, key: str) -> OperationResult:
    return service.reverse_buffer(
        session=registry.session,
        clock=CLOCK,
        actor=ADMIN,
        cmd=BufferReversalCmd(invalid_serial=invalid, reason="fire", idempotency_key=key),
    )


def forest(registry: Registry) -> tuple[Org, ProjectPublic, BlockPublic]:
    """A forestry project with a 20% buffer, and its 8,000 kg held block."""
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=200)
    held = next(b for b in registry.issuance(project, kg=10_000).blocks if b.state == "held")
    return owner, project, held


def test_the_same_invalid_units_are_replaced_once(registry: Registry) -> None:
    # given ten held kilograms found invalid and replaced
    owner, project, held = forest(registry)
    first = span_of(held.serial).start
    invalid = serial(project.code, VINTAGE, Span(first, first + 9))
    reverse(registry, invalid, "fire-1")
    # when the same units (or some of them) are reported again under another key, it is refused
    for again in (invalid, serial(project.code, VINTAGE, Span(first + 5, first + 14))):
        with refused(registry.session, ErrorCode.DUPLICATE):
            reverse(registry, again, registry.key("fire"))
    # and the buffer was cancelled once only
    assert registry.kg_by_state(owner) == {"held": 8_000, "buffer": 1_990, "cancelled": 10}
    registry.assert_sound()


def test_buffer_units_cancelled_as_replacements_are_not_found_invalid_in_turn(registry: Registry) -> None:
    owner, project, held = forest(registry)
    first = span_of(held.serial).start
    replacement = reverse(registry, serial(project.code, VINTAGE, Span(first, first + 9)), "fire-1")
    with refused(registry.session, ErrorCode.UNITS_NOT_AVAILABLE):
        reverse(registry, replacement.blocks[0].serial, "fire-2")
    assert registry.kg_by_state(owner) == {"held": 8_000, "buffer": 1_990, "cancelled": 10}


def test_two_reversals_of_parts_of_one_retired_block_keep_both_links(registry: Registry) -> None:
    # given 340 kg retired as one block
    owner, project, _ = forest(registry)
    retired = service.retire(
        session=registry.session,
        clock=CLOCK,
        actor=owner.owner,
        cmd=RetireCmd(units=units(project, 340), beneficiary="Guest", reason="travel", idempotency_key="r"),
    ).blocks[0]
    first = span_of(retired.serial).start
    # when two parts of it are found invalid one after the other
    one = reverse(registry, serial(project.code, VINTAGE, Span(first, first + 9)), "fire-1")
    two = reverse(registry, serial(project.code, VINTAGE, Span(first + 10, first + 19)), "fire-2")
    # then the retired block names both replacements: the second did not overwrite the first
    [after] = service.where_did_it_go(session=registry.session, text=retired.serial)
    assert after.replaced_by == f"{one.blocks[0].serial}, {two.blocks[0].serial}"
    registry.assert_sound()


def test_a_replacement_from_many_buffer_blocks_links_every_serial_in_full(registry: Registry) -> None:
    # given four quarterly issuances, each setting 200 kg aside in a buffer block of its own
    owner = registry.organisation()
    project = registry.project(owner, nature_based=True, buffer_permille=200)
    quarters = [(date(2025, m, 1), date(2025, m + 2, 28)) for m in (1, 4, 7, 10)]
    issued = [registry.issuance(project, kg=1_000, period=quarter) for quarter in quarters]
    held = next(b for b in issued[0].blocks if b.state == "held")
    # when 700 kg of the first quarter's held credits are found invalid
    first = span_of(held.serial).start
    invalid = serial(project.code, VINTAGE, Span(first, first + 699))
    reversal = reverse(registry, invalid, "fire")
    # then all four buffer blocks replace them, and the link names each one whole
    assert len(reversal.blocks) == 4
    [linked, _] = service.where_did_it_go(session=registry.session, text=held.serial)
    assert linked.replaced_by == ", ".join(b.serial for b in reversal.blocks)
    assert len(linked.replaced_by) > 120
    registry.assert_sound()
