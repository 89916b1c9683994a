"""Certificate use cases: certify a retirement or share, sign it again when a pending share is
retired at home, and verify a certificate live against the registry or offline with published keys.

Services never commit: the caller's unit of work does.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.access.domain import SYSTEM
from neutralize.certificates.domain import (
    ClaimFacts,
    ClaimKind,
    NativeEvidence,
    ProjectFacts,
    ShareEvidence,
    Subject,
    document,
    envelope,
    open_envelope,
    signed_bytes,
    status_of,
    word_claim,
)
from neutralize.certificates.models import Certificate, CertificateVersion
from neutralize.certificates.render import (
    CertificateView,
    render_pdf,
    render_share_card,
    signed_json_from_pdf,
)
from neutralize.certificates.schemas import Check, Verification
from neutralize.core.canonical import utc_iso
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.signing import KeyRing, Signature, VerifyOutcome, check_published
from neutralize.registry import journal, mirror
from neutralize.registry import service as registry
from neutralize.registry.domain import label_phrases

_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@lru_cache(maxsize=1)
def claims_policy() -> Mapping[str, Any]:
    """The claims policy shipped with the package (``certificates/claims.json``)."""
    text = resources.files("neutralize.certificates").joinpath("claims.json").read_text("utf-8")
    policy: dict[str, Any] = json.loads(text)
    return policy


def new_number() -> str:
    """``NZC-`` and three groups of four Crockford base32 characters: 60 random bits, so
    certificates cannot be enumerated."""
    chars = "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(12))
    return f"NZC-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


@dataclass(frozen=True, slots=True)
class CertifyRequest:
    """What the market knows of a completed order."""

    order_id: str
    holder_name: str
    kg: int
    offsets: Mapping[str, str]
    project_code: str
    vintage: int
    evidence: NativeEvidence | ShareEvidence
    currency: str
    total_minor: int
    credits_minor: int
    owner_share_permille: int


def certify(
    *, session: Session, clock: Clock, keys: KeyRing, base_url: str, request: CertifyRequest
) -> dict[str, Any]:
    """Sign the certificate of an order's retirement or share (once: a retry returns the first)."""
    existing = session.scalars(select(Certificate).where(Certificate.subject_ref == request.order_id)).first()
    if existing is not None:
        return _envelope_of(existing)
    project = registry.get_project(session=session, code=request.project_code)
    number = new_number()
    subject = Subject(
        number=number,
        holder_name=request.holder_name,
        kg=request.kg,
        offsets=request.offsets,
        order_id=request.order_id,
        currency=request.currency,
        total_minor=request.total_minor,
        credits_minor=request.credits_minor,
        owner_share_permille=request.owner_share_permille,
        verify_url=f"{base_url.rstrip('/')}/verify/{number}",
    )
    now = clock.now()
    row = Certificate(
        number=number,
        subject_ref=request.order_id,
        project_id=project.id,
        kind=request.evidence.as_dict()["kind"],
        status=status_of(request.evidence),
        kg=request.kg,
        holder_name=request.holder_name,
        version=0,
        document={},
        key_id="",
        signature_b64="",
        issued_at=now,
        updated_at=now,
    )
    session.add(row)
    return _sign(session, clock, keys, row, _facts(project, request.vintage), subject, request.evidence)


def record_home_retirement(
    *, session: Session, clock: Clock, keys: KeyRing, order_id: str, evidence: ShareEvidence
) -> dict[str, Any]:
    """Sign a pending share's certificate again now that the retirement at home is recorded."""
    row = session.scalars(
        select(Certificate).where(Certificate.subject_ref == order_id).with_for_update()
    ).first()
    if row is None:
        raise NotFoundError(f"no certificate for order {order_id!r}")
    doc = row.document
    project = registry.get_project(session=session, code=doc["project"]["code"])
    money = doc["money"]
    subject = Subject(
        number=row.number,
        holder_name=row.holder_name,
        kg=row.kg,
        offsets=doc["offsets"],
        order_id=order_id,
        currency=money["currency"],
        total_minor=money["total_minor"],
        credits_minor=money["to_project_owner_minor"],
        owner_share_permille=money["to_project_owner_permille"],
        verify_url=doc["verify_url"],
    )
    return _sign(session, clock, keys, row, _facts(project, doc["project"]["vintage"]), subject, evidence)


def _facts(project: Any, vintage: int) -> ProjectFacts:
    return ProjectFacts(
        code=project.code,
        name=project.name,
        standard=project.standard,
        methodology=project.methodology,
        methodology_version=project.methodology_version,
        vintage=vintage,
        credit_type=project.credit_type,
        nature_based=project.nature_based,
        country=project.country,
        region=project.region,
        labels=label_phrases(
            standard=project.standard,
            vintage=vintage,
            credit_type=project.credit_type,
            nature_based=project.nature_based,
            labels=project.labels,
            native=project.native,
        ),
    )


