"""Published facts anyone may fetch: the signing keys, current and retired."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from neutralize.core.signing import KeyRing

router = APIRouter(tags=["public"])


@router.get("/.well-known/neutralize-keys.json")
def signing_keys(request: Request) -> dict[str, Any]:
    """The Ed25519 public keys that sign checkpoints and certificates (JWK, RFC 8037)."""
    keys: KeyRing = request.app.state.keys
    return keys.published_keys()
