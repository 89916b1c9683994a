"""Exports: projects, unit blocks and transactions as CSV or JSON, the units close to the Climate
Action Data Trust (CADT) unit model.

A unit is what a block's serials number: one kilogram of CO2e for native blocks, one tonne for
mirrored blocks (the home registry's serials). Every row follows one rule, ``unitCount =
unitBlockEnd - unitBlockStart + 1``, with ``unitMetric`` naming the unit; ``quantityKg`` gives the
block's kilograms and ``unitCountTonnes`` the same quantity in exact decimal tonnes, whatever the unit.

CSV cells of text that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) are written with a leading ``'``; JSON is written as stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.registry import mirror
from neutralize.registry.domain import KG_PER_TONNE, BlockState, ProjectStatus, Span, serial
from neutralize.registry.journal import hashed_fields
from neutralize.registry.models import (
    Account,
    Block,
    Issuance,
    JournalEntry,
    MirroredBlock,
    Organisation,
    Project,
    Retirement,
)
from neutralize.registry.schemas import Labels

Kind = Literal["projects", "units", "transactions"]
Format = Literal["csv", "json"]
REGISTRY_NAME = "Neutralize"
MAX_ROWS = 1_000_000

# CADT's picklists, by this registry's states.
UNIT_STATUS = {
    BlockState.HELD: "Held",
    BlockState.RESERVED: "Held",  # CADT has no reservation: the units are still the holder's
    BlockState.RETIRED: "Retired",
    BlockState.CANCELLED: "Cancelled",
    BlockState.BUFFER: "Buffer",
    BlockState.EXPORTED: "Exported",
}
MIRRORED_STATUS = {"issued": "Held", "retired": "Retired", "cancelled": "Cancelled"}
NATIVE_UNIT = "kg CO2e"
MIRRORED_UNIT = "t CO2e (home registry serials)"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection


def unit_type(project: Project) -> str:
    kind = "Removal" if project.credit_type == "removal" else "Reduction"
    return f"{kind} - {'nature' if project.nature_based else 'technical'}"


def project_rows(session: Session, *, drafts: bool = True) -> list[dict[str, Any]]:
    owners = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    query = select(Project).order_by(Project.code)
    if not drafts:
        query = query.where(Project.status != ProjectStatus.DRAFT.value)
    rows = []
    for project in session.scalars(query):
        labels = project.labels or {}
        rows.append(
            {
                "warehouseProjectId": project.id,
                "projectId": project.code,
                "projectName": project.name,
                "currentRegistry": REGISTRY_NAME if project.native else (project.home_registry or ""),
                "registryOfOrigin": REGISTRY_NAME if project.native else (project.home_registry or ""),
                "originProjectId": project.home_id or project.code,
                "program": project.standard,
                "projectDeveloper": _developer(project, owners),
                "projectType": project.project_type,
                "methodology": f"{project.methodology} {project.methodology_version}".strip()
                if project.native
                else project.methodology,  # as its home registry publishes it, without a version of ours
                "projectStatus": project.status,
                "unitMetric": "kg CO2e",
                "country": project.country,
                "inCountryRegion": project.region or "",
                "coveredByNDC": "Unknown",  # CADT's picklist: this registry does not know
                "projectTags": ", ".join(_tags(labels)),
                "bufferShare": f"{project.buffer_permille / 10:g}%",
            }
        )
    return rows


def _tags(labels: dict[str, Any]) -> list[str]:
    """A project's quality labels as tags: each one set (``corsia_phase: first``), then the labels its
    home registry publishes, as published."""
    known = [f"{key}: {value}" if isinstance(value, str) else key for key, value in sorted(labels.items())
             if key in Labels.model_fields and value]  # fmt: skip
    return known + [str(label) for label in labels.get("home_labels") or ()]


def _developer(project: Project, owners: dict[str, str]) -> str:
    """The owner of a native project; for a mirrored one, the developer its home registry
    publishes (Gold Standard does, Verra does not), never the organisation that mirrors it."""
    if project.native:
        return owners.get(project.owner_organisation_id, "")
    return str((project.labels or {}).get("developer") or "")


def unit_rows(session: Session) -> list[dict[str, Any]]:
    """Native blocks in serial order, then mirrored public blocks in unit order.

    A mirrored issued block with retired or cancelled blocks inside it is written as the pieces left
    outside them, each with the issued block's serial as published, so no unit is counted twice."""
    projects = {p.id: p for p in session.scalars(select(Project))}
    accounts = {a.id: a for a in session.scalars(select(Account))}
    owners = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    beneficiaries = dict(session.execute(select(Retirement.id, Retirement.beneficiary)).all())
    issuances = dict(session.execute(select(Issuance.id, Issuance.serial)).all())
    rows = []
    for block in session.scalars(select(Block).order_by(Block.span_start).limit(MAX_ROWS)):
        project = projects[block.project_id]
        span = Span(block.span_start, block.span_end)
        holder = owners.get(accounts[block.account_id].organisation_id, "")
        rows.append(
            _unit(
                project,
                span.start,
                span.end,
                span.size,  # one unit per kilogram
                block.vintage,
                serial(project.code, block.vintage, span),
                UNIT_STATUS[BlockState(block.state)],
                holder,
                beneficiaries.get(block.retirement_id or "", ""),
                issuances.get(block.issuance_id, ""),
                REGISTRY_NAME,
                reason=block.destination or "",
            )
        )
    mirrored = list(session.scalars(select(MirroredBlock).order_by(*mirror.UNIT_ORDER).limit(MAX_ROWS)))
    inside = mirror.sub_blocks(mirrored)
    pieces = [
        (home_block.unit_space, piece, index)
        for index, home_block in enumerate(mirrored)
        for piece in mirror.remainder(home_block, inside.get(home_block.id, []))
    ]
    for _, piece, index in sorted(pieces):  # in unit order, the issued blocks' pieces among the rest
        home_block = mirrored[index]
        project = projects[home_block.project_id]
        rows.append(
            _unit(
                project,
                piece.start,
                piece.end,
                piece.size * KG_PER_TONNE,
                home_block.vintage_end.year,
                home_block.serial,
                MIRRORED_STATUS.get(home_block.status, "Held"),
                "",
                home_block.beneficiary or "",
                "",
                project.home_registry or "",
                reason=home_block.reason or "",
                unit_metric=MIRRORED_UNIT,
            )
        )
    return rows