def _sign(
    session: Session,
    clock: Clock,
    keys: KeyRing,
    row: Certificate,
    project: ProjectFacts,
    subject: Subject,
    evidence: NativeEvidence | ShareEvidence,
) -> dict[str, Any]:
    pending = isinstance(evidence, ShareEvidence) and evidence.pending
    claim = word_claim(
        claims_policy(),
        ClaimKind.CONTRIBUTION_PENDING if pending else ClaimKind.CONTRIBUTION,
        ClaimFacts(
            kg=subject.kg,
            standard=project.standard,
            project=project.name,
            vintage=project.vintage,
            holder=subject.holder_name,
            registry=project.standard,
        ),
    )
    now = clock.now()
    doc = document(
        subject=subject,
        project=project,
        evidence=evidence,
        claim=claim,
        version=row.version + 1,
        issued_at=utc_iso(now),
    )
    data = signed_bytes(doc)
    signature = keys.sign(data)
    row.version, row.document, row.status = doc["version"], doc, doc["status"]
    row.key_id, row.signature_b64, row.updated_at = signature.key_id, signature.signature_b64, now
    session.add(
        CertificateVersion(
            number=row.number,
            version=row.version,
            document=doc,
            key_id=signature.key_id,
            signature_b64=signature.signature_b64,
            signed_at=now,
        )
    )
    session.flush()
    journal.append(
        session=session,
        clock=clock,
        actor=SYSTEM,
        chain=f"certificates:{project.code}",
        operation="certify",
        payload={"number": row.number, "version": row.version, "document_sha256": _sha256(data)},
    )
    return envelope(doc, signature)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _envelope_of(row: Certificate) -> dict[str, Any]:
    return envelope(row.document, Signature(key_id=row.key_id, signature_b64=row.signature_b64))


def get(*, session: Session, number: str) -> dict[str, Any]:
    """The newest signed version of a certificate."""
    row = session.get(Certificate, number)
    if row is None:
        raise NotFoundError(f"no certificate {number!r}")
    return _envelope_of(row)


def number_for_order(*, session: Session, order_id: str) -> str | None:
    return session.scalars(select(Certificate.number).where(Certificate.subject_ref == order_id)).first()


# --- verification ------------------------------------------------------------------------------------


def verify(*, session: Session, keys: KeyRing, number: str) -> Verification:
    """Verify a certificate live: its signature, and that the registry still says what it says."""
    row = session.get(Certificate, number)
    if row is None:
        raise NotFoundError(f"no certificate {number!r}")
    doc = row.document
    outcome = keys.check(signed_bytes(doc), Signature(row.key_id, row.signature_b64))
    checks = [Check(name="signature", ok=outcome is VerifyOutcome.VALID, detail=outcome.value)]
    evidence = doc["evidence"]
    replaced: list[str] = []
    if evidence["kind"] == "native_retirement":
        checks += _native_checks(session, evidence, row.holder_name, replaced)
    else:
        checks += _share_checks(session, evidence, doc["order"], row.holder_name, doc["project"]["vintage"])
    return Verification(
        number=number,
        ok=all(c.ok for c in checks),
        status=row.status,
        version=row.version,
        current_version=row.version,
        key_id=row.key_id,
        checks=checks,
        replaced_by=replaced,
        certificate=doc,
    )


def _native_checks(
    session: Session, evidence: Mapping[str, Any], holder: str, replaced: list[str]
) -> list[Check]:
    checks = []
    for text in evidence["serials"]:
        blocks = registry.where_did_it_go(session=session, text=text)
        exact = [b for b in blocks if b.serial == text]
        ok = (
            len(exact) == 1
            and exact[0].state == "retired"
            and exact[0].retirement_id == evidence["retirement_id"]
        )
        detail = (
            "retired for this certificate" if ok else "the registry does not show this range retired for it"
        )
        checks.append(Check(name=f"serial {text}", ok=ok, detail=detail))
        replaced += [b.replaced_by for b in exact if b.replaced_by]
    named = registry.beneficiaries(session=session, retirement_ids=[evidence["retirement_id"]])
    same = named.get(evidence["retirement_id"]) == holder
    checks.append(
        Check(
            name="beneficiary",
            ok=same,
            detail="the retirement names the holder" if same else "the retirement names someone else",
        )
    )
    return checks


