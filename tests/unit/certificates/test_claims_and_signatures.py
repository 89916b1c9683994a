"""Claim wording from the policy, reserved phrases, and signatures checked with published keys only."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from neutralize.certificates.domain import (
    ClaimFacts,
    ClaimKind,
    reserved_phrases_in,
    word_claim,
    word_neutrality_claim,
)
from neutralize.certificates.service import claims_policy, new_number, verify_offline
from neutralize.core.canonical import canonical_json
from neutralize.core.clock import FixedClock
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import KeyRing
from neutralize.web.i18n import LANGUAGES

SRC = Path(__file__).resolve().parents[3] / "src" / "neutralize"
FACTS = ClaimFacts(
    kg=340, standard="CDCER", project="Chengdu metro riders", vintage=2025, holder="张伟", registry="CDCER"
)


def test_a_contribution_claim_in_every_language() -> None:
    claim = word_claim(claims_policy(), ClaimKind.CONTRIBUTION, FACTS)
    assert claim["en"] == (
        "340 kg CO2e offset through the retirement of 340 kg of CDCER credits from Chengdu metro riders "
        "(vintage 2025) on behalf of “张伟”."
    )
    assert claim["zh"].startswith("通过注销") and "抵消340千克二氧化碳当量" in claim["zh"]
    assert set(claim) == {"en", "zh", "de", "nl"}


@pytest.mark.parametrize("kind", [ClaimKind.CONTRIBUTION, ClaimKind.CONTRIBUTION_PENDING])
def test_no_claim_template_uses_reserved_wording(kind: str) -> None:
    for language, template in claims_policy()["claims"][kind].items():
        assert reserved_phrases_in(template, claims_policy()) == [], (kind, language)


def test_templates_and_pages_never_use_reserved_wording() -> None:
    """Every shipped template and translation catalogue is scanned, as text, for every language."""
    scanned = 0
    for path in [*SRC.rglob("*.html"), *SRC.rglob("*.po")]:
        found = reserved_phrases_in(path.read_text("utf-8"), claims_policy())
        assert found == [], f"{path.relative_to(SRC)} uses {found}"
        scanned += 1
    assert scanned > 0


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_no_catalogue_translates_a_page_into_reserved_wording(language: str) -> None:
    """Each page catalogue's translations, scanned with its own language's list and every other's."""
    path = SRC / "web" / "locales" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        messages = [m for m in read_po(po, locale=language) if m.id]
    assert len(messages) > 100
    policy = claims_policy()
    for message in messages:
        shown = message.string or str(message.id)  # English falls back to the source text
        for lists in (language, None):
            assert reserved_phrases_in(shown, policy, lists) == [], (language, message.id)


def test_the_scan_finds_what_it_looks_for() -> None:
    policy = claims_policy()
    assert reserved_phrases_in("Your trip is now Carbon Neutral!", policy) == ["carbon neutral"]
    assert reserved_phrases_in("本次活动实现碳中和", policy) == ["碳中和"]
    assert "klimaneutral" in reserved_phrases_in("Ihre Reise ist klimaneutral", policy)
    assert "klimaatneutraal" in reserved_phrases_in("klimaatneutraal reizen", policy)
    with pytest.raises(DomainError, match="reserved"):
        word_claim({**policy, "claims": {"bad": {"en": "Carbon neutral thanks to {holder}"}}}, "bad", FACTS)


def test_numbers_are_unguessable_and_readable() -> None:
    numbers = {new_number() for _ in range(1_000)}
    assert len(numbers) == 1_000
    assert all(len(n) == 18 and n.startswith("NZC-") and not set(n) & set("ILOU") for n in numbers)


def envelope(ring: KeyRing) -> bytes:
    document = {"format": "neutralize-certificate/1", "number": "NZC-TEST-0000-0001", "kg_co2e": 340}
    signature = ring.sign(canonical_json(document))
    body = {
        "certificate": document,
        "signature": {"algorithm": "Ed25519", "key_id": signature.key_id, "value": signature.signature_b64},
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def test_a_certificate_verifies_offline_with_the_published_keys_and_a_change_is_caught() -> None:
    ring = KeyRing.from_key_b64(
        base64.b64encode(bytes(32)).decode(), clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    )
    data = envelope(ring)
    assert verify_offline(data, ring.published_keys()).ok
    tampered = data.replace(b'"kg_co2e": 340', b'"kg_co2e": 3400')
    assert tampered != data
    assert not verify_offline(tampered, ring.published_keys()).ok
    other = KeyRing.from_key_b64(
        base64.b64encode(bytes([1] * 32)).decode(), clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    )
    result = verify_offline(data, other.published_keys())
    assert not result.ok and result.checks[0].detail == "unknown_key"


@pytest.mark.parametrize("data", [b"not json", b"{}", b'{"certificate": {}, "signature": {}}'])
def test_what_is_not_a_certificate_is_unreadable(data: bytes) -> None:
    with pytest.raises(DomainError) as caught:
        verify_offline(data, {"keys": []})
    assert caught.value.code is ErrorCode.CERTIFICATE_UNREADABLE


def test_neutrality_wording_only_for_completed_events_and_never_in_the_eu() -> None:
    policy = claims_policy()
    claim = word_neutrality_claim(
        policy, jurisdiction="CN", subject="天府碳中和论坛", kg=12_000, steps_completed=True
    )
    assert "碳中和" in claim["zh"] and "carbon neutrality" in claim["en"]
    for jurisdiction, done in (("CN", False), ("EU", True), ("EU", False)):
        with pytest.raises(DomainError) as caught:
            word_neutrality_claim(
                policy, jurisdiction=jurisdiction, subject="Forum", kg=1, steps_completed=done
            )
        assert caught.value.code is ErrorCode.CLAIM_NOT_SUPPORTED
    # there is no German or Dutch neutrality wording at all
    assert set(policy["neutrality_claims"]["event"]) == {"zh", "en"}
