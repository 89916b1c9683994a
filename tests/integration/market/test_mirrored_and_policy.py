"""Shares of home-registry stock, pending certificates, and the quality policy's choices."""

from __future__ import annotations

from datetime import timedelta

import pytest

from neutralize.access.domain import SYSTEM
from neutralize.certificates import service as certificates
from neutralize.core.errors import ErrorCode
from neutralize.market import service
from neutralize.market.domain import Preference
from neutralize.market.schemas import ListingCreate
from neutralize.registry import mirror
from neutralize.registry import service as registry
from neutralize.registry.domain import ProjectStatus
from neutralize.registry.schemas import Labels, ProjectCreate
from tests.integration.registry.conftest import ADMIN, VERIFIER, refused, verra_serial

from .conftest import Market


def test_a_share_of_home_stock_is_pending_until_the_home_retirement_is_recorded(market: Market) -> None:
    # given 5 t of Verra stock at home, listed
    listing = market.mirrored_listing(tonnes=5)
    # when a guest buys 340 kg, then the order is certified with a pending certificate
    order = market.buy(340, listing_id=listing.id)
    assert order.status == "certified"
    number = order.certificate_number or ""
    pending = certificates.get(session=market.session, number=number)["certificate"]
    assert pending["status"] == "pending" and pending["version"] == 1
    assert "pending" in pending["claim"]["en"]
    assert certificates.verify(session=market.session, keys=market.keys, number=number).ok
    # and the operator is told to retire one whole tonne at home
    [todo] = service.retire_pending(session=market.session, clock=market.clock, settings=market.settings)
    assert (todo.pending_kg, todo.tonnes_to_retire, todo.overdue) == (340, 1, False)
    # when the operator records that tonne and the shares are allocated
    home = market.record_home_retirement(1)
    allocated = service.allocate_pending(
        session=market.session, clock=market.clock, settings=market.settings, keys=market.keys
    )
    # then the certificate is signed again as retired, naming the home retirement and its share
    assert allocated == [order.id]
    document = certificates.get(session=market.session, number=number)["certificate"]
    assert document["status"] == "retired" and document["version"] == 2
    evidence = document["evidence"]
    assert (evidence["home_retirement_id"], evidence["share_kg"]) == ("HOME-1", 340)
    assert (
        evidence["merkle_root"]
        == mirror.home_retirement_public(session=market.session, retirement_id=home.id).merkle_root
    )
    assert certificates.verify(session=market.session, keys=market.keys, number=number).ok
    # and the next buyer's share goes straight into the tonne's remaining 660 kg
    second = market.buy(660, listing_id=listing.id)
    assert (
        certificates.get(session=market.session, number=second.certificate_number or "")["certificate"][
            "status"
        ]
        == "retired"
    )
    assert service.retire_pending(session=market.session, clock=market.clock, settings=market.settings) == []
    assert service.reconcile(session=market.session).ok


def test_shares_waiting_too_long_raise_an_alert(market: Market) -> None:
    listing = market.mirrored_listing()
    market.buy(340, listing_id=listing.id)
    assert service.alerts(session=market.session, clock=market.clock, settings=market.settings) == []
    market.clock.advance(timedelta(days=31))
    [alert] = service.alerts(session=market.session, clock=market.clock, settings=market.settings)
    assert "VCS-1340" in alert and "retire 1 t" in alert


def test_home_stock_is_not_listed_twice(market: Market) -> None:
    market.mirrored_listing(tonnes=5)
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        service.create_listing(
            session=market.session,
            clock=market.clock,
            actor=SYSTEM,
            cmd=ListingCreate(
                project_code="VCS-1340",
                vintage=2020,
                price_per_tonne_minor=1,
                available_kg=1,
                seller_organisation_id=market.registry.organisation().id,
            ),
        )


def _legacy_listing(market: Market, price: int) -> str:
    org = market.registry.organisation()
    legacy = registry.create_project(
        session=market.session,
        clock=market.clock,
        actor=org.owner,
        cmd=ProjectCreate(
            code="CCER-LEGACY-1",
            name="Legacy wind farm",
            standard="CCER",
            methodology="CM-001-V01",
            methodology_version="16.0",
            project_type="wind",
            credit_type="avoidance",
            nature_based=False,
            country="CN",
            region="CN-NM",
            owner_organisation_id=org.id,
            labels=Labels(legacy_ccer=True),
        ),
    )
    for status, actor in (
        (ProjectStatus.SUBMITTED, org.owner),
        (ProjectStatus.VALIDATED, VERIFIER),
        (ProjectStatus.REGISTERED, ADMIN),
    ):
        legacy = market.registry.move(legacy, status, actor)
    market.registry.issuance(legacy, kg=5_000)
    return service.create_listing(
        session=market.session,
        clock=market.clock,
        actor=org.owner,
        cmd=ListingCreate(
            project_code=legacy.code, vintage=2025, price_per_tonne_minor=price, available_kg=5_000
        ),
    ).id


