"""API keys: create (the secret is shown once), authenticate, revoke."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.models import ApiKey
from neutralize.core.clock import Clock
from neutralize.core.errors import DomainError, ErrorCode

TOKEN_PREFIX = "nz"


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``token`` is the only time the secret is seen."""

    id: str
    role: Role
    organisation_id: str | None
    token: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    *, session: Session, clock: Clock, role: Role, organisation_id: str | None, label: str = ""
) -> IssuedKey:
    """A new API key for ``role``; only its SHA-256 digest is stored (the secret is random, 256 bits)."""
    # A member may be a person on their own (no organisation holds credits for them); every other
    # role but admin acts for an organisation.
    if role not in (Role.ADMIN, Role.MEMBER) and organisation_id is None:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"a {role} key belongs to an organisation")
    key_id = "k_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(
            id=key_id,
            secret_sha256=_digest(secret),
            role=role.value,
            organisation_id=organisation_id,
            label=label[:200],
            created_at=clock.now(),
        )
    )
    session.flush()
    return IssuedKey(
        id=key_id, role=role, organisation_id=organisation_id, token=f"{TOKEN_PREFIX}_{key_id}_{secret}"
    )


def authenticate(*, session: Session, token: str) -> Actor:
    """The actor a token stands for; ``UNAUTHENTICATED`` if it is unknown, malformed or revoked."""
    parts = token.strip().split("_", 3)
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX or parts[1] != "k":
        raise _unauthenticated()
    key = session.get(ApiKey, f"k_{parts[2]}")
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.secret_sha256, _digest(parts[3]))
    ):
        raise _unauthenticated()
    return Actor(id=key.id, role=Role(key.role), organisation_id=key.organisation_id)


def revoke_key(*, session: Session, clock: Clock, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise DomainError(code=ErrorCode.NOT_FOUND, message=f"no key {key_id!r}")
    key.revoked_at = key.revoked_at or clock.now()


def require(actor: Actor | None, *roles: Role) -> Actor:
    """The actor, if it has one of ``roles``; otherwise ``UNAUTHENTICATED`` or ``FORBIDDEN``."""
    if actor is None:
        raise _unauthenticated()
    if actor.role not in roles:
        raise DomainError(code=ErrorCode.FORBIDDEN, message=f"a {actor.role} key may not do this")
    return actor


def _unauthenticated() -> DomainError:
    return DomainError(code=ErrorCode.UNAUTHENTICATED, message="a valid API key is needed")