def _unit(
    project: Project,
    start: int,
    end: int,
    kg: int,
    vintage: int,
    serial_text: str,
    status: str,
    owner: str,
    beneficiary: str,
    issuance: str,
    registry: str,
    *,
    reason: str,
    unit_metric: str = NATIVE_UNIT,
) -> dict[str, Any]:
    labels = project.labels or {}
    return {
        "projectId": project.code,
        "issuanceId": issuance,
        "vintageYear": vintage,
        "serialNumberBlock": serial_text,
        "unitBlockStart": start,
        "unitBlockEnd": end,
        "unitCount": end - start + 1,
        "quantityKg": kg,
        "unitCountTonnes": tonnes_text(kg),
        "unitMetric": unit_metric,
        "unitType": unit_type(project),
        "unitStatus": status,
        "unitStatusReason": reason,
        "unitOwner": owner,
        "retirementBeneficiary": beneficiary,
        "unitRegistryLink": registry,
        "correspondingAdjustmentDeclaration": "Committed"
        if labels.get("corresponding_adjustment")
        else "Not Required",
        "correspondingAdjustmentStatus": "Completed"
        if labels.get("corresponding_adjustment")
        else "Not Started",
    }


def tonnes_text(kg: int) -> str:
    """Kilograms as exact decimal tonnes, without exponent or trailing zeros: 123456789 → "123456.789"."""
    return f"{(Decimal(kg) / KG_PER_TONNE).normalize():f}"


def transaction_rows(session: Session) -> list[dict[str, Any]]:
    """The journal, one row per entry, with the hash that chains it."""
    rows = []
    for entry in session.scalars(select(JournalEntry).order_by(JournalEntry.id).limit(MAX_ROWS)):
        fields = hashed_fields(entry)
        rows.append(
            {
                **{k: v for k, v in fields.items() if k != "payload"},
                "payload": json.dumps(entry.payload, sort_keys=True, ensure_ascii=False),
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
        )
    return rows


BUILDERS = {"projects": project_rows, "units": unit_rows, "transactions": transaction_rows}


def export(*, session: Session, kind: str, fmt: str, drafts: bool = True) -> str:
    """One export as text: ``kind`` is projects, units or transactions; ``fmt`` csv or json. The
    public export of projects leaves drafts out (``drafts=False``): they are their owners' until
    submitted."""
    if kind not in BUILDERS or fmt not in ("csv", "json"):
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message="export projects, units or transactions, as csv or json",
        )
    rows = project_rows(session, drafts=drafts) if kind == "projects" else BUILDERS[kind](session)
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False, default=str)
    return _csv(rows)


def _csv(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({name: _cell(value) for name, value in row.items()} for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, made plain text; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value
