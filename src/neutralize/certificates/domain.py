"""Certificates without I/O: the claim wording, the document that is signed, and its envelope.

A certificate is a JSON document in the platform's canonical form (``core.canonical``: RFC 8785
for the strings, integers, booleans and nulls it is made of), signed with Ed25519. The envelope
``{"certificate": {...}, "signature": {"algorithm": "Ed25519", "key_id": ..., "value": ...}}``
is what the API returns, what the PDF embeds and what ``neutralize verify`` checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from neutralize.core.canonical import canonical_json
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import Signature

FORMAT = "neutralize-certificate/1"
ALGORITHM = "Ed25519"


class ClaimKind:
    CONTRIBUTION = "contribution"
    CONTRIBUTION_PENDING = "contribution_pending"


@dataclass(frozen=True, slots=True)
class ClaimFacts:
    kg: int
    standard: str
    project: str
    vintage: int
    holder: str
    registry: str


def word_claim(policy: Mapping[str, Any], kind: str, facts: ClaimFacts) -> dict[str, str]:
    """The claim in every language of the policy, from its templates; never free text."""
    templates: Mapping[str, str] = policy["claims"][kind]
    values = {
        "kg": f"{facts.kg:,}",
        "standard": facts.standard,
        "project": facts.project,
        "vintage": str(facts.vintage),
        "holder": facts.holder,
        "registry": facts.registry,
    }
    worded = {language: template.format(**values) for language, template in templates.items()}
    # The names are others' words (the market refuses holder names that carry a claim); the
    # template's own words must carry none.
    for language, text in worded.items():
        found = reserved_phrases_in(
            text.replace(facts.holder, "").replace(facts.project, ""), policy, language
        )
        if found:
            raise DomainError(
                code=ErrorCode.CLAIM_NOT_SUPPORTED,
                message=f"the {language} claim template uses reserved wording: {found}",
            )
    return worded


def word_neutrality_claim(
    policy: Mapping[str, Any], *, jurisdiction: str, subject: str, kg: int, steps_completed: bool
) -> dict[str, str]:
    """ "Carbon neutral" / 碳中和 wording for an event or organisation, only where the jurisdiction
    allows it and only once the required steps are complete; ``CLAIM_NOT_SUPPORTED`` otherwise."""
    rules = policy["jurisdictions"].get(jurisdiction) or policy["jurisdictions"]["OTHER"]
    if rules["neutrality_wording"] == "never":
        raise DomainError(
            code=ErrorCode.CLAIM_NOT_SUPPORTED,
            message=f"offset-based neutrality claims are not allowed in {jurisdiction} ({rules['basis']})",
        )
    if not steps_completed:
        raise DomainError(
            code=ErrorCode.CLAIM_NOT_SUPPORTED,
            message="a neutrality claim needs every step: plan, reduce, account, offset, report, evaluate",
        )
    templates: Mapping[str, str] = policy["neutrality_claims"]["event"]
    return {
        language: templates[language].format(subject=subject, kg=f"{kg:,}")
        for language in rules["languages"]
        if language in templates
    }


def reserved_phrases_in(text: str, policy: Mapping[str, Any], language: str | None = None) -> list[str]:
    """Reserved phrases (e.g. "carbon neutral", 碳中和) found in ``text``, case-insensitively, also
    inside longer words ("klimaneutrale"). Without a language every language's list is searched."""
    lowered = text.casefold()
    return [p for p in _reserved(policy, language) if p.casefold() in lowered]


def claims_in_name(name: str, policy: Mapping[str, Any]) -> list[str]:
    """Reserved phrases a holder's name states as whole words in a Latin script ("ACME, carbon
    neutral"), not as part of another word ("Carbon Neutrality Forum"). Chinese phrases are not
    looked for in names: 天府碳中和论坛 is the name of an event, and claims quote names anyway."""
    return [
        p
        for p in _reserved(policy, None)
        if p.isascii() and re.search(rf"(?<!\w){re.escape(p)}(?!\w)", name, flags=re.IGNORECASE)
    ]


def _reserved(policy: Mapping[str, Any], language: str | None) -> list[str]:
    lists: Mapping[str, Any] = policy["reserved_phrases"]
    languages = [language] if language else [k for k in lists if k != "about"]
    return [p for lang in languages for p in lists.get(lang, [])]


