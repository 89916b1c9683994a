"""The operator page: only admins get in, and it shows alerts, pending tonnes and settlements."""

from __future__ import annotations

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import key, organisation


def test_only_an_admin_key_opens_the_operations_page(client: TestClient, admin: dict[str, str]) -> None:
    fresh = TestClient(client.app)
    assert fresh.get("/admin").status_code == 401
    member = key(client, Role.MEMBER, organisation(client, admin)["id"])["Authorization"].removeprefix(
        "Bearer "
    )
    assert fresh.post("/admin/login", data={"api_key": member}).status_code == 403
    assert fresh.post("/admin/login", data={"api_key": "nz_k_bogus"}).status_code == 403
    token = admin["Authorization"].removeprefix("Bearer ")
    signed_in = fresh.post("/admin/login", data={"api_key": token}, follow_redirects=False)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/admin" in cookie
    page = fresh.get("/admin")
    assert page.status_code == 200 and 'id="alerts"' in page.text and "Settlements" in page.text
    fresh.post("/admin/logout")
    assert fresh.get("/admin").status_code == 401
