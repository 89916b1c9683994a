"""The operator page: only admins get in, and it shows alerts, pending tonnes and settlements."""

from __future__ import annotations

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import form_token, key, organisation


def test_only_an_admin_key_opens_the_operations_page(client: TestClient, admin: dict[str, str]) -> None:
    fresh = TestClient(client.app)
    refused = fresh.get("/admin")
    assert refused.status_code == 401 and 'data-code="unauthenticated"' in refused.text
    member = key(client, Role.MEMBER, organisation(client, admin)["id"])["Authorization"].removeprefix(
        "Bearer "
    )
    csrf = form_token(fresh, "/admin")
    assert fresh.post("/admin/login", data={"api_key": member, "csrf_token": csrf}).status_code == 403
    assert fresh.post("/admin/login", data={"api_key": "nz_k_bogus", "csrf_token": csrf}).status_code == 403
    token = admin["Authorization"].removeprefix("Bearer ")
    signed_in = fresh.post(
        "/admin/login", data={"api_key": token, "csrf_token": csrf}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    page = fresh.get("/admin")
    assert page.status_code == 200 and 'id="alerts"' in page.text and "Settlements" in page.text
    fresh.post("/admin/logout", data={"csrf_token": csrf})
    assert fresh.get("/admin").status_code == 401
