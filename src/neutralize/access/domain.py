"""Who may do what: the canonical roles and the actor a request or command acts as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """The six canonical roles (DESIGN.md §2), shared by API keys and user accounts."""

    ADMIN = "admin"
    VERIFIER = "verifier"
    PROJECT_OWNER = "project_owner"
    ORGANISER = "organiser"
    MEMBER = "member"
    INTEGRATOR = "integrator"


@dataclass(frozen=True)
class Actor:
    """Who acts: an API key (or, later, a user) with its role and organisation."""

    id: str  # the key id (or user id); recorded in the journal
    role: Role
    organisation_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


SYSTEM = Actor(id="system", role=Role.ADMIN)  # for demo data and migrations run by an operator
