"""Scenes in the browser: an organiser makes a scene and its poster; guests take part and offset;
the dashboard counts them; nobody else sees the organiser's pages."""

from __future__ import annotations

import itertools
import re
from urllib.parse import urlencode

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from tests.api.factories import form_token, organisation, signed_in

_numbers = itertools.count(1)


def test_an_organiser_runs_a_conference_and_guests_offset(
    client: TestClient, admin: dict[str, str], listing: dict[str, object]
) -> None:
    organiser = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = f"forum-{next(_numbers)}"
    body = {"name": "Tianfu Forum", "slug": slug, "type": "conference", "country": "CN", "region": "CN-SC",
            "csrf_token": form_token(organiser, "/organiser")}  # fmt: skip
    created = organiser.post("/organiser/scenes", data=body, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"] == f"/organiser/scenes/{slug}"
    # the poster
    pdf = organiser.get(f"/organiser/scenes/{slug}/poster.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert organiser.get(f"/organiser/scenes/{slug}/poster.png").content.startswith(b"\x89PNG")
    assert b"<svg" in organiser.get(f"/organiser/scenes/{slug}/poster.svg").content
    # two guests take part; one offsets
    guest = TestClient(client.app)
    landing = guest.get(f"/s/{slug}")
    assert landing.status_code == 200 and "Tianfu Forum" in landing.text
    answers = {"travel_mode": "flight", "origin": "PEK", "destination": "CTU", "round_trip": "true",
               "nights": "2", "csrf_token": form_token(guest, f"/s/{slug}")}  # fmt: skip
    result = guest.post(f"/s/{slug}", data=answers)
    assert result.status_code == 200 and 'id="offset"' in result.text
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', result.text))
    params = {"footprint_id": hidden["footprint_id"], "participation": hidden["participation"],
              "listing_id": listing["id"]}  # fmt: skip
    offer = guest.get("/offset", params=params)
    assert offer.status_code == 200, offer.text
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]+)">', offer.text))
    assert form["participation"] == hidden["participation"]
    placed = guest.post("/offset", data={**form, "display_name": "Guest One"}, follow_redirects=False)
    assert placed.status_code == 303
    order_page = guest.get(placed.headers["location"])
    pay = re.search(r'id="pay" href="[^"]*(/sandbox/pay/[^"]+)"', order_page.text)
    assert pay
    paid = guest.post(
        pay.group(1), data={"outcome": "succeeded", "csrf_token": form_token(guest, pay.group(1))}
    )
    number = re.search(r"/certificates/(NZC-[0-9A-Z-]+)", paid.text)
    assert number
    certificate = guest.get(f"/certificates/{number.group(1)}")
    assert f'href="/leaderboards/{slug}?me={hidden["participation"]}"' in certificate.text
    other = TestClient(client.app)
    rail = {
        "travel_mode": "rail",
        "distance_km": "350",
        "meals": "3",
        "csrf_token": form_token(other, f"/s/{slug}"),
    }
    other_result = other.post(f"/s/{slug}", data=rail)
    assert other_result.status_code == 200
    # the first guest's order form sent again from the other participation: its idempotency key gives
    # the same order back, which offsets the first participation only
    resent = {**form, "display_name": "Guest One", "participation": _participation(other_result),
              "csrf_token": form_token(other, f"/offset?{urlencode(params)}")}  # fmt: skip
    refused = other.post("/offset", data=resent, follow_redirects=False)
    assert 400 <= refused.status_code < 500 and 'data-code="duplicate"' in refused.text, refused.text
    # then the dashboard counts both, by category and mode, and the offset share
    board = organiser.get(f"/organiser/scenes/{slug}")
    assert 'id="participants">2<' in board.text
    assert "flight" in board.text and "rail" in board.text and listing["project_code"] in board.text
    share = re.search(r'id="offset-share">([0-9.]+)<', board.text)
    assert share and 0 < float(share.group(1)) < 100
    # and the leaderboard ranks the guest who offset first, under a masked name, the other second
    board_page = guest.get(f"/leaderboards/{slug}")
    assert (
        board_page.status_code == 200
        and "<td>G*</td>" in board_page.text
        and "Guest One" not in board_page.text
    )
    mine = other.get(f"/leaderboards/{slug}", params={"me": _participation(other_result)})
    assert 'id="my-rank">Your place: <strong>2</strong>' in mine.text
    exported = organiser.get(f"/organiser/scenes/{slug}/participants.csv")
    assert exported.status_code == 200 and exported.text.count("\n") == 3


