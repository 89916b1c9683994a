"""Serial-block arithmetic, serial strings, hash chains and Merkle roots: the registry's pure core.

Units are integer kilograms of CO2e. Every issuance takes a fresh range of the registry-wide
unit space, so two issuances never share a unit number; a block is a contiguous range of
units, in one state and one account. Moving part of a block splits it; blocks never overlap.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from neutralize.core.canonical import canonical_json

KG_PER_TONNE = 1_000
GENESIS = "0" * 64  # the hash before the first entry of every chain


class BlockState(StrEnum):
    """Where a block's kilograms are. Retired, cancelled and exported blocks never change."""

    HELD = "held"
    RESERVED = "reserved"
    RETIRED = "retired"
    CANCELLED = "cancelled"
    BUFFER = "buffer"
    EXPORTED = "exported"

    @property
    def is_final(self) -> bool:
        return self in (BlockState.RETIRED, BlockState.CANCELLED, BlockState.EXPORTED)


class AccountKind(StrEnum):
    HOLDING = "holding"
    RETIREMENT = "retirement"
    BUFFER = "buffer"
    EXPORT = "export"


class ProjectStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"
    REGISTERED = "registered"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


# Who may move a project from one status to the next.
PROJECT_TRANSITIONS: dict[tuple[ProjectStatus, ProjectStatus], str] = {
    (ProjectStatus.DRAFT, ProjectStatus.SUBMITTED): "project_owner",
    (ProjectStatus.SUBMITTED, ProjectStatus.VALIDATED): "verifier",
    (ProjectStatus.SUBMITTED, ProjectStatus.REJECTED): "admin",
    (ProjectStatus.VALIDATED, ProjectStatus.REGISTERED): "admin",
    (ProjectStatus.VALIDATED, ProjectStatus.REJECTED): "admin",
    (ProjectStatus.REGISTERED, ProjectStatus.SUSPENDED): "admin",
    (ProjectStatus.SUSPENDED, ProjectStatus.REGISTERED): "admin",
}


@dataclass(frozen=True, order=True)
class Span:
    """An inclusive range of unit numbers ``[start, end]``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 1 or self.end < self.start:
            raise ValueError(f"not a span: [{self.start}, {self.end}]")

    @property
    def size(self) -> int:
        return self.end - self.start + 1

    def contains(self, other: Span) -> bool:
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Span) -> bool:
        return self.start <= other.end and other.start <= self.end

    def without(self, part: Span) -> list[Span]:
        """What is left of this span once ``part`` (inside it) is taken out: 0, 1 or 2 spans."""
        if not self.contains(part):
            raise ValueError(f"{part} is not inside {self}")
        left = [Span(self.start, part.start - 1)] if part.start > self.start else []
        right = [Span(part.end + 1, self.end)] if part.end < self.end else []
        return left + right


def take_lowest(spans: Sequence[Span], quantity: int) -> list[Span]:
    """The lowest-numbered ``quantity`` units of ``spans``, as sub-spans, in serial order.

    Raises ``ValueError`` if the spans hold fewer units.
    """
    if quantity < 1:
        raise ValueError("quantity must be positive")
    taken: list[Span] = []
    wanted = quantity
    for span in sorted(spans):
        if wanted == 0:
            break
        part = Span(span.start, span.start + min(wanted, span.size) - 1)
        taken.append(part)
        wanted -= part.size
    if wanted:
        raise ValueError(f"only {quantity - wanted} of {quantity} units available")
    return taken


def split_share(total: int, share_permille: int) -> tuple[int, int]:
    """(kept, buffer) of ``total`` units for a buffer share in permille; the buffer rounds up."""
    if not 0 <= share_permille <= 1000:
        raise ValueError("a buffer share is between 0 and 1000 permille")
    buffer = -(-total * share_permille // 1000)
    return total - buffer, buffer


# --- serial strings -------------------------------------------------------------------------

_SERIAL = re.compile(
    r"^NZ-(?P<project>[A-Z0-9]+(?:-[A-Z0-9]+)*)-(?P<vintage>\d{4})-(?P<start>\d{12}|[1-9]\d{12,17})-(?P<end>\d{12}|[1-9]\d{12,17})$"
)


def serial(project_code: str, vintage: int, span: Span) -> str:
    """The serial string of a block: ``NZ-<project code>-<vintage year>-<first unit>-<last unit>``.

    Units are zero-padded to at least 12 digits (a billion tonnes), and grow beyond; see docs/registry.md.
    """
    return f"NZ-{project_code}-{vintage:04d}-{span.start:012d}-{span.end:012d}"


def parse_serial(text: str) -> tuple[str, int, Span]:
    """(project code, vintage year, span) of a serial string; ``ValueError`` if malformed."""
    match = _SERIAL.match(text.strip().upper())
    if match is None:
        raise ValueError(f"not a Neutralize serial: {text!r}")
    return match["project"], int(match["vintage"]), Span(int(match["start"]), int(match["end"]))


# --- hash chains and Merkle trees ----------------------------------------------------------------


def entry_hash(previous: str, payload: Any) -> str:
    """The hash of a journal entry: SHA-256 over the previous hash and the entry's canonical form."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical_json(payload)).hexdigest()


def merkle_root(leaves: Iterable[bytes]) -> str:
    """SHA-256 Merkle root (leaf = H(0x00 || data), node = H(0x01 || left || right); odd last node
    carried up). The empty tree's root is the hash of nothing."""
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()


def vintage_of(period_end: date) -> int:
    """A vintage is named by the year its monitoring period ends in."""
    return period_end.year


def label_phrases(
    *,
    standard: str,
    vintage: int,
    credit_type: str | None,
    nature_based: bool | None,
    labels: Mapping[str, Any],
    native: bool = True,
) -> list[str]:
    """The labels a listing or certificate shows for a project vintage, as short English phrases. For a
    mirrored project (``native`` False) only what its home registry's data says: no credit type or
    nature unless known, and a corresponding adjustment either way only if its labels say so."""
    phrases = [standard, f"vintage {vintage}"]
    if credit_type is not None:
        phrases.append(credit_type)
    if nature_based is not None:
        phrases.append("nature-based" if nature_based else "technological")
    if labels.get("icvcm_ccp"):
        phrases.append("ICVCM CCP-approved")
    if labels.get("corsia_phase"):
        phrases.append(f"CORSIA eligible ({labels['corsia_phase']})")
    if labels.get("carbon_inclusive"):
        phrases += ["carbon-inclusive (behavioural)", "domestic use only"]
    if labels.get("legacy_ccer"):
        phrases.append("legacy CCER")
    if labels.get("article6_authorised"):
        phrases.append("Article 6 authorised")
    if native or "corresponding_adjustment" in labels:
        phrases.append(
            "corresponding adjustment applied"
            if labels.get("corresponding_adjustment")
            else "no corresponding adjustment"
        )
    return phrases
