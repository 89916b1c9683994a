"""The market API: a guest from quote to verified certificate, webhooks, and bad input."""

from __future__ import annotations

import io
import math
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from neutralize.access.domain import Role
from neutralize.app import create_app
from neutralize.certificates import service as certificates
from neutralize.certificates.render import signed_json_from_pdf
from neutralize.core.clock import FixedClock
from neutralize.market.gateways.base import EventKind
from neutralize.market.gateways.sandbox import SIGNATURE_HEADER, SandboxGateway
from tests.api.factories import NOW, key, registered_project


def order(
    client: TestClient, listing: dict[str, Any], kg: int, key_: str, name: str = "Guest"
) -> dict[str, Any]:
    quote = client.post("/api/v1/quotes", json={"kg": kg, "listing_id": listing["id"]})
    assert quote.status_code == 201, quote.text
    body = {"quote_id": quote.json()["id"], "beneficiary": {"display_name": name}, "idempotency_key": key_}
    created = client.post("/api/v1/orders", json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_a_guest_pays_in_the_sandbox_and_the_certificate_verifies(
    client: TestClient, listing: dict[str, Any]
) -> None:
    # given an order for 340 kg awaiting payment in the (simulated) sandbox
    placed = order(client, listing, 340, "api-guest-0001", name="王芳")
    assert placed["status"] == "payment_pending" and placed["simulated_payment"]
    ref = placed["next_action"]["url"].rsplit("/", 1)[1]
    # when the buyer pays and the provider delivers its notification twice
    paid = client.post(f"/api/v1/payments/sandbox/{ref}", json={"outcome": "succeeded", "deliveries": 2})
    assert paid.status_code == 200, paid.text
    assert paid.json()["effects"] == ["paid", "duplicate: no effect"]
    # then the order is certified and its certificate is signed and verifies live
    done = client.get(f"/api/v1/orders/{placed['id']}").json()
    assert done["status"] == "certified"
    number = done["certificate_number"]
    signed = client.get(f"/api/v1/certificates/{number}").json()
    assert signed["certificate"]["holder"]["display_name"] == "王芳"
    assert signed["signature"]["algorithm"] == "Ed25519"
    verification = client.get(f"/api/v1/certificates/{number}/verification").json()
    assert verification["ok"], verification
    # and the public sees the project's sales reconciled with the money passed on
    sales = client.get(f"/api/v1/market/projects/{listing['project_code']}/sales").json()
    assert sales[0]["kg_sold"] >= 340 and sales[0]["reconciled"]


def test_a_badly_signed_webhook_is_refused(client: TestClient, listing: dict[str, Any]) -> None:
    placed = order(client, listing, 10, "api-guest-0002")
    ref = placed["next_action"]["url"].rsplit("/", 1)[1]
    forger = SandboxGateway(secret="not-the-secret", fee_bp=0, pay_url="x")
    headers, body = forger.notification(
        provider_ref=ref,
        kind=EventKind.SUCCEEDED,
        amount_minor=placed["split"]["total_minor"],
        currency="CNY",
        signed_at=NOW,
    )
    response = client.post("/api/v1/payments/webhooks/sandbox", content=body, headers=headers)
    assert response.status_code == 422 and response.json()["code"] == "webhook_signature_invalid"
    assert client.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "payment_pending"
    unsigned = client.post(
        "/api/v1/payments/webhooks/sandbox", content=body, headers={SIGNATURE_HEADER: "t=1"}
    )
    assert unsigned.status_code == 422
    assert client.post("/api/v1/payments/webhooks/stripe", content=body).json()["code"] == "unknown_gateway"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kg": 0}, "out_of_range"),
        ({"kg": -5}, "out_of_range"),
        ({"kg": 10**12}, "out_of_range"),
        ({"kg_co2e": "NaN"}, "wrong_type"),
        ({"kg": 5, "kg_co2e": "5"}, "invalid_request"),
        ({"kg": 5, "listing_id": "lst_unknown"}, "not_found"),
        ({"kg": 5, "currency": "EURO"}, "wrong_type"),
        ({"kg": 5, "gateway": "paypal"}, "unknown_value"),
    ],
)
def test_bad_quotes_get_codes(
    client: TestClient, listing: dict[str, Any], body: dict[str, Any], code: str
) -> None:
    response = client.post("/api/v1/quotes", json=body)
    assert 400 <= response.status_code < 500, response.text
    codes = {response.json()["code"], *(p["code"] for p in response.json().get("problems", []))}
    assert code in codes, response.json()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Li\x07Wei", "invalid_text"),
        ("x" * 10_000, "out_of_range"),
        ("", "out_of_range"),
        ("   ", "out_of_range"),
    ],
)
def test_bad_beneficiaries_get_codes(
    client: TestClient, listing: dict[str, Any], name: str, code: str
) -> None:
    quote = client.post("/api/v1/quotes", json={"kg": 5, "listing_id": listing["id"]}).json()
    body = {
        "quote_id": quote["id"],
        "beneficiary": {"display_name": name},
        "idempotency_key": f"bad-{len(name)}-{code}",
    }
    response = client.post("/api/v1/orders", json=body)
    assert response.status_code == 422, response.text
    codes = {response.json()["code"], *(p["code"] for p in response.json().get("problems", []))}
    assert code in codes, response.json()


