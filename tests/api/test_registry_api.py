"""The registry API and explorer: who may do what, and what the public sees."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from neutralize.access.domain import Role
from neutralize.registry.importers.gold_standard import RETIREMENT_COLUMNS
from tests.api.factories import codes, key, organisation, registered_project


def test_an_admin_registers_and_issues_and_a_holder_retires(
    client: TestClient, admin: dict[str, str]
) -> None:
    code, owner, _org = registered_project(client, admin)
    # when the holder retires 340 kg
    body = {
        "units": {"project_code": code, "vintage": 2025, "quantity_kg": 340},
        "beneficiary": "Guest A",
        "reason": "conference travel",
        "idempotency_key": "r-1",
    }
    first = client.post("/api/v1/registry/retirements", json=body, headers=owner)
    again = client.post("/api/v1/registry/retirements", json=body, headers=owner)
    # then one retirement exists, the retry returns it, and the public can see where it went
    assert first.status_code == 201, first.text
    assert again.json() == first.json()
    [block] = first.json()["blocks"]
    assert block["kg"] == 340 and block["state"] == "retired"
    where = client.get(f"/api/v1/registry/serials/{block['serial']}").json()
    assert [(b["state"], b["kg"], b["account_id"]) for b in where] == [("retired", 340, "")]
    page = client.get(f"/registry/projects/{code}")
    assert page.status_code == 200 and "Guest A" in page.text and block["serial"] in page.text
    search = client.get("/registry/serials", params={"q": block["serial"]})
    assert search.status_code == 200 and "Guest A" in search.text


def test_idempotency_key_reused_for_another_request_is_409(client: TestClient, admin: dict[str, str]) -> None:
    code, owner, _org = registered_project(client, admin)
    base = {
        "units": {"project_code": code, "vintage": 2025, "quantity_kg": 10},
        "beneficiary": "B",
        "reason": "r",
        "idempotency_key": "same",
    }
    assert client.post("/api/v1/registry/retirements", json=base, headers=owner).status_code == 201
    other = {**base, "units": {"project_code": code, "vintage": 2025, "quantity_kg": 11}}
    response = client.post("/api/v1/registry/retirements", json=other, headers=owner)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [(None, 401, "unauthenticated"), (Role.MEMBER, 403, "forbidden"), (Role.VERIFIER, 403, "forbidden")],
)
def test_only_admins_create_organisations(
    client: TestClient, admin: dict[str, str], role: Role | None, status: int, code: str
) -> None:
    headers = {} if role is None else key(client, role, organisation(client, admin)["id"])
    response = client.post("/api/v1/registry/organisations", json={"name": "Nope"}, headers=headers)
    assert response.status_code == status
    assert response.json()["code"] == code


def test_a_wrong_key_is_refused_not_treated_as_anonymous(client: TestClient) -> None:
    response = client.get("/api/v1/registry/holdings", headers={"Authorization": "Bearer nz_k_0000_bad"})
    assert response.status_code == 401


def test_another_organisation_cannot_move_your_credits(client: TestClient, admin: dict[str, str]) -> None:
    code, _owner, _org = registered_project(client, admin)
    stranger = key(client, Role.PROJECT_OWNER, organisation(client, admin)["id"])
    body = {
        "units": {"project_code": code, "vintage": 2025, "quantity_kg": 1},
        "beneficiary": "X",
        "reason": "r",
        "idempotency_key": "steal",
    }
    response = client.post("/api/v1/registry/retirements", json=body, headers=stranger)
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_units"


@pytest.mark.parametrize(
    ("units", "status", "code"),
    [
        ({"project_code": "NOPE", "vintage": 2025, "quantity_kg": 1}, 404, "not_found"),
        ({"serial": "garbage"}, 422, "invalid_serial"),
        ({"project_code": "X", "vintage": 2025, "quantity_kg": 0}, 422, "out_of_range"),
        ({"project_code": "X", "vintage": 2025, "quantity_kg": -5}, 422, "out_of_range"),
    ],
)
def test_bad_units_get_clear_codes(
    client: TestClient, admin: dict[str, str], units: dict[str, Any], status: int, code: str
) -> None:
    owner = key(client, Role.PROJECT_OWNER, organisation(client, admin)["id"])
    body = {"units": units, "beneficiary": "X", "reason": "r", "idempotency_key": f"bad-{next(codes)}"}
    response = client.post("/api/v1/registry/retirements", json=body, headers=owner)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def test_public_lists_projects_but_not_drafts_and_pages_are_bounded(
    client: TestClient, admin: dict[str, str]
) -> None:
    code, _owner, _org = registered_project(client, admin)
    listed = client.get(
        "/api/v1/registry/projects", params={"label": "carbon_inclusive", "page_size": 200}
    ).json()
    assert code in {p["code"] for p in listed}
    assert all(p["status"] != "draft" for p in listed)
    assert client.get("/api/v1/registry/projects", params={"page_size": 1000}).status_code == 422
    assert client.get("/registry").status_code == 200


def test_drafts_are_left_out_before_paging_so_no_page_comes_back_short(
    client: TestClient, admin: dict[str, str]
) -> None:
    org = organisation(client, admin)
    owner = key(client, Role.PROJECT_OWNER, org["id"])
    for _ in range(3):  # drafts whose codes sort before every other project's
        body = {"code": f"AAA-DRAFT{next(codes)}", "name": "Not yet submitted", "standard": "CDCER",
                "methodology": "PT", "methodology_version": "1", "project_type": "transport",
                "credit_type": "avoidance", "nature_based": False, "country": "CN",
                "owner_organisation_id": org["id"]}  # fmt: skip
        assert client.post("/api/v1/registry/projects", json=body, headers=owner).status_code == 201
    code, _owner, _org = registered_project(client, admin)
    pages: list[list[dict[str, Any]]] = []
    while page := client.get(
        "/api/v1/registry/projects", params={"page_size": 1, "page": len(pages) + 1}
    ).json():
        pages.append(page)
    assert code in {p["code"] for [p] in pages}  # every page until the last has its one project
    assert all(p["status"] != "draft" for [p] in pages)


def test_admin_checks_conservation_and_the_journal(client: TestClient, admin: dict[str, str]) -> None:
    registered_project(client, admin)
    check = client.get("/api/v1/registry/check", headers=admin).json()
    assert check["ok"] and all(v["balanced"] for v in check["vintages"])
    audit = client.get("/api/v1/registry/audit", headers=admin).json()
    assert audit["ok"] and audit["entries"] > 0


def test_signing_keys_are_published(client: TestClient) -> None:
    body = client.get("/.well-known/neutralize-keys.json").json()
    [current] = [k for k in body["keys"] if k["status"] == "current"]
    assert current["kty"] == "OKP" and current["crv"] == "Ed25519" and current["kid"].startswith("ed25519:")


def test_issuing_before_the_period_ends_is_refused(client: TestClient, admin: dict[str, str]) -> None:
    code, _owner, org = registered_project(client, admin)
    verifier = key(client, Role.VERIFIER, org["id"])
    verification = client.post(
        "/api/v1/registry/verifications",
        headers=verifier,
        json={
            "project_code": code,
            "verifier": "CQC",
            "period_start": "2026-01-01",
            "period_end": date(2026, 12, 31).isoformat(),
            "verified_kg": 10,
            "report_url": "https://example.org/r",
        },
    ).json()
    response = client.post(
        "/api/v1/registry/issuances",
        headers=admin,
        json={"verification_id": verification["id"], "idempotency_key": "early"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "period_not_ended"


def test_retirements_are_public_and_filtered_by_beneficiary(
    client: TestClient, admin: dict[str, str]
) -> None:
    code, owner, _org = registered_project(client, admin)
    body = {
        "units": {"project_code": code, "vintage": 2025, "quantity_kg": 25},
        "beneficiary": "Ms Zhang Wei",
        "reason": "commute",
        "idempotency_key": "zw",
    }
    assert client.post("/api/v1/registry/retirements", json=body, headers=owner).status_code == 201
    found = client.get(
        "/api/v1/registry/retirements", params={"beneficiary": "Zhang", "project": code}
    ).json()
    assert [(r["beneficiary"], r["quantity_kg"]) for r in found] == [("Ms Zhang Wei", 25)]
    assert client.get("/api/v1/registry/retirements", params={"beneficiary": "Nobody"}).json() == []


def test_an_admin_imports_a_public_export_by_upload(client: TestClient, admin: dict[str, str]) -> None:
    data = (Path(__file__).resolve().parents[1] / "data" / "registry" / "verra_export.csv").read_bytes()
    response = client.post(
        "/api/v1/registry/imports",
        params={"programme": "VCS"},
        headers=admin,
        files={"file": ("verra.csv", data, "text/csv")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["blocks"] > 0
    # and a mirrored project's page shows the labels its home registry publishes, as published
    page = client.get("/registry/projects/VCS-1340")
    assert 'lang="en">CCB-No Distinction</span>' in page.text
    # an upload is allowed past the JSON body limit, up to the upload limit
    padded = data + b"\n" * (100 * 1024)
    big = client.post(
        "/api/v1/registry/imports",
        params={"programme": "VCS"},
        headers=admin,
        files={"file": ("big.csv", padded, "text/csv")},
    )
    assert big.status_code != 413
    too_big = client.post(
        "/api/v1/registry/imports",
        params={"programme": "VCS"},
        headers=admin,
        files={"file": ("huge.csv", data + b"\n" * (300 * 1024), "text/csv")},
    )
    assert too_big.status_code == 413


def test_an_export_that_is_not_utf8_is_refused_whole(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post(
        "/api/v1/registry/imports",
        params={"programme": "VCS"},
        headers=admin,
        files={"file": ("verra.csv", "项目,名称\n1,2\n".encode("gb18030"), "text/csv")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_import"
    assert response.json()["problems"][0]["field"] == "verra.csv"


def test_a_mirrored_projects_page_shows_its_home_blocks_and_the_platforms_retirements_there(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a Gold Standard export: an issuance of 5,485 t with a retirement of 109 t inside it
    batch = "GS1-1-KE-GS11603-16-2025-30256"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RETIREMENT_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    project = {"Vintage": "2025", "GSID": "11603", "Project Name": "Clean Cooking Kenya", "Country": "Kenya"}
    issued = {**project, "Issuance Date": "2026-01-10", "Credit Status": "Issued", "Quantity": "5485"}
    writer.writerow({**issued, "Serial Number": f"{batch}-1-5485"})
    retired = {**issued, "Credit Status": "Retired", "Quantity": "109", "Retirement Date": "2026-02-01"}
    writer.writerow({**retired, "Serial Number": f"{batch}-1-109"})
    padded = out.getvalue()
    imported = client.post(
        "/api/v1/registry/imports",
        params={"programme": "GS"},
        headers=admin,
        files={"file": ("gs.csv", padded.encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["kg_by_status"] == {"issued": 5_376_000, "retired": 109_000}
    # and the platform's own retirement of 10 t of the project at Gold Standard
    recorded = client.post(
        "/api/v1/registry/home-retirements",
        headers=admin,
        json={
            "project_code": "GS-11603",
            "vintage": 2025,
            "home_retirement_id": "GS-RET-1",
            "serial": "GS1-1-KE-GS11603-16-2025-30299-1-10",
            "quantity_tonnes": 10,
            "retired_on": "2026-03-01",
            "beneficiary_text": "Neutralize buyers",
        },
    )
    assert recorded.status_code == 201, recorded.text
    # when anyone lists the project's home blocks, the retirement is shown inside the issuance
    listed = client.get("/api/v1/registry/projects/GS-11603/home-blocks")
    assert listed.status_code == 200, listed.text
    blocks = listed.json()
    assert [(b["first_unit"], b["status"], b["remaining_kg"], b["part_of"]) for b in blocks] == [
        (1, "issued", 5_376_000, None),
        (1, "retired", None, f"{batch}-1-5485"),
    ]
    retired = client.get("/api/v1/registry/projects/GS-11603/home-blocks", params={"status": "retired"})
    assert [b["serial"] for b in retired.json()] == [f"{batch}-1-109"]
    retirements = client.get("/api/v1/registry/projects/GS-11603/home-retirements").json()
    assert [r["home_retirement_id"] for r in retirements] == ["GS-RET-1"]
    # and the project's page shows both tables, not the native ones
    page = client.get("/registry/projects/GS-11603")
    assert page.status_code == 200
    assert f"{batch}-1-5485" in page.text and "5,376,000" in page.text and "GS-RET-1" in page.text
    assert 'id="home-blocks"' in page.text and "Issuances" not in page.text
    assert recorded.json()["merkle_root"] in page.text  # the whole root, for anyone to compare
    lower = client.get("/registry/projects/gs-11603", params={"page": 1}, follow_redirects=False)
    assert (lower.status_code, lower.headers["location"]) == (308, "/registry/projects/GS-11603?page=1")
    # and a bad status, a native project and an unknown one are refused with their codes
    native, _owner, _org = registered_project(client, admin)
    refused = [
        client.get("/api/v1/registry/projects/GS-11603/home-blocks", params={"status": "lost"}),
        client.get(f"/api/v1/registry/projects/{native}/home-blocks"),
        client.get("/api/v1/registry/projects/GS-404/home-retirements"),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [
        (422, "unknown_value"),
        (404, "not_found"),  # a native project has no home blocks: it answers as a missing one would
        (404, "not_found"),
    ]


def test_holdings_are_paged_and_filtered_by_project_vintage_and_state(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a holder of 5,000 kg of vintage 2025 who retired three times
    code, owner, _org = registered_project(client, admin)
    for n in range(3):
        body = {
            "units": {"project_code": code, "vintage": 2025, "quantity_kg": 10 + n},
            "beneficiary": "Guest",
            "reason": "travel",
            "idempotency_key": f"holdings-{n}",
        }
        assert client.post("/api/v1/registry/retirements", json=body, headers=owner).status_code == 201

    def listed(**params: Any) -> list[tuple[str, int]]:
        response = client.get("/api/v1/registry/holdings", params=params, headers=owner)
        assert response.status_code == 200, response.text
        return [(b["state"], b["kg"]) for b in response.json()]

    # then the filters and pages select what is asked for, in serial order
    assert listed(project=code, state="retired") == [("retired", 10), ("retired", 11), ("retired", 12)]
    assert listed(project=code, state="held") == [("held", 4967)]
    assert listed(project=code, vintage=2025, page_size=2, page=2) == [("retired", 12), ("held", 4967)]
    assert listed(project=code, vintage=2024) == []
    # and a state that is not one is refused with its code
    wrong = client.get("/api/v1/registry/holdings", params={"state": "lost"}, headers=owner)
    assert (wrong.status_code, wrong.json()["code"]) == (422, "unknown_value")


def test_a_mirrored_projects_page_comes_in_pages_of_200_blocks(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given a Gold Standard issuance of 205 t with 204 retirements of 1 t inside it
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RETIREMENT_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    project = {
        "Vintage": "2025",
        "GSID": "700",
        "Project Name": "Stoves",
        "Country": "Kenya",
        "Issuance Date": "2026-01-10",
    }
    writer.writerow(
        {
            **project,
            "Credit Status": "Issued",
            "Quantity": "205",
            "Serial Number": "GS1-1-KE-GS700-16-2025-1-1-205",
        }
    )
    for unit in range(1, 205):
        writer.writerow(
            {**project, "Credit Status": "Retired", "Quantity": "1", "Retirement Date": "2026-02-01",
             "Serial Number": f"GS1-1-KE-GS700-16-2025-1-{unit}-{unit}"}
        )  # fmt: skip
    imported = client.post(
        "/api/v1/registry/imports",
        params={"programme": "GS"},
        headers=admin,
        files={"file": ("gs.csv", out.getvalue().encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    # when the project's page is read, the first page holds 200 blocks and links to the next
    first = client.get("/registry/projects/GS-700")
    assert first.text.count("GS1-1-KE-GS700-16-2025-1-") == 200 * 2  # each serial is a link and its text
    assert 'href="/registry/projects/GS-700?page=2"' in first.text and 'rel="prev"' not in first.text
    # and the second holds the other five, linking back
    second = client.get("/registry/projects/GS-700", params={"page": 2})
    assert second.text.count("GS1-1-KE-GS700-16-2025-1-") == 5 * 2
    assert 'href="/registry/projects/GS-700?page=1"' in second.text and 'rel="next"' not in second.text
    # and a serial search comes 50 serials to a page, keeping the query in its links
    found = client.get("/registry/serials", params={"q": "gs1-1-ke-gs700"})
    assert 'href="/registry/serials?q=gs1-1-ke-gs700&amp;page=2"' in found.text
    last = client.get("/registry/serials", params={"q": "gs1-1-ke-gs700", "page": 5})
    assert "GS1-1-KE-GS700-16-2025-1-204-204" in last.text and 'rel="next"' not in last.text
    assert client.get("/registry/projects/GS-700", params={"page": 0}).status_code == 422


def test_the_serial_page_shows_the_kilograms_of_the_range_asked(
    client: TestClient, admin: dict[str, str]
) -> None:
    # given 5,000 kg issued to a holder who retired the first 340
    code, owner, _org = registered_project(client, admin)
    body = {
        "units": {"project_code": code, "vintage": 2025, "quantity_kg": 340},
        "beneficiary": "Guest A",
        "reason": "travel",
        "idempotency_key": "clip-1",
    }
    retired = client.post("/api/v1/registry/retirements", json=body, headers=owner)
    assert retired.status_code == 201
    first = int(retired.json()["blocks"][0]["serial"].split("-")[-2])
    # when the page is asked about the 301st to the 400th of them, across the retired and the held block
    asked = f"NZ-{code}-2025-{first + 300:012d}-{first + 399:012d}"
    page = client.get("/registry/serials", params={"q": asked})
    # then it shows 40 retired and 60 held kilograms, not the whole blocks
    assert page.status_code == 200
    cells = re.findall(r'<td class="num">([\d,]+)</td>', page.text)
    assert cells == ["40", "60"]
