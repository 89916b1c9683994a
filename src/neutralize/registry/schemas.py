"""Shapes of registry commands and results as the API and CLI show them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from neutralize.registry.importers.records import Programme

MAX_KG = 10**15  # a million million tonnes: more than any registry holds
_CODE = r"^[A-Z0-9]+(-[A-Z0-9]+)*$"
MIRRORED_PREFIXES = tuple(f"{programme.value}-" for programme in Programme)


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Movement(Command):
    """A command that moves units: text of white space only (a key, a beneficiary, a reason) is
    refused as an empty one would be. Text is kept as given otherwise: a claim is not rewritten."""

    @field_validator("*", mode="after")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        if isinstance(value, str) and value and not value.strip():
            raise PydanticCustomError("string_too_short", "must not be blank")
        return value


def _iso_country(code: str | None) -> str | None:
    if code is not None and pycountry.countries.get(alpha_2=code) is None:
        raise PydanticCustomError(
            "unknown_value", "{code} is not an ISO 3166-1 alpha-2 country code", {"code": code}
        )
    return code


ClaimCountry = Annotated[str | None, Field(default=None, pattern=r"^[A-Z]{2}$"), AfterValidator(_iso_country)]


class OrganisationCreate(Command):
    name: str = Field(min_length=1, max_length=200)


class Labels(Command):
    """Quality labels of a project (DESIGN.md §4: quality is data)."""

    icvcm_ccp: bool = False
    corsia_phase: str | None = Field(default=None, max_length=40)
    article6_authorised: bool = False
    corresponding_adjustment: bool = False
    legacy_ccer: bool = False
    carbon_inclusive: bool = False


class ProjectCreate(Command):
    code: str = Field(min_length=2, max_length=40, pattern=_CODE, description="upper case, digits and dashes")
    name: str = Field(min_length=1, max_length=300)
    standard: str = Field(min_length=1, max_length=40, examples=["CDCER", "CCER", "VCS", "GS", "CDM"])
    methodology: str = Field(min_length=1, max_length=120)
    methodology_version: str = Field(min_length=1, max_length=40)
    project_type: str = Field(min_length=1, max_length=80)
    credit_type: Literal["avoidance", "removal"]
    nature_based: bool
    country: str = Field(pattern=r"^[A-Z]{2}$")
    region: str | None = Field(default=None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
    owner_organisation_id: str = Field(max_length=40)
    labels: Labels = Labels()
    buffer_permille: int = Field(
        default=0, ge=0, le=1000, description="share set aside in the buffer, in ‰ (nature-based only)"
    )

    @field_validator("code")
    @classmethod
    def _not_a_mirrored_code(cls, code: str) -> str:
        # VCS-<id> and GS-<id> name the projects mirrored from Verra and Gold Standard
        if code.startswith(MIRRORED_PREFIXES):
            raise ValueError(f"codes starting with {' or '.join(MIRRORED_PREFIXES)} name mirrored projects")
        return code

    @model_validator(mode="after")
    def _buffer_for_nature(self) -> ProjectCreate:
        # Only nature-based credits can be reversed (fire, pests): issuance applies no buffer to others.
        if self.buffer_permille and not self.nature_based:
            raise PydanticCustomError(
                "conflicting_fields", "a buffer share is set aside for nature-based projects only"
            )
        return self


class ProjectTransition(Command):
    to_status: Literal["submitted", "validated", "registered", "rejected", "suspended"]
    note: str = Field(default="", max_length=1000)


class VerificationCreate(Command):
    project_code: str = Field(max_length=40)
    verifier: str = Field(min_length=1, max_length=200)
    period_start: date
    period_end: date
    verified_kg: int = Field(gt=0, le=MAX_KG)
    report_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    report_url: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _period(self) -> VerificationCreate:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.report_sha256 is None and self.report_url is None:
            raise ValueError("give the report's sha256 or its address")
        return self


class IssueCmd(Movement):
    verification_id: str = Field(max_length=40)
    idempotency_key: str = Field(min_length=1, max_length=120)


class Units(Movement):
    """Which units: a serial (range) string, or a quantity of one project vintage (lowest serials first)."""

    serial: str | None = Field(default=None, min_length=1, max_length=120)
    project_code: str | None = Field(default=None, min_length=1, max_length=40)
    vintage: int | None = Field(default=None, ge=1990, le=2100, strict=True)
    quantity_kg: int | None = Field(default=None, gt=0, le=MAX_KG, strict=True)

    @model_validator(mode="after")
    def _one_way(self) -> Units:
        by_quantity = (self.project_code, self.vintage, self.quantity_kg)
        if self.serial is not None and any(field is not None for field in by_quantity):
            raise PydanticCustomError(
                "conflicting_fields", "give either serial, or project_code, vintage and quantity_kg, not both"
            )
        if self.serial is None and any(field is None for field in by_quantity):
            raise ValueError("give either serial, or project_code, vintage and quantity_kg")
        return self


class TransferCmd(Movement):
    units: Units
    to_account_id: str = Field(max_length=40)
    idempotency_key: str = Field(min_length=1, max_length=120)


class RetireCmd(Movement):
    units: Units
    beneficiary: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=1000)
    claim_period_start: date | None = None
    claim_period_end: date | None = None
    claim_country: ClaimCountry = None
    idempotency_key: str = Field(min_length=1, max_length=120)

    @model_validator(mode="after")
    def _claim_period(self) -> RetireCmd:
        _check_claim_period(self.claim_period_start, self.claim_period_end)
        return self


def _check_claim_period(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and end < start:
        raise ValueError("claim_period_end is before claim_period_start")


class CancelCmd(Movement):
    units: Units
    reason: str = Field(min_length=1, max_length=1000)
    idempotency_key: str = Field(min_length=1, max_length=120)


class ExportCmd(Movement):
    units: Units
    destination_registry: str = Field(min_length=1, max_length=120)
    reference: str = Field(min_length=1, max_length=170)
    idempotency_key: str = Field(min_length=1, max_length=120)


class ReserveCmd(Movement):
    units: Units
    reservation: str = Field(min_length=1, max_length=120, description="the order or purpose held for")
    idempotency_key: str = Field(min_length=1, max_length=120)


class ReservationCmd(Movement):
    """Release a reservation: its units are held again where they were."""

    reservation: str = Field(min_length=1, max_length=120)
    idempotency_key: str = Field(min_length=1, max_length=120)


class PostCmd(Movement):
    """Post a reservation: retire what it holds, with the claim's details (the units are the
    reservation's)."""

    reservation: str = Field(min_length=1, max_length=120)
    idempotency_key: str = Field(min_length=1, max_length=120)
    beneficiary: str = Field(min_length=1, max_length=300)
    reason: str = Field(min_length=1, max_length=1000)
    claim_period_start: date | None = None
    claim_period_end: date | None = None
    claim_country: ClaimCountry = None

    @model_validator(mode="after")
    def _claim_period(self) -> PostCmd:
        _check_claim_period(self.claim_period_start, self.claim_period_end)
        return self


