from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from neutralize.app import create_app
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from tests.api.factories import NOW, key, registered_project
from tests.conftest import BACKENDS, fresh_database


@pytest.fixture(scope="session", params=BACKENDS)
def api_settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A database of the API tests' own: requests commit, so they must not share the rolled-back one."""
    return fresh_database(request.param, "api", tmp_path_factory)


@pytest.fixture(scope="module")
def client(api_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = api_settings.model_copy(
        update={
            "max_request_bytes": 64 * 1024,
            "max_upload_bytes": 256 * 1024,
            "signing_key_dir": tmp_path_factory.mktemp("keys"),
            "market_jobs_seconds": 0,
            "signups_per_hour": 1_000,  # the tests sign up many people from one address
            "orders_per_minute": 1_000,  # and order a lot with a clock that stands still
        }
    )
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def admin(client: TestClient) -> dict[str, str]:

    return key(client, Role.ADMIN)


@pytest.fixture(scope="module")
def listing(client: TestClient, admin: dict[str, str]) -> dict[str, Any]:
    """A project owner's listing of 5 t of native credits at 60 CNY a tonne."""

    code, owner, _org = registered_project(client, admin)
    body = {"project_code": code, "vintage": 2025, "price_per_tonne_minor": 6_000, "available_kg": 5_000}
    response = client.post("/api/v1/listings", json=body, headers=owner)
    assert response.status_code == 201, response.text
    return dict(response.json())
