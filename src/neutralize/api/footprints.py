"""Footprint routes: calculate (and keep) a footprint, fetch it, compute a batch file."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, File, Query, UploadFile, status
from fastapi.responses import FileResponse

from neutralize.api.deps import ClockDep, SessionDep
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint import service
from neutralize.footprint.schemas import FootprintCreate, FootprintPublic

router = APIRouter(prefix="/api/v1/footprints", tags=["footprints"])

_MEDIA = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}


@router.post("", status_code=status.HTTP_201_CREATED)
def create_footprint(body: FootprintCreate, session: SessionDep, clock: ClockDep) -> FootprintPublic:
    """Compute up to 1,000 activities line by line, keep the result and return it."""
    footprint = service.calculate(activities=body.activities)
    return service.save(session=session, clock=clock, footprint=footprint)


@router.get("/{footprint_id}")
def read_footprint(footprint_id: str, session: SessionDep) -> FootprintPublic:
    return service.get(session=session, footprint_id=footprint_id)


@router.post("/batch")
def compute_batch(
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="CSV, Parquet or JSON Lines, up to 100 MB")],
    output: Annotated[Literal["csv", "parquet", "jsonl"], Query(alias="format")] = "csv",
) -> FileResponse:
    """Compute every row of an uploaded file; bad rows carry their error code, the rest compute.

    The response is the result table; headers carry the row, failure and total counts.
    """
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in service.BATCH_FORMATS:
        raise DomainError(
            code=ErrorCode.UNSUPPORTED_FORMAT,
            message=f"upload a file ending in one of {', '.join(service.BATCH_FORMATS)}",
        )
    workdir = Path(tempfile.mkdtemp(prefix="neutralize-batch-"))
    background.add_task(shutil.rmtree, workdir, ignore_errors=True)
    source = workdir / f"input{suffix}"
    with source.open("wb") as handle:
        shutil.copyfileobj(file.file, handle)
    destination = workdir / f"footprints.{output}"
    summary = service.compute_batch(source=source, destination=destination)
    return FileResponse(
        destination,
        media_type=_MEDIA[output],
        filename=destination.name,
        headers={
            "X-Rows": str(summary.rows),
            "X-Failed": str(summary.failed),
            "X-Total-Kg-CO2e": str(summary.total_kg_co2e),
        },
    )
