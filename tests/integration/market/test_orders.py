"""Orders from quote to certificate: native retirements, idempotency, payments and expiry."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM
from neutralize.certificates import service as certificates
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market import service
from neutralize.market.gateways.base import EventKind, GatewayEvent
from neutralize.market.models import Order
from neutralize.market.schemas import Beneficiary, ListingCreate, OrderCreate, PayoutCreate
from neutralize.registry import service as registry
from neutralize.registry.schemas import BufferReversalCmd, ProjectTransition
from tests.integration.registry.conftest import refused, span_of

from .conftest import Market


def test_a_guest_offsets_340_kg_and_gets_a_certificate_naming_the_serials(market: Market) -> None:
    # given a project owner listing 10 t of native credits at 60 CNY a tonne
    seller = market.native_seller()
    # when a guest quotes 340 kg, orders, pays and the order is fulfilled
    quote = market.quote(340)
    order = market.order(quote, name="张伟")
    assert order.status == "payment_pending" and order.simulated_payment
    assert market.notify(order) == "paid"
    done = market.fulfil(order)
    # then the order is certified, and the certificate names the exact retired sub-range
    assert done.status == "certified" and done.certificate_number
    envelope = certificates.get(session=market.session, number=done.certificate_number)
    document = envelope["certificate"]
    assert document["kg_co2e"] == 340 and document["holder"]["display_name"] == "张伟"
    serials = document["evidence"]["serials"]
    assert sum(b.kg for s in serials for b in registry.where_did_it_go(session=market.session, text=s)) == 340
    assert document["claim"]["en"].startswith("340 kg CO2e offset through the retirement of 340 kg")
    assert "碳中和" not in document["claim"]["zh"]
    # and the money split reached the owner's settlement exactly
    assert document["money"]["to_project_owner_minor"] == quote.split.credits_minor == 2_040
    report = service.settlements(session=market.session)
    owed = {s.organisation_id: s.owed_minor for s in report.settlements}
    assert owed[seller.org.id] == 2_040 and report.balanced
    sales = service.project_sales(session=market.session, project_code=seller.project.code)
    assert sales[0].kg_sold == 340 and sales[0].passed_on_minor == 2_040 and sales[0].reconciled
    # and the certificate verifies live against the registry
    check = certificates.verify(session=market.session, keys=market.keys, number=done.certificate_number)
    assert check.ok, check.checks
    market.registry.assert_sound()
    assert service.reconcile(session=market.session).ok


def test_many_small_orders_against_one_block_each_get_their_own_sub_range(market: Market) -> None:
    seller = market.native_seller(kg=1_000)
    orders = [market.buy(kg) for kg in (1, 340, 7, 652)]
    documents = [
        certificates.get(session=market.session, number=o.certificate_number or "")["certificate"]
        for o in orders
    ]
    serials = [s for d in documents for s in d["evidence"]["serials"]]
    assert len(serials) == 4 and len(set(serials)) == 4
    # the four sub-ranges tile the 1,000 kg block exactly: every kilogram retired once
    found = sorted(span_of(s) for s in serials)
    assert [f.size for f in found] == [1, 340, 7, 652]
    assert all(a.end + 1 == b.start for a, b in itertools.pairwise(found))
    assert market.registry.kg_by_state(seller.org) == {"retired": 1_000}
    market.registry.assert_sound()


def test_a_retried_order_returns_the_first_and_another_request_with_its_key_is_refused(
    market: Market,
) -> None:
    market.native_seller()
    quote = market.quote(340)
    first = market.order(quote, key="guest-key-0001")
    again = market.order(quote, key="guest-key-0001")
    assert again.id == first.id and again.status == "payment_pending"
    with refused(market.session, ErrorCode.IDEMPOTENCY_CONFLICT):
        market.order(quote, key="guest-key-0001", name="Someone else")


def test_webhooks_twice_out_of_order_and_late_have_one_effect(market: Market) -> None:
    market.native_seller()
    order = market.order(market.quote(340))
    assert market.notify(order, event_id="evt-1") == "paid"
    assert market.notify(order, event_id="evt-1") == "duplicate: no effect"
    assert market.notify(order, EventKind.FAILED, event_id="evt-0").startswith("no effect")
    assert market.notify(order, event_id="evt-2").startswith("no effect")
    done = market.fulfil(order)
    assert market.fulfil(order).certificate_number == done.certificate_number
    report = service.settlements(session=market.session)
    assert sum(v for k, v in report.accounts.items() if k.startswith("gateway:")) == order.split.total_minor


def test_a_bad_signature_and_a_replayed_notification_are_refused(market: Market) -> None:
    market.native_seller()
    order = market.order(market.quote(340))
    ref = order.next_action["url"].rsplit("/", 1)[1]
    headers, body = market.sandbox.notification(
        provider_ref=ref,
        kind=EventKind.SUCCEEDED,
        amount_minor=order.split.total_minor,
        currency="CNY",
        signed_at=market.clock.now(),
    )
    forged = body.replace(b'"amount_minor":', b'"amount_minor":1')

    with pytest.raises(DomainError) as caught:
        market.sandbox.parse_webhook(headers=headers, body=forged, now=market.clock.now())
    assert caught.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID
    with pytest.raises(DomainError) as caught:
        market.sandbox.parse_webhook(headers=headers, body=body, now=market.clock.now() + timedelta(hours=1))
    assert caught.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID
    with pytest.raises(DomainError) as caught:
        market.sandbox.parse_webhook(headers={}, body=body, now=market.clock.now())
    assert caught.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID


def test_a_declined_payment_voids_the_reservation(market: Market) -> None:
    seller = market.native_seller()
    order = market.order(market.quote(340))
    assert market.notify(order, EventKind.FAILED) == "failed: reservation voided"
    assert service.order_public(session=market.session, order_id=order.id).status == "failed"
    assert market.registry.kg_by_state(seller.org) == {"held": 10_000}
    assert service.get_listing(session=market.session, listing_id=seller.listing.id).available_kg == 10_000


def test_stale_reservations_expire_and_a_late_payment_takes_the_credits_again(market: Market) -> None:
    seller = market.native_seller()
    order = market.order(market.quote(340))
    market.clock.advance(timedelta(hours=1))
    assert service.expire(session=market.session, clock=market.clock) == [order.id]
    assert market.registry.kg_by_state(seller.org) == {"held": 10_000}
    # the payment arrives late: the credits are still there, so they are reserved again and retired
    assert market.notify(order) == "paid late: credits reserved again"
    assert market.fulfil(order).status == "certified"
    assert market.registry.kg_by_state(seller.org) == {"held": 9_660, "retired": 340}


def test_a_late_payment_for_credits_sold_meanwhile_is_refunded(market: Market) -> None:
    seller = market.native_seller(kg=1_000)
    order = market.order(market.quote(1_000))
    market.clock.advance(timedelta(hours=1))
    service.expire(session=market.session, clock=market.clock)
    market.buy(1_000)  # someone else buys the whole tonne
    assert market.notify(order) == "paid late: refunded, the credits were gone"
    late = service.order_public(session=market.session, order_id=order.id)
    assert late.status == "refunded" and late.note and "sold to others" in late.note
    assert service.settlements(session=market.session).balanced
    assert market.registry.kg_by_state(seller.org) == {"retired": 1_000}
    assert service.reconcile(session=market.session).ok


def test_a_paid_order_left_unfulfilled_is_found_by_reconcile_and_finished(market: Market) -> None:
    market.native_seller()
    order = market.order(market.quote(340))
    market.notify(order)  # the process dies here, before fulfilment
    report = service.reconcile(session=market.session)
    assert not report.ok and order.id in report.problems[0]
    for order_id in service.paid_order_ids(session=market.session):
        market.fulfil(service.order_public(session=market.session, order_id=order_id))
    assert service.reconcile(session=market.session).ok


def test_bad_orders_are_refused_with_codes(market: Market) -> None:
    seller = market.native_seller(kg=1_000)
    quote = market.quote(340)
    with refused(market.session, ErrorCode.INVALID_TEXT):
        market.order(quote, name="Li\x00Wei")
    with refused(market.session, ErrorCode.INVALID_TEXT):
        market.order(quote, name="Li\u202eWei")
    with refused(market.session, ErrorCode.CURRENCY_MISMATCH):
        market.order(quote, expected_currency="EUR")
    with refused(market.session, ErrorCode.CURRENCY_MISMATCH):
        market.quote(340, currency="EUR", listing_id=seller.listing.id)
    with refused(market.session, ErrorCode.NOT_FOUND):
        market.quote(340, listing_id="lst_nope")
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        market.quote(1_001, listing_id=seller.listing.id)
    with refused(market.session, ErrorCode.NO_ELIGIBLE_LISTING):
        market.quote(1_001)
    market.clock.advance(timedelta(hours=1))
    with refused(market.session, ErrorCode.QUOTE_EXPIRED):
        market.order(quote)


def test_only_the_listing_kilograms_are_sold(market: Market) -> None:
    seller = market.native_seller(kg=10_000, listed_kg=500)
    market.buy(400)
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        market.quote(101, listing_id=seller.listing.id)
    assert market.registry.kg_by_state(seller.org) == {"held": 9_600, "retired": 400}


def test_payouts_never_exceed_what_an_owner_is_owed(market: Market, session: Session) -> None:
    seller = market.native_seller()
    market.buy(1_000)
    paid = service.payout(
        session=session,
        clock=market.clock,
        actor=SYSTEM,
        cmd=PayoutCreate(
            organisation_id=seller.org.id,
            amount_minor=5_000,
            reference="bank 001",
            idempotency_key="payout-1",
        ),
    )
    assert (paid.owed_minor, paid.paid_minor, paid.balance_minor) == (6_000, 5_000, 1_000)
    # a retry with the same key pays nothing more
    again = service.payout(
        session=session,
        clock=market.clock,
        actor=SYSTEM,
        cmd=PayoutCreate(
            organisation_id=seller.org.id,
            amount_minor=5_000,
            reference="bank 001",
            idempotency_key="payout-1",
        ),
    )
    assert again.paid_minor == 5_000
    with refused(session, ErrorCode.INSUFFICIENT_UNITS):
        service.payout(
            session=session,
            clock=market.clock,
            actor=SYSTEM,
            cmd=PayoutCreate(
                organisation_id=seller.org.id,
                amount_minor=1_001,
                reference="bank 002",
                idempotency_key="payout-2",
            ),
        )
    assert service.settlements(session=session).balanced


def test_owners_list_only_what_they_hold(market: Market) -> None:

    seller = market.native_seller(kg=1_000, listed_kg=1)
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        service.create_listing(
            session=market.session,
            clock=market.clock,
            actor=seller.org.owner,
            cmd=ListingCreate(
                project_code=seller.project.code, vintage=2025, price_per_tonne_minor=1, available_kg=1_001
            ),
        )
    stranger = market.registry.organisation()
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        service.create_listing(
            session=market.session,
            clock=market.clock,
            actor=stranger.owner,
            cmd=ListingCreate(
                project_code=seller.project.code, vintage=2025, price_per_tonne_minor=1, available_kg=1
            ),
        )


def test_credits_found_invalid_show_their_replacement_on_the_certificate(market: Market) -> None:

    # given a forestry project (20 % buffer) and a guest's certificate for 340 kg of it
    market.native_seller(kg=10_000, buffer_permille=200)
    order = market.buy(340)
    number = order.certificate_number or ""
    [serial] = certificates.get(session=market.session, number=number)["certificate"]["evidence"]["serials"]
    # when those credits are found invalid and replaced from the buffer
    reversal = registry.reverse_buffer(
        session=market.session,
        clock=market.clock,
        actor=SYSTEM,
        cmd=BufferReversalCmd(invalid_serial=serial, reason="fire", idempotency_key="fire-1"),
    )
    # then verification still finds the retirement, and shows the replacement
    check = certificates.verify(session=market.session, keys=market.keys, number=number)
    assert check.ok and check.replaced_by == [reversal.blocks[0].serial]


def test_an_offline_payment_is_confirmed_by_an_operator(market: Market) -> None:

    market.native_seller()
    order = market.order(market.quote(340, gateway="offline"))
    assert order.next_action["kind"] == "bank_transfer" and not order.simulated_payment
    assert order.split.payment_fee_minor == 0
    with refused(market.session, ErrorCode.FORBIDDEN):
        service.confirm_offline_payment(
            session=market.session,
            clock=market.clock,
            settings=market.settings,
            actor=market.registry.organisation().member,
            order_id=order.id,
            reference="BANK-1",
        )
    effect = service.confirm_offline_payment(
        session=market.session,
        clock=market.clock,
        settings=market.settings,
        actor=SYSTEM,
        order_id=order.id,
        reference="BANK-1",
    )
    assert effect == "paid"
    assert market.fulfil(order).status == "certified"


def test_a_payment_of_the_wrong_amount_pays_nothing_and_reconcile_reports_it(market: Market) -> None:

    market.native_seller()
    order = market.order(market.quote(340))
    ref = order.next_action["url"].rsplit("/", 1)[1]
    short = GatewayEvent(
        event_id="evt-short", provider_ref=ref, kind=EventKind.SUCCEEDED, amount_minor=1, currency="CNY"
    )
    effect = service.apply_payment_event(
        session=market.session, clock=market.clock, settings=market.settings, gateway="sandbox", event=short
    )
    assert effect.startswith("refused")
    assert service.order_public(session=market.session, order_id=order.id).status == "payment_pending"
    report = service.reconcile(session=market.session)
    assert not report.ok and "evt-short" in report.problems[0]


def test_a_refused_order_leaves_nothing_behind(market: Market) -> None:
    # given a quote for the whole listing, and someone buying one kilogram of it first
    seller = market.native_seller(kg=5_000)
    quote = market.quote(5_000, listing_id=seller.listing.id)
    market.buy(1)
    orders_before = market.session.scalar(select(func.count()).select_from(Order))
    # when the order is refused after its first writes (the listing no longer has 5 t)
    with refused(market.session, ErrorCode.UNITS_NOT_AVAILABLE):
        cmd = OrderCreate(
            quote_id=quote.id, beneficiary=Beneficiary(display_name="Li"), idempotency_key="whole-0001"
        )
        service.create_order(session=market.session, clock=market.clock, settings=market.settings, cmd=cmd)
    # then nothing of it is left, even in a unit of work that goes on: no order, the listing's count
    assert market.session.scalar(select(func.count()).select_from(Order)) == orders_before
    assert service.get_listing(session=market.session, listing_id=seller.listing.id).available_kg == 4_999
    assert service.reconcile(session=market.session).ok


def test_a_refund_of_a_paid_order_gives_its_credits_back(market: Market) -> None:
    seller = market.native_seller(kg=1_000)
    order = market.order(market.quote(400))
    market.notify(order)
    service.refund(
        session=market.session, clock=market.clock, settings=market.settings, actor=SYSTEM,
        order_id=order.id, reason="the buyer asked",
    )  # fmt: skip
    assert market.registry.kg_by_state(seller.org) == {"held": 1_000}
    assert service.get_listing(session=market.session, listing_id=seller.listing.id).available_kg == 1_000
    report = service.reconcile(session=market.session)
    assert report.ok, report.problems
    assert service.settlements(session=market.session).balanced


def test_a_payment_after_cancellation_is_refunded(market: Market) -> None:
    market.native_seller()
    order = market.order(market.quote(340))
    service.cancel_order(session=market.session, clock=market.clock, order_id=order.id)
    assert market.notify(order) == "paid after cancellation: refunded"
    assert service.order_public(session=market.session, order_id=order.id).status == "refunded"


def test_two_offline_payments_with_the_same_bank_reference_both_count(market: Market) -> None:
    market.native_seller()
    first = market.order(market.quote(10, gateway="offline"))
    second = market.order(market.quote(20, gateway="offline"))
    effects = [
        service.confirm_offline_payment(
            session=market.session,
            clock=market.clock,
            settings=market.settings,
            actor=SYSTEM,
            order_id=o.id,
            reference="BANK-BATCH-7",
        )
        for o in (first, second)
    ]
    assert effects == ["paid", "paid"]


@pytest.mark.parametrize("name", ["ACME, now carbon neutral", "Net-Zero Jane", "Müller klimaneutral GmbH"])
def test_a_name_that_carries_a_claim_is_refused(market: Market, name: str) -> None:
    market.native_seller()
    with refused(market.session, ErrorCode.CLAIM_NOT_SUPPORTED):
        market.order(market.quote(10), name=name)


def test_an_event_named_for_neutrality_is_still_only_named(market: Market) -> None:
    market.native_seller()
    order = market.order(market.quote(10), name="天府碳中和论坛 Tianfu Carbon Neutrality Forum")
    market.notify(order)
    number = market.fulfil(order).certificate_number or ""
    claim = certificates.get(session=market.session, number=number)["certificate"]["claim"]
    assert claim["en"].endswith("on behalf of “天府碳中和论坛 Tianfu Carbon Neutrality Forum”.")


def test_an_owner_cannot_list_the_same_kilograms_twice(market: Market) -> None:
    seller = market.native_seller(kg=5_000)
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        service.create_listing(
            session=market.session,
            clock=market.clock,
            actor=seller.org.owner,
            cmd=ListingCreate(
                project_code=seller.project.code, vintage=2025, price_per_tonne_minor=1, available_kg=1
            ),
        )


def test_a_project_suspended_after_an_order_holds_its_paid_order_for_an_admin(market: Market) -> None:
    # given an order for 340 kg of a native listing, and then its project suspended
    seller = market.native_seller()
    order = market.order(market.quote(340, listing_id=seller.listing.id))
    registry.transition_project(
        session=market.session,
        clock=market.clock,
        actor=SYSTEM,
        project_code=seller.project.code,
        cmd=ProjectTransition.model_validate({"to_status": "suspended"}),
    )
    # when the payment arrives, the order is paid and left so, its units still reserved for it
    assert market.notify(order) == "paid"
    assert market.fulfil(order).status == "paid"
    # and reconcile names it with the reason, for an admin to refund it
    report = service.reconcile(session=market.session)
    assert any(
        order.id in p and f"its project {seller.project.code} is suspended" in p for p in report.problems
    )
    # and the listing is no longer on offer
    assert seller.listing.id not in {listing.id for listing in service.list_listings(session=market.session)}
    with refused(market.session, ErrorCode.LISTING_EXCLUDED):
        market.quote(10, listing_id=seller.listing.id)
