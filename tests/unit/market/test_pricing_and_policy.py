"""Market rules without a database: the price split, rounding, order states, policy and choice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.market.domain import (
    Candidate,
    CreditFacts,
    FeeSchedule,
    OrderStatus,
    Preference,
    Verdict,
    assess,
    check_transition,
    choose,
    clean_text,
    kilograms_to_offset,
    price,
    verdict_of,
    whole_tonnes_to_retire,
)
from neutralize.market.service import default_policy

FEES = FeeSchedule(platform_fee_bp=800, platform_fee_min_minor=100, tax_bp=600, payment_fee_bp=60)


def test_340_kg_at_60_yuan_a_tonne_splits_to_the_fen() -> None:
    split = price(kg=340, price_per_tonne_minor=6_000, currency="CNY", fees=FEES)
    # 340 kg x 60.00 / t = 20.40; 8 % platform fee 1.632 -> 1.63; 6 % tax on the fee 0.0978 -> 0.10
    assert (split.credits_minor, split.platform_fee_minor, split.tax_minor) == (2_040, 163, 10)
    assert split.payment_fee_minor == 13  # 0.6 % of 22.13 = 0.13278 -> 0.13
    assert split.total_minor == 2_226
    assert split.owner_share_permille == 916  # 20.40 of 22.26 reaches the project owner


def test_the_minimum_platform_fee_applies_to_small_purchases() -> None:
    split = price(kg=10, price_per_tonne_minor=6_000, currency="CNY", fees=FEES)
    assert (split.credits_minor, split.platform_fee_minor, split.tax_minor) == (60, 100, 6)


@given(
    kg=st.integers(1, 100_000_000),
    per_tonne=st.integers(1, 10**7),
    fee_bp=st.integers(0, 5_000),
    tax_bp=st.integers(0, 5_000),
    pay_bp=st.integers(0, 1_000),
)
def test_every_minor_unit_is_accounted_for(
    kg: int, per_tonne: int, fee_bp: int, tax_bp: int, pay_bp: int
) -> None:
    fees = FeeSchedule(platform_fee_bp=fee_bp, platform_fee_min_minor=0, tax_bp=tax_bp, payment_fee_bp=pay_bp)
    split = price(kg=kg, price_per_tonne_minor=per_tonne, currency="CNY", fees=fees)
    exact_credits = Decimal(kg * per_tonne) / 1000
    assert abs(split.credits_minor - exact_credits) <= Decimal("0.5")
    assert (
        split.total_minor
        == split.credits_minor + split.platform_fee_minor + split.tax_minor + split.payment_fee_minor
    )
    assert min(split.credits_minor, split.platform_fee_minor, split.tax_minor, split.payment_fee_minor) >= 0
    assert 0 <= split.owner_share_permille <= 1000


@pytest.mark.parametrize("kg", [0, -1, 100_000_001])
def test_masses_outside_the_range_are_refused(kg: int) -> None:
    with pytest.raises(DomainError) as caught:
        price(kg=kg, price_per_tonne_minor=6_000, currency="CNY", fees=FEES)
    assert caught.value.code is ErrorCode.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("footprint", "kg"), [("339.2", 340), ("340", 340), ("340.000001", 341), ("0.001", 1)]
)
def test_footprints_round_up_to_whole_kilograms(footprint: str, kg: int) -> None:
    assert kilograms_to_offset(Decimal(footprint)) == kg


@pytest.mark.parametrize("footprint", ["0", "-1", "NaN", "Infinity"])
def test_no_kilograms_for_nothing(footprint: str) -> None:
    with pytest.raises(DomainError):
        kilograms_to_offset(Decimal(footprint))


def test_a_paid_order_can_only_end_retired_allocated_or_refunded() -> None:
    for target in OrderStatus:
        allowed = target in (OrderStatus.RETIRED, OrderStatus.ALLOCATED, OrderStatus.REFUNDED)
        if allowed:
            check_transition(OrderStatus.PAID, target)
        else:
            with pytest.raises(DomainError):
                check_transition(OrderStatus.PAID, target)
    with pytest.raises(DomainError):
        check_transition(OrderStatus.CERTIFIED, OrderStatus.REFUNDED)


def facts(**changes: object) -> CreditFacts:
    base: dict[str, object] = {
        "standard": "CDCER",
        "vintage": 2025,
        "credit_type": "avoidance",
        "nature_based": False,
        "project_type": "transport",
        "country": "CN",
        "region": "CN-SC",
        "labels": {"carbon_inclusive": True},
    }
    base.update(changes)
    return CreditFacts(**base)  # type: ignore[arg-type]


def test_the_default_policy_flags_legacy_ccer_old_vintages_and_unlabelled_offsets() -> None:
    policy = default_policy()
    assert verdict_of(assess(facts(), policy)) is Verdict.OFFER
    legacy = facts(standard="CCER", labels={"legacy_ccer": True})
    assert [f.rule for f in assess(legacy, policy)] == ["legacy_ccer"]
    assert [f.rule for f in assess(facts(vintage=2012), policy)] == ["old_vintage"]
    assert [f.rule for f in assess(facts(standard="VCS", labels={}), policy)] == ["no_quality_label"]
    assert assess(facts(standard="VCS", labels={"icvcm_ccp": True}), policy) == []


def candidate(
    listing_id: str, per_tonne: int, verdict: Verdict = Verdict.OFFER, **changes: object
) -> Candidate:
    return Candidate(listing_id, per_tonne, 10_000, facts(**changes), verdict)


def test_the_platform_picks_the_cheapest_offered_listing_never_a_flagged_one() -> None:
    pool = [candidate("a", 1_000, Verdict.FLAG), candidate("b", 5_000), candidate("c", 4_000)]
    assert choose(pool, kg=340, preference=Preference.CHEAPEST).listing_id == "c"
    local = [candidate("far", 1_000, region="CN-BJ", country="CN"), candidate("near", 9_000)]
    assert choose(local, kg=340, preference=Preference.LOCAL_FIRST, buyer_region="CN-SC").listing_id == "near"
    removals = [candidate("a", 1_000), candidate("r", 9_000, credit_type="removal")]
    assert choose(removals, kg=340, preference=Preference.REMOVALS_ONLY).listing_id == "r"
    with pytest.raises(DomainError) as caught:
        choose([candidate("a", 1_000, Verdict.FLAG)], kg=340, preference=Preference.CHEAPEST)
    assert caught.value.code is ErrorCode.NO_ELIGIBLE_LISTING


@pytest.mark.parametrize("text", ["a\x00b", "a\nb", "\u202eevil", "a\u200bb"])
def test_control_and_invisible_characters_are_refused(text: str) -> None:
    with pytest.raises(DomainError) as caught:
        clean_text(text, field="name", max_length=200)
    assert caught.value.code is ErrorCode.INVALID_TEXT


def test_names_keep_their_script() -> None:
    assert clean_text("  张伟 ", field="name", max_length=200) == "张伟"
    assert clean_text("Zoë", field="name", max_length=200) == "Zoë"


@pytest.mark.parametrize(
    ("pending", "room", "tonnes"), [(340, 0, 1), (1_000, 0, 1), (1_001, 0, 2), (340, 660, 0), (1_340, 660, 1)]
)
def test_whole_tonnes_to_retire(pending: int, room: int, tonnes: int) -> None:
    assert whole_tonnes_to_retire(pending, room) == tonnes
