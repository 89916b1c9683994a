"""What callers send to the mirror and get back from it."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class ImportReport(BaseModel):
    """What an import mirrored."""

    batch_id: str
    programme: str
    already_imported: bool
    projects: int
    blocks: int
    kg_by_status: dict[str, int] = Field(
        description="the file's units, each counted once by its innermost block: a retired block "
        "inside an issued one counts as retired, the rest of the issued one as issued"
    )
    replaced_blocks: int = Field(
        description="blocks mirrored from earlier files that this import removed or cut"
    )
    superseded: bool = Field(
        description="some of the file's blocks are no longer mirrored as it gives them: newer imports "
        "replaced them (only an already imported file can say so)"
    )
    duplicates: list[str]


class MirroredBlockPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    programme: str
    serial: str
    first_unit: int
    last_unit: int
    quantity_kg: int
    status: str
    vintage_start: date
    vintage_end: date
    issued_on: date | None
    retired_on: date | None
    beneficiary: str | None
    reason: str | None
    remaining_kg: int | None = Field(
        default=None, description="issued blocks: the kg in no retired or cancelled block inside it"
    )
    part_of: str | None = Field(
        default=None, description="a retired or cancelled block inside an issued one: that block's serial"
    )


class HomeHoldingCreate(BaseModel):
    """Units the platform holds in its own account at a home registry (its stock to sell)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_code: str = Field(max_length=40)
    home_account: str = Field(min_length=1, max_length=200, description="the platform's account there")
    serial: str = Field(min_length=1, max_length=200, description="the home serial range, as published")
    vintage: int = Field(ge=1990, le=2100)
    quantity_tonnes: int = Field(gt=0, le=10**9)


class HomeHoldingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    programme: str
    home_account: str
    serial: str
    vintage: int
    quantity_tonnes: int
    retired_tonnes: int


class HomeRetirementCreate(BaseModel):
    """A retirement the operator made on the home registry's site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holding_id: str | None = Field(default=None, max_length=40, description="the holding it drew on")
    project_code: str = Field(max_length=40)
    vintage: int | None = Field(default=None, ge=1990, le=2100, description="taken from the holding if given")
    home_retirement_id: str = Field(min_length=1, max_length=120)
    serial: str = Field(min_length=1, max_length=200, description="the home serial range, as published")
    quantity_tonnes: int = Field(gt=0, le=10**9)
    retired_on: date
    beneficiary_text: str = Field(min_length=1, max_length=500, description="as entered on the home registry")


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    home_retirement_id: str = Field(max_length=40, description="this registry's id of the home retirement")
    kg: int = Field(gt=0, le=10**12)
    beneficiary: str = Field(min_length=1, max_length=300)
    reference: str = Field(min_length=1, max_length=120, description="the order the share belongs to")


class SharePublic(BaseModel):
    id: int
    kg: int
    beneficiary: str
    reference: str


class HomeRetirementPublic(BaseModel):
    id: str
    project_code: str
    programme: str
    vintage: int | None
    home_retirement_id: str
    serial: str
    quantity_tonnes: int
    quantity_kg: int
    allocated_kg: int
    retired_on: date
    beneficiary_text: str
    merkle_root: str
    shares: list[SharePublic]


# --- imports --------------------------------------------------------------------------------------
