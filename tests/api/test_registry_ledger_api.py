"""The registry API's ledger answers: what the public sees of a serial, posts and releases, the audit,
drafts, suspended projects and inputs refused with a code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from neutralize.core.canonical import canonical_json
from neutralize.core.db import make_session_factory, unit_of_work
from neutralize.registry import journal
from neutralize.registry.domain import Span, merkle_root, parse_serial, serial
from neutralize.registry.models import Checkpoint
from tests.api.factories import codes, key, organisation, registered_project

REGISTRY = "/api/v1/registry"


def units(code: str, kg: int) -> dict[str, Any]:
    return {"project_code": code, "vintage": 2025, "quantity_kg": kg}


def reserve(client: TestClient, owner: dict[str, str], code: str, kg: int, order: str) -> dict[str, Any]:
    body = {"units": units(code, kg), "reservation": order, "idempotency_key": f"reserve-{order}"}
    response = client.post(f"{REGISTRY}/reservations", json=body, headers=owner)
    assert response.status_code == 201, response.text
    return response.json()


def test_the_public_serial_lookup_names_no_reservation(client: TestClient, admin: dict[str, str]) -> None:
    # given 100 kg reserved for a guest's order, whose id is the reservation's name
    code, owner, _org = registered_project(client, admin)
    order = f"ord_secret_{next(codes)}"
    [block] = reserve(client, owner, code, 100, order)["blocks"]
    # when anyone looks the serial up, then the block is shown reserved, without the order's id
    response = client.get(f"{REGISTRY}/serials/{block['serial']}")
    assert response.status_code == 200
    assert [(b["state"], b["reservation"], b["account_id"]) for b in response.json()] == [
        ("reserved", None, "")
    ]
    assert order not in response.text
    assert order not in client.get("/registry/serials", params={"q": block["serial"]}).text


def test_the_serial_lookup_is_paged_and_cut_to_the_range_asked(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given 5,000 kg of which 10, then 20 kg were retired: three blocks, lowest serials first
    code, owner, _org = registered_project(client, admin)
    for n, kg in enumerate((10, 20)):
        body = {
            "units": units(code, kg),
            "beneficiary": "B",
            "reason": "r",
            "idempotency_key": f"p-{code}-{n}",
        }
        assert client.post(f"{REGISTRY}/retirements", json=body, headers=owner).status_code == 201
    [first, *_] = client.get(f"{REGISTRY}/holdings", headers=owner, params={"page_size": 1}).json()
    start = parse_serial(first["serial"])[2].start
    asked = serial(code, 2025, Span(start + 5, start + 99))
    # when a range across the three blocks is looked up
    found = client.get(f"{REGISTRY}/serials/{asked}").json()
    # then each block is cut to the range: the kilograms add up to the range's
    assert [(b["state"], b["kg"]) for b in found] == [("retired", 5), ("retired", 20), ("held", 70)]
    assert found[0]["serial"] == serial(code, 2025, Span(start + 5, start + 9))
    # and pages of one block follow each other
    pages = [
        client.get(f"{REGISTRY}/serials/{asked}", params={"page": p, "page_size": 1}).json()
        for p in (1, 2, 3, 4)
    ]
    assert [page[0]["kg"] if page else None for page in pages] == [5, 20, 70, None]


def test_post_takes_the_claim_only_and_post_and_release_answer_201(
    client: TestClient, admin: dict[str, str]
) -> None:
    code, owner, _org = registered_project(client, admin)
    reserve(client, owner, code, 30, "order-a")
    reserve(client, owner, code, 40, "order-b")
    # a post names the claim; the units are the reservation's (units sent along are refused)
    claim = {"reservation": "order-a", "idempotency_key": "post-a", "beneficiary": "Guest",
             "reason": "travel", "claim_country": "CN"}  # fmt: skip
    with_units = client.post(
        f"{REGISTRY}/reservations/post", json={**claim, "units": units(code, 30)}, headers=owner
    )
    assert with_units.status_code == 422 and with_units.json()["problems"][0]["code"] == "unknown_field"
    posted = client.post(f"{REGISTRY}/reservations/post", json=claim, headers=owner)
    assert posted.status_code == 201, posted.text
    assert (posted.json()["quantity_kg"], posted.json()["blocks"][0]["state"]) == (30, "retired")
    # a release takes no retirement
    release = {"reservation": "order-b", "idempotency_key": "release-b"}
    refused = client.post(
        f"{REGISTRY}/reservations/release", json={**release, "retirement": claim}, headers=owner
    )
    assert refused.status_code == 422 and refused.json()["problems"][0]["code"] == "unknown_field"
    released = client.post(f"{REGISTRY}/reservations/release", json=release, headers=owner)
    assert released.status_code == 201, released.text


def test_the_api_audit_checks_the_signed_checkpoints(client: TestClient, admin: dict[str, str]) -> None:
    # given a checkpoint, properly signed, of a chain head the journal no longer holds (a cut tail)
    code, _owner, _org = registered_project(client, admin)
    chain = journal.vintage_chain(code, 2025)
    keys = client.app.state.keys  # type: ignore[attr-defined]
    at = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    heads = [[chain, 2, "f" * 64]]
    root = merkle_root(canonical_json(head) for head in heads)
    signature = keys.sign(journal._checkpoint_bytes(heads, root, at))
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        point = Checkpoint(
            at=at, heads=heads, root=root, key_id=signature.key_id, signature=signature.signature_b64
        )
        session.add(point)
        session.flush()
        point_id = point.id
    try:
        # when an admin asks the API for the audit, then the signed entry is reported removed
        report = client.get(f"{REGISTRY}/audit", headers=admin).json()
        assert not report["ok"]
        assert [(p["chain"], p["seq"], p["kind"]) for p in report["problems"]] == [(chain, 2, "removed")]
    finally:
        with unit_of_work(factory) as session:
            session.delete(session.get(Checkpoint, point_id))
    assert client.get(f"{REGISTRY}/audit", headers=admin).json()["ok"]


def test_a_draft_of_another_organisation_answers_as_a_missing_project(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a draft of one organisation, and a project owner of another
    org = organisation(client, admin)
    owner = key(client, Role.PROJECT_OWNER, org["id"])
    draft = f"API-D{next(codes)}"
    body = {"code": draft, "name": "Draft", "standard": "CDCER", "methodology": "PT",
            "methodology_version": "1", "project_type": "transport", "credit_type": "avoidance",
            "nature_based": False, "country": "CN", "owner_organisation_id": org["id"]}  # fmt: skip
    assert client.post(f"{REGISTRY}/projects", json=body, headers=owner).status_code == 201
    stranger = key(client, Role.PROJECT_OWNER, organisation(client, admin)["id"])
    # then to the public and to the stranger the draft answers exactly as a code nobody used
    for headers in ({}, stranger):
        for name in (draft, f"API-NONE{next(codes)}"):
            answers = [
                client.get(f"{REGISTRY}/serials/{serial(name, 2025, Span(1, 1))}", headers=headers),
                client.get(f"{REGISTRY}/retirements", params={"project": name}, headers=headers),
                client.get(f"{REGISTRY}/projects/{name}/home-blocks", headers=headers),
                client.get(f"{REGISTRY}/projects/{name}/home-retirements", headers=headers),
                client.get(f"/api/v1/market/projects/{name}/sales", headers=headers),
            ]
            assert [(a.status_code, a.json()["code"]) for a in answers] == [(404, "not_found")] * 5
        moved = client.post(f"{REGISTRY}/projects/{draft}/transitions", json={"to_status": "submitted"},
                            headers=stranger)  # fmt: skip
        assert (moved.status_code, moved.json()["code"]) == (404, "not_found")
    # while its owner still sees it
    assert client.get(f"{REGISTRY}/retirements", params={"project": draft}, headers=owner).status_code == 200
    assert client.get(f"/api/v1/market/projects/{draft}/sales", headers=owner).status_code == 200


def test_a_suspended_projects_units_do_not_move(client: TestClient, admin: dict[str, str]) -> None:
    code, owner, _org = registered_project(client, admin)
    suspended = client.post(
        f"{REGISTRY}/projects/{code}/transitions", json={"to_status": "suspended"}, headers=admin
    )
    assert suspended.status_code == 200, suspended.text
    body = {"units": units(code, 10), "beneficiary": "B", "reason": "r", "idempotency_key": "s-1"}
    response = client.post(f"{REGISTRY}/retirements", json=body, headers=owner)
    assert response.json()["code"] == "project_not_registered", response.text


def test_loose_movement_input_is_refused_with_a_code(client: TestClient, admin: dict[str, str]) -> None:
    code, owner, _org = registered_project(client, admin)
    good = {"units": units(code, 10), "beneficiary": "B", "reason": "r", "idempotency_key": "loose-1"}
    cases = [
        ({"units": {**units(code, 10), "quantity_kg": True}}, "units.quantity_kg", "wrong_type"),
        ({"units": {**units(code, 10), "quantity_kg": "5"}}, "units.quantity_kg", "wrong_type"),
        ({"units": {**units(code, 10), "quantity_kg": 1e3}}, "units.quantity_kg", "wrong_type"),
        (
            {"units": {**units(code, 10), "serial": serial(code, 2025, Span(1, 5))}},
            "units",
            "conflicting_fields",
        ),
        ({"beneficiary": "   "}, "beneficiary", "out_of_range"),
        ({"idempotency_key": " "}, "idempotency_key", "out_of_range"),
        ({"claim_country": "XX"}, "claim_country", "unknown_value"),
    ]
    for change, field, problem in cases:
        response = client.post(f"{REGISTRY}/retirements", json={**good, **change}, headers=owner)
        assert response.status_code == 422, (change, response.text)
        assert [(p["field"], p["code"]) for p in response.json()["problems"]] == [(field, problem)], change
    # and nothing was retired meanwhile
    held = client.get(f"{REGISTRY}/holdings", headers=owner).json()
    assert sum(b["kg"] for b in held if b["state"] == "held") == 5_000
