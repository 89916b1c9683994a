"""Event neutrality in the browser: an organiser takes a conference through every step to its public
page, claim and PDF report; forms need their CSRF token; nobody else sees or changes the steps."""

from __future__ import annotations

import itertools
import re
from typing import Any

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import form_token, organisation, signed_in

_numbers = itertools.count(1)
GOOD_LIST = (
    "reference,origin,distance_km,mode,nights,hotel_country\nR1,PEK,,,2,\nR2,Leshan,150,rail,1,\nR3,,,,,\n"
)
BAD_LIST = "reference,origin,distance_km,mode,nights,hotel_country\nR1,PEK,,,2,\nR2,Leshan,,rail,1,\n"


def conference(organiser: TestClient) -> str:
    slug = f"event-{next(_numbers)}"
    body = {
        "name": "Tianfu Forum",
        "slug": slug,
        "type": "conference",
        "country": "CN",
        "region": "CN-SC",
        "csrf_token": form_token(organiser, "/organiser"),
    }
    assert organiser.post("/organiser/scenes", data=body, follow_redirects=False).status_code == 303
    return slug


def post(web: TestClient, slug: str, step: str, data: dict[str, Any], **kwargs: Any) -> Any:
    path = f"/organiser/scenes/{slug}/neutrality"
    token = form_token(web, path)
    return web.post(f"{path}/{step}", data={**data, "csrf_token": token}, follow_redirects=False, **kwargs)


def test_an_organiser_takes_an_event_to_its_claim_and_report(
    client: TestClient, admin: dict[str, str], listing: dict[str, Any]
) -> None:
    organiser = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = conference(organiser)
    page = organiser.get(f"/organiser/scenes/{slug}/neutrality")
    assert page.status_code == 200 and 'id="no-bounds"' in page.text
    plan = {
        "expected_attendees": "3",
        "expected_kg": "2000",
        "reduction_plan": "Rail first",
        "starts_on": "2026-11-20",
        "ends_on": "2026-11-21",
        "destination_airport": "tfu",
    }
    assert post(organiser, slug, "plan", plan).status_code == 303
    measure = {"description": "Shuttle buses", "evidence": "contract BUS-7", "saved_kg": "120"}
    assert post(organiser, slug, "measures", measure).status_code == 303
    # a bad list is refused line by line, and nothing of it is kept
    bad = post(organiser, slug, "registrations", {}, files={"registration_list": ("list.csv", BAD_LIST)})
    assert bad.status_code == 422 and 'data-code="out_of_range"' in bad.text and "line 3" in bad.text
    good = post(organiser, slug, "registrations", {}, files={"registration_list": ("list.csv", GOOD_LIST)})
    assert good.status_code == 303
    for item in (
        {"kind": "electricity", "qualifier": "CN-SC", "quantity": "800"},
        {"kind": "catering", "qualifier": "vegetarian", "quantity": "9"},
    ):
        assert post(organiser, slug, "items", item).status_code == 303
    undeclared = post(organiser, slug, "items", {"kind": "declared", "qualifier": "waste", "quantity": "5"})
    assert undeclared.status_code == 422 and 'data-code="missing_field"' in undeclared.text
    # a guest on the list reports by QR with their registration number: counted once, self-reported
    guest = TestClient(client.app)
    answers = {
        "travel_mode": "rail",
        "distance_km": "150",
        "round_trip": "true",
        "nights": "1",
        "registration_ref": "R2",
        "csrf_token": form_token(guest, f"/s/{slug}"),
    }
    assert 'name="registration_ref"' in guest.get(f"/s/{slug}").text
    assert guest.post(f"/s/{slug}", data=answers).status_code == 200
    page = organiser.get(f"/organiser/scenes/{slug}/neutrality")
    assert "1 self-reported, 1 from the registration list, 1 extrapolated" in page.text
    assert 'id="extrapolated"' in page.text and 'id="status-account" data-complete="yes"' in page.text
    required = int(re.search(r'id="required-kg">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    # offset the upper bound: order, then pay in the sandbox
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    nonsense = post(
        organiser, slug, "offsets", {"listing_id": listing["id"], "kg": "-5", "idempotency_key": key}
    )
    assert nonsense.status_code == 422 and 'data-code="out_of_range"' in nonsense.text
    ordered = post(
        organiser, slug, "offsets", {"listing_id": listing["id"], "kg": str(required), "idempotency_key": key}
    )
    assert ordered.status_code == 303 and ordered.headers["location"].startswith("/orders/")
    pay = re.search(
        r'id="pay" href="[^"]*(/sandbox/pay/[^"]+)"', organiser.get(ordered.headers["location"]).text
    )
    assert pay
    organiser.post(
        pay.group(1), data={"outcome": "succeeded", "csrf_token": form_token(organiser, pay.group(1))}
    )
    page = organiser.get(f"/organiser/scenes/{slug}/neutrality")
    assert 'id="status-offset" data-complete="yes"' in page.text and 'id="claim-refused"' in page.text
    evaluation = {"kind": "third_party", "evaluator": "Sichuan Verification Centre", "reference": "SVC-118"}
    assert post(organiser, slug, "evaluation", evaluation).status_code == 303
    public = TestClient(client.app).get(f"/s/{slug}/neutrality")
    assert public.status_code == 200 and 'id="claim"' in public.text and "碳中和" in public.text
    assert "Sichuan Verification Centre" in public.text and "/certificates/NZC-" in public.text
    assert "800 kWh" in public.text and "9 meals" in public.text
    report = organiser.get(f"/organiser/scenes/{slug}/report.pdf")
    assert report.status_code == 200 and report.content.startswith(b"%PDF") and len(report.content) > 2_000


def test_neutrality_forms_need_their_token_and_their_organiser(
    client: TestClient, admin: dict[str, str]
) -> None:
    owner = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = conference(owner)
    path = f"/organiser/scenes/{slug}/neutrality"
    measure = {"description": "LED lighting", "evidence": "invoice 42"}
    forged = owner.post(f"{path}/measures", data={**measure, "csrf_token": "x" * 43}, follow_redirects=False)
    assert forged.status_code == 403 and 'data-code="csrf_failed"' in forged.text
    rival = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    assert rival.get(path).status_code == 404
    token = form_token(rival, "/organiser")
    hidden = rival.post(f"{path}/measures", data={**measure, "csrf_token": token}, follow_redirects=False)
    assert hidden.status_code == 404
    assert rival.get(f"/organiser/scenes/{slug}/report.pdf").status_code == 404
    member = signed_in(client, Role.MEMBER, None)
    assert member.get(path, follow_redirects=False).status_code == 303
    anonymous = TestClient(client.app)
    assert anonymous.get(f"/organiser/scenes/{slug}/report.pdf", follow_redirects=False).status_code == 303
    # the public page shows the steps in progress, without any neutrality wording
    public = anonymous.get(f"/s/{slug}/neutrality")
    assert public.status_code == 200 and 'id="claim-refused"' in public.text and "碳中和" not in public.text
    assert 'data-complete="no"' in public.text
    # and only events have neutrality steps
    hotel = {
        "name": "H",
        "slug": f"hotel-n{next(_numbers)}",
        "type": "hotel",
        "csrf_token": form_token(owner, "/organiser"),
    }
    owner.post("/organiser/scenes", data=hotel)
    assert anonymous.get(f"/s/{hotel['slug']}/neutrality").status_code == 404
    hotel_report = owner.get(f"/organiser/scenes/{hotel['slug']}/report.pdf")
    assert hotel_report.status_code == 200 and hotel_report.content.startswith(b"%PDF")