def _share_checks(
    session: Session, evidence: Mapping[str, Any], order_id: str, holder: str, vintage: int
) -> list[Check]:
    if evidence["record_id"] is None:
        return [
            Check(
                name="home retirement",
                ok=True,
                detail=f"pending: the {evidence['programme']} retirement is not yet recorded",
            )
        ]
    home = mirror.home_retirement_public(session=session, retirement_id=evidence["record_id"])
    mine = [s for s in home.shares if s.reference == order_id]
    share_ok = len(mine) == 1 and mine[0].kg == evidence["share_kg"] and mine[0].beneficiary == holder
    signed = (evidence["home_retirement_id"], evidence["home_serial"], evidence["retired_on"], vintage)
    recorded = (home.home_retirement_id, home.serial, home.retired_on.isoformat(), home.vintage)
    allocated = sum(s.kg for s in home.shares)
    within = allocated == home.allocated_kg <= home.quantity_kg
    return [
        Check(
            name="share",
            ok=share_ok,
            detail=f"{evidence['share_kg']} kg of {home.programme} retirement {home.home_retirement_id}"
            if share_ok
            else "the home retirement holds no such share",
        ),
        Check(
            name="home retirement",
            ok=signed == recorded,
            detail="as recorded: id, serials, date and vintage"
            if signed == recorded
            else f"the certificate says {signed}, the record {recorded}",
        ),
        Check(
            name="shares within the retirement",
            ok=within,
            detail=f"{allocated:,} of {home.quantity_kg:,} kg allocated; Merkle root of all shares now "
            f"{home.merkle_root} (the certificate has the root when it was signed)",
        ),
    ]


def verify_offline(data: bytes, published_keys: Any) -> Verification:
    """Check a certificate's signature with published keys only: no database, no network."""
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DomainError(code=ErrorCode.CERTIFICATE_UNREADABLE, message="not JSON") from None
    doc, signature = open_envelope(parsed)
    try:
        outcome = check_published(published_keys, signed_bytes(doc), signature)
    except (TypeError, ValueError) as error:
        raise DomainError(code=ErrorCode.CERTIFICATE_UNREADABLE, message=str(error)) from None
    checks = [Check(name="signature", ok=outcome is VerifyOutcome.VALID, detail=outcome.value)]
    return Verification(
        number=str(doc.get("number")),
        ok=checks[0].ok,
        status=doc.get("status"),
        version=doc.get("version"),
        current_version=None,
        key_id=signature.key_id,
        checks=checks,
        replaced_by=[],
        certificate=doc,
    )


# --- renderings ---------------------------------------------------------------------------------------


def view_of(signed: Mapping[str, Any]) -> CertificateView:
    """What the PDF and share card show, taken from the signed document only."""
    doc = signed["certificate"]
    project, evidence = doc["project"], doc["evidence"]
    if evidence["kind"] == "native_retirement":
        lines = [f"Serial {s}" for s in evidence["serials"]]
        lines += [f"Replaced by {s}" for s in evidence.get("replaced_by", [])]
    elif evidence["record_id"] is None:
        lines = [
            f"{evidence['share_kg']:,} kg share of {evidence['programme']} stock; retirement at home pending"
        ]
    else:
        lines = [
            f"{evidence['programme']} retirement {evidence['home_retirement_id']} "
            f"on {evidence['retired_on']}, serials {evidence['home_serial']}",
            f"Beneficiary at home: {evidence['beneficiary_text']}",
            f"Share: {evidence['share_kg']:,} kg; Merkle root of all shares {evidence['merkle_root']}",
        ]
    money = doc["money"]
    lines.append(
        f"Reaching the project owner: {money['to_project_owner_minor'] / 100:,.2f} {money['currency']} "
        f"({money['to_project_owner_permille'] / 10:.1f} % of {money['total_minor'] / 100:,.2f})"
    )
    return CertificateView(
        number=doc["number"],
        status=doc["status"],
        holder_name=doc["holder"]["display_name"],
        kilograms=doc["kg_co2e"],
        claim={k: doc["claim"][k] for k in ("zh", "en")},
        offsets=doc["offsets"],
        project_name=project["name"],
        project_code=project["code"],
        standard=project["standard"],
        vintage=str(project["vintage"]),
        labels=project["labels"],
        evidence=lines,
        issued_at=doc["issued_at"],
        key_id=signed["signature"]["key_id"],
        verify_url=doc["verify_url"],
        signed_json=json.dumps(signed, ensure_ascii=False).encode("utf-8"),
    )


def pdf(*, session: Session, number: str) -> bytes:
    """The certificate as an A4 bilingual PDF with its signed JSON embedded."""
    return render_pdf(view_of(get(session=session, number=number)))


def share_card(*, session: Session, number: str) -> bytes:
    """The certificate as a PNG share card with its QR code."""
    return render_share_card(view_of(get(session=session, number=number)))


def signed_bytes_of_file(data: bytes) -> bytes:
    """The signed JSON of a certificate file: JSON as it is, a PDF's embedded copy."""
    return signed_json_from_pdf(data) if data.startswith(b"%PDF") else data
