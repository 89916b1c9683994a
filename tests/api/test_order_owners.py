"""Whose an order is: a signed-in buyer keeps it at once; a guest claims it later through the order's
own link; nobody takes an order another account keeps; the account page lists what it keeps."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import form_token, signed_in


def buy(web: TestClient, listing: dict[str, Any], name: str) -> tuple[str, str]:
    """Offset 120 kg through the pages and pay in the sandbox; the order's path and certificate number."""
    offer = web.get("/offset", params={"kg_co2e": "120", "listing_id": listing["id"]})
    assert offer.status_code == 200, offer.text
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', offer.text))
    placed = web.post("/offset", data={**form, "display_name": name}, follow_redirects=False)
    assert placed.status_code == 303, placed.text
    order_path = placed.headers["location"]
    pay = re.search(r'id="pay" href="[^"]*(/sandbox/pay/[^"]+)"', web.get(order_path).text)
    assert pay
    paid = web.post(pay.group(1), data={"outcome": "succeeded", "csrf_token": form_token(web, pay.group(1))})
    number = re.search(r"/certificates/(NZC-[0-9A-Z-]+)", paid.text)
    assert number, paid.text
    return order_path, number.group(1)


def test_a_guest_claims_their_order_later_and_nobody_else_can(
    client: TestClient, listing: dict[str, Any]
) -> None:
    guest = TestClient(client.app)
    order_path, number = buy(guest, listing, "Guest Claimer")
    assert "Sign in or create an account" in guest.get(order_path).text
    # the guest signs up later and keeps the order from its page
    person = signed_in(client, Role.MEMBER)
    assert f"/certificates/{number}" not in person.get("/account").text
    claim = f"{order_path}/claim"
    kept = person.post(claim, data={"csrf_token": form_token(person, "/account")}, follow_redirects=False)
    assert kept.status_code == 303 and kept.headers["location"] == order_path
    assert "kept in your account" in person.get(order_path).text
    assert f"/certificates/{number}" in person.get("/account").text
    # claiming again changes nothing; someone else is refused and the order stays where it is
    again = person.post(claim, data={"csrf_token": form_token(person, "/account")}, follow_redirects=False)
    assert again.status_code == 303
    other = signed_in(client, Role.MEMBER)
    refused = other.post(claim, data={"csrf_token": form_token(other, "/account")})
    assert refused.status_code == 422 and "already_claimed" in refused.text
    assert "kept in another account" in other.get(order_path).text
    assert f"/certificates/{number}" not in other.get("/account").text
    # without a session the claim goes to the sign-in page; without a token it is refused
    assert (
        guest.post(claim, data={"csrf_token": form_token(guest)}, follow_redirects=False).headers["location"]
        == "/login"
    )
    assert person.post(claim, data={}).status_code == 403
    missing = person.post("/orders/ord_nothing/claim", data={"csrf_token": form_token(person, "/account")})
    assert missing.status_code == 404 and "not_found" in missing.text


def test_a_signed_in_buyer_keeps_the_order_at_once(client: TestClient, listing: dict[str, Any]) -> None:
    buyer = signed_in(client, Role.MEMBER)
    order_path, number = buy(buyer, listing, "Signed-in Buyer")
    assert "kept in your account" in buyer.get(order_path).text
    account = buyer.get("/account")
    assert f'href="{order_path}"' in account.text and f"/certificates/{number}" in account.text
