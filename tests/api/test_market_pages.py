"""The page flow a guest follows: footprint → offset → order → (sandbox) payment → certificate → verify."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.api.factories import form_token


def test_a_guest_goes_from_footprint_to_a_verified_certificate(
    client: TestClient, listing: dict[str, Any]
) -> None:
    # given a computed footprint with an offset button
    calculated = client.post(
        "/",
        data={"origin": "PEK", "destination": "CTU", "cabin": "economy", "csrf_token": form_token(client)},
    )
    assert calculated.status_code == 200 and 'id="offset"' in calculated.text
    total = re.search(r'name="kg_co2e" value="([0-9.]+)"', calculated.text)
    assert total
    # when the guest opens the offset page for that footprint, choosing the listing
    offer = client.get("/offset", params={"kg_co2e": total.group(1), "listing_id": listing["id"]})
    assert offer.status_code == 200, offer.text
    assert "reaches the project owner" in offer.text and "simulated" in offer.text
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', offer.text))
    # and reserves with a name, twice (a double click), then is sent to one order
    body = {**form, "display_name": "Zhang Wei", "reason": "Flight to the forum"}
    first = client.post("/offset", data=body, follow_redirects=False)
    again = client.post("/offset", data=body, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    order_page = client.get(first.headers["location"])
    pay_url = re.search(r'id="pay" href="[^"]*(/sandbox/pay/[^"]+)"', order_page.text)
    assert pay_url, order_page.text
    # and approves the simulated payment
    assert "simulated" in client.get(pay_url.group(1)).text
    approve = {"outcome": "succeeded", "csrf_token": form_token(client, pay_url.group(1))}
    paid = client.post(pay_url.group(1), data=approve, follow_redirects=True)
    assert 'data-status="certified"' in paid.text
    number = re.search(r"/certificates/(NZC-[0-9A-Z-]+)", paid.text)
    assert number
    # then the certificate page states a contribution, and its QR target verifies
    certificate = client.get(f"/certificates/{number.group(1)}")
    assert "offset through the retirement of" in certificate.text and "<svg" in certificate.text
    verified = client.get(f"/verify/{number.group(1)}")
    assert 'data-ok="true"' in verified.text
    # and the project's public page counts the sale and the money passed on, reconciled
    project = client.get(f"/registry/projects/{listing['project_code']}")
    assert 'id="sales"' in project.text and "reconciled" in project.text and "DOES NOT" not in project.text


def test_bad_input_on_the_pages_is_explained(client: TestClient, listing: dict[str, Any]) -> None:
    assert client.get("/offset", params={"kg_co2e": "lots"}).status_code == 422
    assert client.get("/offset", params={"kg_co2e": "-3"}).status_code == 422
    offer = client.get("/offset", params={"kg_co2e": "12", "listing_id": listing["id"]})
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', offer.text))
    refused = client.post("/offset", data={**form, "display_name": "x" * 10_000})
    assert refused.status_code == 422 and "data-code" in refused.text
    control = client.post("/offset", data={**form, "display_name": "bad\x1bname"})
    assert control.status_code == 422 and 'data-code="invalid_text"' in control.text
    assert client.get("/verify/NZC-0000-0000-0000").status_code == 404
    assert client.get("/orders/ord_missing").status_code == 404