def test_bad_answers_are_explained_on_the_scene_page(client: TestClient, admin: dict[str, str]) -> None:
    organiser = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = f"spot-{next(_numbers)}"
    body = {
        "name": "Spot",
        "slug": slug,
        "type": "scenic_spot",
        "csrf_token": form_token(organiser, "/organiser"),
    }
    organiser.post("/organiser/scenes", data=body)
    guest = TestClient(client.app)
    bad = {
        "travel_mode": "flight",
        "origin": "XXX",
        "destination": "CTU",
        "csrf_token": form_token(guest, f"/s/{slug}"),
    }
    response = guest.post(f"/s/{slug}", data=bad)
    assert response.status_code == 422 and 'data-code="unknown_airport"' in response.text
    crowded = {**bad, **{f"field{n}": "x" for n in range(60)}}
    response = guest.post(f"/s/{slug}", data=crowded)
    assert response.status_code == 413 and 'data-code="payload_too_large"' in response.text
    assert guest.get("/s/no-such-scene").status_code == 404


def test_only_the_organiser_sees_a_scenes_dashboard(client: TestClient, admin: dict[str, str]) -> None:
    owner = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = f"hotel-{next(_numbers)}"
    owner.post(
        "/organiser/scenes",
        data={"name": "H", "slug": slug, "type": "hotel", "csrf_token": form_token(owner, "/organiser")},
    )
    rival = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    assert rival.get(f"/organiser/scenes/{slug}").status_code == 404
    assert rival.get(f"/organiser/scenes/{slug}/participants.csv").status_code == 404
    member = signed_in(client, Role.MEMBER, None)
    assert member.get(f"/organiser/scenes/{slug}", follow_redirects=False).status_code == 303
    anonymous = TestClient(client.app)
    assert anonymous.get(f"/organiser/scenes/{slug}/poster.pdf", follow_redirects=False).status_code == 303
    taken = owner.post(
        "/organiser/scenes",
        data={"name": "H2", "slug": slug, "type": "hotel", "csrf_token": form_token(owner, "/organiser")},
    )
    assert taken.status_code == 422 and 'data-code="duplicate"' in taken.text


def _participation(result: object) -> str:
    found = re.search(r'name="participation" value="([^"]+)"', result.text)  # type: ignore[attr-defined]
    assert found
    return found.group(1)


def test_a_signed_in_guest_counts_for_their_organisation(client: TestClient, admin: dict[str, str]) -> None:
    organiser = signed_in(client, Role.ORGANISER, organisation(client, admin)["id"])
    slug = f"hotel-{next(_numbers)}"
    body = {"name": "Lakeside Hotel", "slug": slug, "type": "hotel", "country": "CN",
            "csrf_token": form_token(organiser, "/organiser")}  # fmt: skip
    assert organiser.post("/organiser/scenes", data=body, follow_redirects=False).status_code == 303
    company = organisation(client, admin)
    member = signed_in(client, Role.MEMBER, company["id"])
    stayed = member.post(f"/s/{slug}", data={"nights": "2", "csrf_token": form_token(member, f"/s/{slug}")})
    assert stayed.status_code == 200
    board = member.get(f"/leaderboards/{slug}", params={"by": "organisations"})
    assert board.status_code == 200 and f"<td>{company['name']}</td>" in board.text
    assert 'aria-current="page">Organisations' in board.text
    people = member.get(f"/leaderboards/{slug}")
    assert (
        company["name"] not in people.text and f'href="/leaderboards/{slug}?by=organisations"' in people.text
    )
    assert member.get("/leaderboards", params={"by": "nobody"}).status_code == 422
