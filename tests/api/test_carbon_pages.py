"""A person's carbon-account page and a partner's overview, in the browser: linking by code, the
balance, claim, points and level, redeeming once, consents; and who may see which page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import form_token, signed_in
from tests.api.test_accounts_api import credit, partner


def test_a_person_links_an_account_redeems_and_grants_a_consent(
    client: TestClient, admin: dict[str, str]
) -> None:
    metro, metro_key = partner(client, admin)
    _shop, shop_key = partner(client, admin)
    credit(client, metro["id"], "page-rider", 15_000)  # 150 points
    offer = client.post("/api/v1/benefits", headers=shop_key, json={"title": "Coffee", "points": 100}).json()
    person = signed_in(client, Role.MEMBER)
    assert "No carbon account is linked to you yet" in person.get("/carbon").text
    code = client.post("/api/v1/accounts/page-rider/link-codes", headers=metro_key).json()["code"]
    linked = person.post("/carbon/link", data={"code": code, "csrf_token": form_token(person, "/carbon")})
    assert linked.status_code == 200 and "Account page-rider" in linked.text
    assert (
        'class="num points">150<' in linked.text and 'id="level">Level: <strong>green commuter' in linked.text
    )
    # redeeming: the form's key makes a double submit count once
    form = re.search(r'<input type="hidden" name="idempotency_key" value="([^"]+)">', linked.text)
    account = re.search(r'<input type="hidden" name="account_id" value="([^"]+)">', linked.text)
    assert form and account
    body = {"account_id": account.group(1), "benefit_id": offer["id"], "idempotency_key": form.group(1),
            "csrf_token": form_token(person, "/carbon")}  # fmt: skip
    assert person.post("/carbon/redeem", data=body).status_code == 200
    after = person.post("/carbon/redeem", data=body)
    assert 'class="num points">50<' in after.text
    refused = person.post("/carbon/redeem", data={**body, "idempotency_key": "another-key-1"})
    assert refused.status_code == 422 and "insufficient_points" in refused.text
    # a wrong code is explained; a consent is granted and withdrawn
    wrong = person.post(
        "/carbon/link", data={"code": "WRONG123", "csrf_token": form_token(person, "/carbon")}
    )
    assert wrong.status_code == 422 and "token_invalid" in wrong.text
    granted = person.post("/carbon/consents", data={"partner_id": offer["partner_id"],
                                                    "csrf_token": form_token(person, "/carbon")})  # fmt: skip
    consent = re.search(r"<code>(lvc_[0-9a-z]+)</code>", granted.text)
    assert consent
    assert client.get(f"/api/v1/levels/{consent.group(1)}", headers=shop_key).status_code == 200
    person.post(
        f"/carbon/consents/{consent.group(1)}/withdraw", data={"csrf_token": form_token(person, "/carbon")}
    )
    assert client.get(f"/api/v1/levels/{consent.group(1)}", headers=shop_key).status_code == 404
    # another person sees none of it
    other = signed_in(client, Role.MEMBER)
    assert "page-rider" not in other.get("/carbon").text


def test_a_partner_sees_its_accounts_and_rejected_records(client: TestClient, admin: dict[str, str]) -> None:
    metro, _key = partner(client, admin)
    credit(client, metro["id"], "p-1", 1_000)
    credit(client, metro["id"], "p-2", 0)  # rejected
    desk = signed_in(client, Role.INTEGRATOR, metro["id"])
    overview = desk.get("/partner")
    assert (
        overview.status_code == 200
        and 'id="accounts">2<' in overview.text
        and "speed_implausible" in overview.text
    )
    member = signed_in(client, Role.MEMBER).get("/partner", follow_redirects=False)
    assert member.status_code == 303 and member.headers["location"] == "/login"
    assert TestClient(client.app).get("/partner", follow_redirects=False).headers["location"] == "/login"
