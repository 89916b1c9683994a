"""Rows for API tests, made through the API itself (and keys through the access service)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from neutralize.access import users
from neutralize.access.domain import Role
from neutralize.access.service import create_key
from neutralize.accounts import service as accounts
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_session_factory, unit_of_work
from neutralize.market import service as market
from neutralize.registry import journal
from neutralize.registry import service as registry

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the API tests' clock
codes = itertools.count(1)  # unique names and codes across a module
PASSWORD = "a long enough password"


def key(client: TestClient, role: Role, organisation_id: str | None = None) -> dict[str, str]:
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        issued = create_key(
            session=session, clock=FixedClock(NOW), role=role, organisation_id=organisation_id
        )
    return {"Authorization": f"Bearer {issued.token}"}


def organisation(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    response = client.post(
        "/api/v1/registry/organisations", json={"name": f"Org {next(codes)}"}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()


def registered_project(
    client: TestClient, admin: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any]]:
    org = organisation(client, admin)
    owner = key(client, Role.PROJECT_OWNER, org["id"])
    code = f"API-P{next(codes)}"
    body = {
        "code": code,
        "name": "Metro riders",
        "standard": "CDCER",
        "methodology": "PT",
        "methodology_version": "1",
        "project_type": "transport",
        "credit_type": "avoidance",
        "nature_based": False,
        "country": "CN",
        "region": "CN-SC",
        "owner_organisation_id": org["id"],
        "labels": {"carbon_inclusive": True},
    }
    assert client.post("/api/v1/registry/projects", json=body, headers=owner).status_code == 201
    verifier = key(client, Role.VERIFIER, org["id"])
    for to_status, who in (("submitted", owner), ("validated", verifier), ("registered", admin)):
        response = client.post(
            f"/api/v1/registry/projects/{code}/transitions", json={"to_status": to_status}, headers=who
        )
        assert response.status_code == 200, response.text
    verification = client.post(
        "/api/v1/registry/verifications",
        headers=verifier,
        json={
            "project_code": code,
            "verifier": "CQC",
            "period_start": "2025-01-01",
            "period_end": "2025-12-31",
            "verified_kg": 5000,
            "report_sha256": "ab" * 32,
        },
    )
    assert verification.status_code == 201, verification.text
    issued = client.post(
        "/api/v1/registry/issuances",
        headers=admin,
        json={"verification_id": verification.json()["id"], "idempotency_key": f"i-{code}"},
    )
    assert issued.status_code == 201, issued.text
    return code, owner, org


def form_token(client: TestClient, path: str = "/") -> str:
    """The CSRF token a page's forms carry (the client keeps the matching cookie)."""
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, f"{path} has no form token"
    return found.group(1)


def signed_in(client: TestClient, role: Role, organisation_id: str | None = None) -> TestClient:
    """A browser of its own, signed in as a new account with ``role``."""
    web = TestClient(client.app)
    email = f"person{next(codes)}@example.org"
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        cmd = users.SignUp(email=email, password=PASSWORD, display_name="Person")
        users.sign_up(
            session=session, clock=FixedClock(NOW), cmd=cmd, role=role, organisation_id=organisation_id
        )
    body = {"email": email, "password": PASSWORD, "csrf_token": form_token(web, "/login")}
    assert web.post("/login", data=body, follow_redirects=False).status_code == 303
    return web


def ledgers_whole(client: TestClient) -> list[str]:
    """What the platform's own checks find wrong in the app's database (nothing, when whole): the
    registry's conservation and journal, the market's promises and money, the carbon accounts'
    totals. A test that sent refused requests calls it to see that nothing was kept half-done."""
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        registry_check = registry.check(session=session)
        audit = journal.verify(session=session)
        market_report = market.reconcile(session=session)
        balanced = market.settlements(session=session).balanced
        found = [str(f) for f in accounts.check(session=session)]
    found += [] if registry_check.ok else [f"registry check: {registry_check}"]
    found += [] if audit.ok else [f"journal audit: {audit}"]
    found += market_report.problems + ([] if balanced else ["the money ledger does not balance"])
    return found
