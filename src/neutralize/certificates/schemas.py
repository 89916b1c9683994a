"""Certificate shapes returned by the API and the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class Verification(BaseModel):
    """What a verifier learns about a certificate: whether it is genuine and still true."""

    number: str
    ok: bool
    status: str | None  # retired, pending (None when the certificate could not be read)
    version: int | None
    current_version: int | None
    key_id: str | None
    checks: list[Check]
    replaced_by: list[str]
    certificate: dict[str, Any] | None