class AccountPublic(BaseModel):
    id: str
    organisation_id: str
    kind: str
    name: str


class OrganisationPublic(BaseModel):
    id: str
    name: str
    accounts: list[AccountPublic]


class ProjectPublic(BaseModel):
    id: str
    code: str
    name: str
    standard: str
    methodology: str
    methodology_version: str
    project_type: str
    credit_type: str | None = Field(
        description="None for a mirrored project: its home registry's export does not say"
    )
    nature_based: bool | None = Field(description="None for a mirrored project, as credit_type")
    country: str
    region: str | None
    owner_organisation_id: str
    labels: dict[str, Any]
    buffer_permille: int
    status: str
    native: bool
    home_registry: str | None
    home_id: str | None = None


class VerificationPublic(BaseModel):
    id: str
    project_code: str
    verifier: str
    period_start: date
    period_end: date
    verified_kg: int
    report_sha256: str | None
    report_url: str | None


class BlockPublic(BaseModel):
    serial: str
    project_code: str
    vintage: int
    kg: int
    state: str
    account_id: str
    reservation: str | None = None
    retirement_id: str | None = None
    destination: str | None = None
    replaced_by: str | None = None  # credits found invalid: the buffer units that replace them


class JournalRef(BaseModel):
    chain: str
    seq: int
    hash: str


class OperationResult(BaseModel):
    """What one command did: the blocks it produced and the journal entry that records it."""

    operation: str
    project_code: str
    vintage: int
    quantity_kg: int
    blocks: list[BlockPublic]
    retirement_id: str | None = None
    journal: JournalRef
    at: datetime


class VintageBalance(BaseModel):
    project_code: str
    vintage: int
    issued_kg: int
    by_state_kg: dict[str, int]
    balanced: bool


class CheckReport(BaseModel):
    """``neutralize registry check``: conservation per project vintage and structural checks."""

    ok: bool
    vintages: list[VintageBalance]
    problems: list[str]


class AuditProblem(BaseModel):
    chain: str
    seq: int
    kind: Literal["altered", "removed", "reordered", "head_mismatch", "unknown_key"]
    detail: str


class AuditReport(BaseModel):
    ok: bool
    chains: int
    entries: int
    problems: list[AuditProblem]


class IssuancePublic(BaseModel):
    id: str
    project_code: str
    vintage: int
    quantity_kg: int
    serial: str
    issued_at: datetime


class RetirementPublic(BaseModel):
    id: str
    project_code: str
    vintage: int
    quantity_kg: int
    beneficiary: str
    reason: str
    claim_period_start: date | None
    claim_period_end: date | None
    claim_country: str | None
    retired_at: datetime
    serials: list[str]


class BufferReversalCmd(Movement):
    """Credits found invalid (a reversal: fire, pests) are replaced from the project's buffer."""

    invalid_serial: str = Field(max_length=120, description="the serial range of the credits found invalid")
    reason: str = Field(min_length=1, max_length=1000)
    idempotency_key: str = Field(min_length=1, max_length=120)