def test_the_default_choice_never_picks_a_flagged_listing(market: Market) -> None:
    # given a cheap legacy CCER listing and a dearer CDCER one
    legacy = _legacy_listing(market, price=1_000)
    good = market.native_seller(price=6_000).listing
    flagged = service.get_listing(session=market.session, listing_id=legacy)
    assert flagged.verdict == "flag" and "legacy CCER" in flagged.labels
    # when the platform chooses the cheapest, then it takes the CDCER listing
    assert market.quote(340, preference=Preference.CHEAPEST).listing.id == good.id
    # but a buyer may still pick the flagged listing knowingly, and sees why it is flagged
    chosen = market.quote(340, listing_id=legacy)
    assert chosen.listing.findings[0].rule == "legacy_ccer"
    # when an admin excludes legacy CCER, then it is refused outright
    policy = dict(service.current_policy(session=market.session))
    policy["rules"] = [dict(r, verdict="exclude") if r["id"] == "legacy_ccer" else r for r in policy["rules"]]
    service.set_policy(session=market.session, clock=market.clock, actor=SYSTEM, document=policy)
    with refused(market.session, ErrorCode.LISTING_EXCLUDED):
        market.quote(340, listing_id=legacy)


def test_removals_only_and_local_first(market: Market) -> None:
    transit = market.native_seller(price=3_000).listing
    with refused(market.session, ErrorCode.NO_ELIGIBLE_LISTING):
        market.quote(340, preference=Preference.REMOVALS_ONLY)
    assert market.quote(340, preference=Preference.LOCAL_FIRST, buyer_region="CN-SC").listing.id == transit.id


def test_a_bad_policy_is_refused(market: Market) -> None:
    with refused(market.session, ErrorCode.INVALID_REQUEST):
        service.set_policy(
            session=market.session,
            clock=market.clock,
            actor=SYSTEM,
            document={"rules": [{"id": "x", "when": {"colour": "green"}, "verdict": "flag", "reason": "?"}]},
        )


@pytest.mark.parametrize(
    "when",
    [
        {"vintage_before": "2016"},
        {"label": ["legacy_ccer"]},
        {"standard_in": "CCER"},
        {"no_quality_label": 1},
    ],
)
def test_a_policy_with_values_of_the_wrong_kind_is_refused(market: Market, when: dict[str, object]) -> None:
    with refused(market.session, ErrorCode.INVALID_REQUEST):
        service.set_policy(
            session=market.session, clock=market.clock, actor=SYSTEM,
            document={"rules": [{"id": "x", "when": when, "verdict": "flag", "reason": "?"}]},
        )  # fmt: skip


def test_home_stock_held_for_orders_is_not_listed_again(market: Market) -> None:
    # given 5 t of home stock, all listed, and an unpaid order holding all of it
    listing = market.mirrored_listing(tonnes=5)
    market.order(market.quote(5_000, listing_id=listing.id))
    # then no second listing of that stock is possible
    with refused(market.session, ErrorCode.INSUFFICIENT_UNITS):
        service.create_listing(
            session=market.session, clock=market.clock, actor=SYSTEM,
            cmd=ListingCreate(project_code="VCS-1340", vintage=2020, price_per_tonne_minor=1, available_kg=1,
                              seller_organisation_id=listing.seller_organisation_id),
        )  # fmt: skip


def test_a_share_goes_only_into_a_retirement_of_its_own_vintage(market: Market) -> None:
    # given stock of two vintages, and a home retirement recorded from the 2020 holding
    listing_2020 = market.mirrored_listing(tonnes=2)
    mirror.record_holding(
        session=market.session, clock=market.clock, actor=SYSTEM,
        cmd=mirror.HomeHoldingCreate(project_code="VCS-1340", home_account="Platform account 1",
                                     serial=verra_serial(1340, 6, 7, year=2021), vintage=2021,
                                     quantity_tonnes=2),
    )  # fmt: skip
    listing_2021 = service.create_listing(
        session=market.session, clock=market.clock, actor=SYSTEM,
        cmd=ListingCreate(project_code="VCS-1340", vintage=2021, price_per_tonne_minor=9_000,
                          available_kg=2_000, seller_organisation_id=listing_2020.seller_organisation_id),
    )  # fmt: skip
    market.record_home_retirement(1)  # draws on the first holding: vintage 2020
    # when a 2021 share is bought, it waits (pending) rather than going into the 2020 retirement
    order = market.buy(300, listing_id=listing_2021.id)
    document = certificates.get(session=market.session, number=order.certificate_number or "")["certificate"]
    assert document["status"] == "pending" and document["project"]["vintage"] == 2021
    # and a 2020 share goes straight into the 2020 retirement
    other = market.buy(300, listing_id=listing_2020.id)
    assert certificates.verify(
        session=market.session, keys=market.keys, number=other.certificate_number or ""
    ).ok
