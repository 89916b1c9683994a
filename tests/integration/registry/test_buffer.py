"""Buffer reversals: credits found invalid are replaced from the forestry buffer."""

from __future__ import annotations

import pytest

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import service
from neutralize.registry.domain import Span, serial
from neutralize.registry.schemas import BufferReversalCmd, RetireCmd
from tests.integration.registry.conftest import ADMIN, CLOCK, VINTAGE, Registry, span_of, units


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
    [after] = service.where_did_it_go(session=registry.session, text=invalid)
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
        session=registry.session, text=serial(project.code, VINTAGE, Span(first + 105, first + 109))
    )
    assert (rest.state, rest.replaced_by) == ("held", link)
    registry.assert_sound()