def test_settlements_are_for_admins_and_owners_only(
    client: TestClient,
    admin: dict[str, str],
    listing: dict[str, Any],
) -> None:
    placed = order(client, listing, 25, "api-guest-0003")
    ref = placed["next_action"]["url"].rsplit("/", 1)[1]
    assert client.post(f"/api/v1/payments/sandbox/{ref}", json={}).json()["effects"] == ["paid"]
    assert client.get("/api/v1/market/settlements").status_code == 401
    member = key(client, Role.MEMBER, listing["seller_organisation_id"])
    assert client.get("/api/v1/market/settlements", headers=member).status_code == 403
    report = client.get("/api/v1/market/settlements", headers=admin).json()
    assert report["balanced"]
    owner = key(client, Role.PROJECT_OWNER, listing["seller_organisation_id"])
    own = client.get("/api/v1/market/settlements", headers=owner).json()
    assert [s["organisation_id"] for s in own] == [listing["seller_organisation_id"]]


def test_the_certificate_pdf_and_card_carry_the_signed_json_and_verify_offline(
    client: TestClient, listing: dict[str, Any], tmp_path: Any
) -> None:
    placed = order(client, listing, 12, "api-guest-0004", name="陈静")
    ref = placed["next_action"]["url"].rsplit("/", 1)[1]
    client.post(f"/api/v1/payments/sandbox/{ref}", json={})
    number = client.get(f"/api/v1/orders/{placed['id']}").json()["certificate_number"]
    pdf = client.get(f"/api/v1/certificates/{number}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert number in "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    published = client.get("/.well-known/neutralize-keys.json").json()
    assert certificates.verify_offline(signed_json_from_pdf(pdf.content), published).ok
    card = client.get(f"/api/v1/certificates/{number}/card.png")
    assert card.status_code == 200 and card.content.startswith(b"\x89PNG")
    assert client.get("/api/v1/certificates/NZC-0000-0000-0000/pdf").status_code == 404


def test_the_app_voids_stale_reservations_by_itself(api_settings: Any, tmp_path: Any) -> None:
    """With its periodic jobs on, a running app expires an unpaid order without any cron."""
    clock = FixedClock(NOW)
    settings = api_settings.model_copy(
        update={"market_jobs_seconds": 1, "reservation_ttl_seconds": 10, "signing_key_dir": tmp_path / "keys"}
    )
    with TestClient(create_app(settings, clock=clock)) as app_client:
        admin_ = key(app_client, Role.ADMIN)
        code, owner, _org = registered_project(app_client, admin_)
        body = {"project_code": code, "vintage": 2025, "price_per_tonne_minor": 6_000, "available_kg": 100}
        listed = app_client.post("/api/v1/listings", json=body, headers=owner).json()
        placed = order(app_client, listed, 100, "api-guest-jobs-1")
        clock.advance(timedelta(minutes=1))
        for _ in range(50):
            if app_client.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "expired":
                break
            time.sleep(0.1)
        assert app_client.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "expired"


def test_a_stored_footprint_is_quoted_rounded_up_to_whole_kilograms(
    client: TestClient, listing: dict[str, Any]
) -> None:
    body = {"activities": [{"type": "hotel", "country": "CN", "nights": 2}]}
    stored = client.post("/api/v1/footprints", json=body)
    assert stored.status_code == 201, stored.text
    footprint = stored.json()
    quote = client.post("/api/v1/quotes", json={"footprint_id": footprint["id"], "listing_id": listing["id"]})
    assert quote.status_code == 201, quote.text
    total = Decimal(footprint["total_kg_co2e"])
    assert quote.json()["kg"] == math.ceil(total) and quote.json()["kg"] >= total
    assert footprint["id"] in quote.json()["offsets"]["en"]
    missing = client.post("/api/v1/quotes", json={"footprint_id": "fp_missing"})
    assert missing.status_code == 404


def test_order_creation_is_rate_limited_per_client(
    api_settings: Any, tmp_path: Any, listing: dict[str, Any]
) -> None:
    settings = api_settings.model_copy(
        update={"orders_per_minute": 2, "market_jobs_seconds": 0, "signing_key_dir": tmp_path / "keys"}
    )
    app = create_app(settings, clock=FixedClock(NOW))
    with TestClient(app, client=("192.0.2.77", 40000)) as app_client:
        codes = []
        for n in range(3):
            quote = app_client.post("/api/v1/quotes", json={"kg": 1, "listing_id": listing["id"]}).json()
            body = {
                "quote_id": quote["id"],
                "beneficiary": {"display_name": "X"},
                "idempotency_key": f"rate-{n:08d}",
            }
            codes.append(app_client.post("/api/v1/orders", json=body).status_code)
    assert codes == [201, 201, 429]