@dataclass(frozen=True, slots=True)
class ProjectFacts:
    code: str
    name: str
    standard: str
    methodology: str
    methodology_version: str
    vintage: int
    credit_type: str | None  # None: a mirrored project's home registry does not say
    nature_based: bool | None
    country: str
    region: str | None
    labels: Sequence[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "standard": self.standard,
            "methodology": self.methodology,
            "methodology_version": self.methodology_version,
            "vintage": self.vintage,
            "credit_type": self.credit_type,
            "nature_based": self.nature_based,
            "country": self.country,
            "region": self.region,
            "labels": list(self.labels),
        }


@dataclass(frozen=True, slots=True)
class NativeEvidence:
    """Native credits retired here: the retirement and the exact serial sub-ranges."""

    retirement_id: str
    serials: Sequence[str]
    replaced_by: Sequence[str] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "native_retirement",
            "retirement_id": self.retirement_id,
            "serials": list(self.serials),
            "replaced_by": list(self.replaced_by),
        }


@dataclass(frozen=True, slots=True)
class ShareEvidence:
    """A kilogram share of home-registry stock; the home fields are empty until the retirement at
    home is recorded."""

    programme: str
    share_kg: int
    reference: str
    record_id: str | None = None  # this registry's record of the home retirement
    home_retirement_id: str | None = None
    retired_on: str | None = None
    home_serial: str | None = None
    beneficiary_text: str | None = None
    address: str | None = None
    merkle_root: str | None = None

    @property
    def pending(self) -> bool:
        return self.record_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "home_retirement_share",
            "programme": self.programme,
            "share_kg": self.share_kg,
            "reference": self.reference,
            "record_id": self.record_id,
            "home_retirement_id": self.home_retirement_id,
            "retired_on": self.retired_on,
            "home_serial": self.home_serial,
            "beneficiary_text": self.beneficiary_text,
            "address": self.address,
            "merkle_root": self.merkle_root,
        }


def status_of(evidence: NativeEvidence | ShareEvidence) -> str:
    return "pending" if isinstance(evidence, ShareEvidence) and evidence.pending else "retired"


@dataclass(frozen=True, slots=True)
class Subject:
    """Who holds the certificate and what it stands for (no e-mail address: certificates are public)."""

    number: str
    holder_name: str
    kg: int
    offsets: Mapping[str, str]
    order_id: str
    currency: str
    total_minor: int
    credits_minor: int
    owner_share_permille: int
    verify_url: str


def document(
    *,
    subject: Subject,
    project: ProjectFacts,
    evidence: NativeEvidence | ShareEvidence,
    claim: Mapping[str, str],
    version: int,
    issued_at: str,
) -> dict[str, Any]:
    """The certificate as signed data."""
    return {
        "format": FORMAT,
        "number": subject.number,
        "version": version,
        "status": status_of(evidence),
        "issued_at": issued_at,
        "holder": {"display_name": subject.holder_name},
        "kg_co2e": subject.kg,
        "offsets": dict(subject.offsets),
        "claim": dict(claim),
        "project": project.as_dict(),
        "evidence": evidence.as_dict(),
        "money": {
            "currency": subject.currency,
            "total_minor": subject.total_minor,
            "to_project_owner_minor": subject.credits_minor,
            "to_project_owner_permille": subject.owner_share_permille,
        },
        "order": subject.order_id,
        "verify_url": subject.verify_url,
    }


def envelope(doc: Mapping[str, Any], signature: Signature) -> dict[str, Any]:
    return {
        "certificate": dict(doc),
        "signature": {"algorithm": ALGORITHM, "key_id": signature.key_id, "value": signature.signature_b64},
    }


def signed_bytes(doc: Mapping[str, Any]) -> bytes:
    """The exact bytes the signature covers."""
    return canonical_json(doc)


def open_envelope(data: Any) -> tuple[dict[str, Any], Signature]:
    """The document and signature of an envelope; ``CERTIFICATE_UNREADABLE`` if it is not one."""
    try:
        doc, sig = data["certificate"], data["signature"]
        if doc["format"] != FORMAT or sig["algorithm"] != ALGORITHM:
            raise ValueError("not a certificate of this format")
        return doc, Signature(key_id=str(sig["key_id"]), signature_b64=str(sig["value"]))
    except (KeyError, TypeError, ValueError) as error:
        raise DomainError(
            code=ErrorCode.CERTIFICATE_UNREADABLE,
            message=f"not a {FORMAT} envelope: {error}",
        ) from None
