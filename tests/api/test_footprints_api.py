"""The footprint and factor API: results with their factor trail, and clear 4xx errors."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.api.factories import form_token

GUEST = {
    "activities": [
        {
            "type": "flight",
            "origin": "PEK",
            "destination": "CTU",
            "round_trip": True,
            "cabin": "economy",
            "ref": "leg-1",
        },
        {"type": "hotel", "country": "CN", "nights": 2},
        {"type": "electricity", "region": "CN-SC", "year": 2023, "kwh": 200},
    ]
}


def test_health_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_the_footprint_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/footprints", "/api/v1/footprints/batch", "/api/v1/factors"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_footprint_is_computed_kept_and_read_back(client: TestClient) -> None:
    # when a guest posts three activities
    response = client.post("/api/v1/footprints", json=GUEST)
    # then every line carries its factor trail and the footprint is kept
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"].startswith("fp_")
    assert body["created_at"].startswith("2026-11-25T09:30")
    assert [line["ref"] for line in body["lines"]] == ["leg-1", None, None]
    electricity = body["lines"][2]
    assert electricity["kg_co2e"] == "31.280000"  # 200 kWh x 0.1564
    assert electricity["factor"]["id"] == "CN-SC:2023:statistical_average"
    assert electricity["factor"]["gas_basis"] == "CO2"
    assert body["total_kg_co2e"] == f"{sum(float(line['kg_co2e']) for line in body['lines']):.6f}"
    assert body["reproducibility"]["factor_sets"] == ["DESNZ-2025", "MEE-NBS"]
    again = client.get(f"/api/v1/footprints/{body['id']}")
    assert again.status_code == 200
    assert again.json() == body


def test_unknown_footprint_is_404_with_a_code(client: TestClient) -> None:
    response = client.get("/api/v1/footprints/fp_missing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"activities": [{"type": "flight", "origin": "PEK", "destination": "XQX"}]},
            "unknown_airport",
            "activities[0].destination",
        ),
        ({"activities": [{"type": "car", "distance_km": -3}]}, "out_of_range", "activities[0].distance_km"),
        (
            {"activities": [{"type": "hotel", "country": "AR", "nights": 1}]},
            "region_not_covered",
            "activities[0].country",
        ),
        ({"activities": []}, "invalid_request", "activities"),
        ({"activites": []}, "missing_field", "activities"),
        ({"activities": "flight"}, "wrong_type", "activities"),
        ({"activities": [7]}, "invalid_request", "activities[0]"),
        ({"activities": [{"type": "car", "distance_km": 1}] * 1001}, "too_many_activities", "activities"),
    ],
)
def test_bad_input_is_a_4xx_with_code_and_field(
    client: TestClient, body: object, code: str, field: str
) -> None:
    response = client.post("/api/v1/footprints", json=body)
    assert 400 <= response.status_code < 500
    payload = response.json()
    assert payload["code"] == code
    assert payload["problems"][0]["field"] == field


def test_nan_and_infinity_in_json_are_refused_not_computed(client: TestClient) -> None:
    raw = '{"activities": [{"type": "car", "distance_km": NaN}, {"type": "car", "distance_km": Infinity}]}'
    response = client.post("/api/v1/footprints", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert [p["code"] for p in response.json()["problems"]] == ["not_finite", "not_finite"]


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/api/v1/footprints", content="{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_oversize_body_is_refused_with_413(client: TestClient) -> None:
    padding = "x" * (70 * 1024)
    response = client.post("/api/v1/footprints", json={"activities": [{"type": "car", "ref": padding}]})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


def test_factor_search_pages_through_the_catalogue(client: TestClient) -> None:
    response = client.get(
        "/api/v1/factors", params={"q": "hotel", "factor_set": "DESNZ-2025", "page_size": 10}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 39
    assert len(body["items"]) == 10
    second = client.get(
        "/api/v1/factors", params={"q": "hotel", "factor_set": "DESNZ-2025", "page_size": 10, "page": 4}
    ).json()
    assert len(second["items"]) == 9
    assert client.get("/api/v1/factors", params={"page_size": 1000}).status_code == 422
    lower = client.get("/api/v1/factors", params={"q": "hotel", "factor_set": "desnz-2024"}).json()
    assert lower["total"] == 39
    unknown = client.get("/api/v1/factors", params={"factor_set": "DEFRA-1999"})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_factor_set"


def test_batch_csv_computes_good_rows_and_reports_bad_ones(client: TestClient) -> None:
    csv_text = (
        "type,distance_km,fuel,size,country,nights\n"
        "car,80,diesel,average,,\n"
        "car,-1,diesel,average,,\n"
        "hotel,,,,DE,3\n"
    )
    response = client.post(
        "/api/v1/footprints/batch",
        files={"file": ("trips.csv", csv_text.encode(), "text/csv")},
        params={"format": "parquet"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-rows"] == "3"
    assert response.headers["x-failed"] == "1"
    table = pl.read_parquet(io.BytesIO(response.content))
    assert table["row"].to_list() == [1, 2, 3]
    assert [str(v) if v is not None else None for v in table["kg_co2e"].to_list()] == [
        "13.843200",
        None,
        "39.600000",
    ]
    assert table["error_code"].to_list() == [None, "out_of_range", None]


def test_batch_jsonl_and_unsupported_formats(client: TestClient) -> None:
    lines = "\n".join(json.dumps(a) for a in GUEST["activities"]) + "\nnot json\n"
    response = client.post(
        "/api/v1/footprints/batch", files={"file": ("a.jsonl", lines.encode())}, params={"format": "jsonl"}
    )
    assert response.status_code == 200
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["error_code"] for r in rows] == [None, None, None, "invalid_request"]
    refused = client.post("/api/v1/footprints/batch", files={"file": ("a.xlsx", b"PK")})
    assert refused.status_code == 415
    assert refused.json()["code"] == "unsupported_format"


def test_batch_with_an_unknown_column_is_refused_whole(client: TestClient) -> None:
    response = client.post(
        "/api/v1/footprints/batch", files={"file": ("a.csv", b"type,distance_km,colour\ncar,3,red\n")}
    )
    assert response.status_code == 422
    assert response.json()["problems"][0] == {
        "code": "unknown_field",
        "message": "unknown column",
        "field": "colour",
    }


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.csv", b""),
        ("a.csv", b"type,count\nmeal,1,2,3\n"),
        ("a.parquet", b""),
        ("a.parquet", b"PAR1garbage"),
    ],
)
def test_batch_file_that_cannot_be_read_is_refused_whole(
    client: TestClient, name: str, content: bytes
) -> None:
    # an empty CSV, a row with more fields than the header, a Parquet file that is not one
    response = client.post("/api/v1/footprints/batch", files={"file": (name, content)})
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "unsupported_format"


def test_batch_json_line_that_is_not_utf8_is_one_malformed_row(client: TestClient) -> None:
    lines = json.dumps(GUEST["activities"][0]).encode() + b"\n\xff\xfe{\n"
    response = client.post(
        "/api/v1/footprints/batch", files={"file": ("a.jsonl", lines)}, params={"format": "jsonl"}
    )
    assert response.status_code == 200, response.text
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["error_code"] for r in rows] == [None, "invalid_request"]


def test_batch_upload_over_the_limit_is_refused(client: TestClient) -> None:
    big = b"type,distance_km\n" + b"car,3\n" * 60_000
    response = client.post("/api/v1/footprints/batch", files={"file": ("big.csv", big)})
    assert response.status_code == 413


def test_calculator_page_shows_lines_with_their_factors(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<form" in page.text
    result = client.post(
        "/",
        data={
            "origin": "PEK",
            "destination": "CTU",
            "cabin": "economy",
            "nights": "2",
            "hotel_country": "CN",
            "csrf_token": form_token(client),
        },
    )
    assert result.status_code == 200
    assert "21_316_3180_11_1" in result.text and "29_600_4009_13_1" in result.text
    bad = client.post("/", data={"origin": "PEK", "destination": "XQX", "csrf_token": form_token(client)})
    assert bad.status_code == 422
    assert 'data-code="unknown_airport"' in bad.text


def test_a_form_without_its_token_is_refused(client: TestClient) -> None:
    refused = client.post("/", data={"origin": "PEK", "destination": "CTU"})
    assert refused.status_code == 403 and 'data-code="csrf_failed"' in refused.text
    forged = client.post("/", data={"origin": "PEK", "destination": "CTU", "csrf_token": "x" * 43})
    assert forged.status_code == 403
