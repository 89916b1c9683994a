"""The carbon-account API for partners: balances and levels of their own accounts only, link codes,
benefits, redemptions once per key, and levels read with a person's consent."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from neutralize.access import users
from neutralize.access.domain import Actor, Role
from neutralize.accounts import intake
from neutralize.accounts import service as accounts
from neutralize.core.clock import FixedClock
from neutralize.core.db import make_session_factory, unit_of_work
from tests.api.factories import NOW, PASSWORD, codes, key, organisation
from tests.unit.accounts.helpers import record


def credit(client: TestClient, partner_id: str, reference: str, grams: int) -> None:
    """What crediting a partner's records leaves in an account: ``grams`` over one metro trip (a
    rejected one when 0)."""
    outcome = intake.Credited(
        external_id=f"trip-{next(codes)}", behaviour="public_transport", started_at=NOW, ended_at=NOW,
        measures={"mode": "metro"}, grams=grams,
        code=None if grams else "speed_implausible", methodology="public_transport@1.0.0",
        parameters_sha256=None,
    )  # fmt: skip
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        intake.keep(session=session, clock=FixedClock(NOW), partner_id=partner_id, reference=reference,
                      outcomes=[outcome])  # fmt: skip


def partner(client: TestClient, admin: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    made = organisation(client, admin)
    return made, key(client, Role.INTEGRATOR, made["id"])


def test_partners_see_their_accounts_and_nobody_elses(client: TestClient, admin: dict[str, str]) -> None:
    metro, metro_key = partner(client, admin)
    credit(client, metro["id"], "rider-42", 12_345)
    shown = client.get("/api/v1/accounts/rider-42", headers=metro_key)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["account"]["credited_g"] == 12_345 and body["account"]["points"] == 123
    assert (
        body["reputation"]["level"] == "green_commuter" and "first_reduction" in body["reputation"]["badges"]
    )
    history = client.get("/api/v1/accounts/rider-42/history", headers=metro_key).json()
    assert [h["grams"] for h in history] == [12_345] and history[0]["methodology"] == "public_transport@1.0.0"
    _other, other_key = partner(client, admin)
    assert client.get("/api/v1/accounts/rider-42", headers=other_key).json()["code"] == "not_found"
    assert client.get("/api/v1/accounts/rider-42").status_code == 401
    assert client.get("/api/v1/accounts/rider-42", headers=key(client, Role.MEMBER)).status_code == 403
    code = client.post("/api/v1/accounts/rider-42/link-codes", headers=metro_key)
    assert code.status_code == 201 and len(code.json()["code"]) == accounts.LINK_CODE_LENGTH


def test_benefits_are_redeemed_once_and_need_the_points(client: TestClient, admin: dict[str, str]) -> None:
    metro, metro_key = partner(client, admin)
    _tyres, tyres_key = partner(client, admin)
    credit(client, metro["id"], "driver-7", 30_000)  # 300 points
    offer = client.post("/api/v1/benefits", headers=tyres_key, json={"title": "Tyre check", "points": 250})
    assert offer.status_code == 201, offer.text
    assert offer.json()["id"] in {b["id"] for b in client.get("/api/v1/benefits").json()}
    body = {"benefit_id": offer.json()["id"], "idempotency_key": "redeem-0001"}
    first = client.post("/api/v1/accounts/driver-7/redemptions", headers=metro_key, json=body)
    again = client.post("/api/v1/accounts/driver-7/redemptions", headers=metro_key, json=body)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    second = client.post(
        "/api/v1/accounts/driver-7/redemptions",
        headers=metro_key,
        json={**body, "idempotency_key": "redeem-0002"},
    )
    assert second.status_code == 409 and second.json()["code"] == "insufficient_points"
    bad = client.post("/api/v1/benefits", headers=tyres_key, json={"title": "Free", "points": 0})
    assert bad.status_code == 422


def test_a_partner_reads_a_level_only_with_consent(client: TestClient, admin: dict[str, str]) -> None:
    metro, metro_key = partner(client, admin)
    bank, bank_key = partner(client, admin)
    credit(client, metro["id"], "saver-1", 2_000)
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        cmd = users.SignUp(email=f"saver{next(codes)}@example.org", password=PASSWORD, display_name="Saver")
        person = users.sign_up(session=session, clock=FixedClock(NOW), cmd=cmd, role=Role.MEMBER).id
        integrator = Actor(id="k", role=Role.INTEGRATOR, organisation_id=metro["id"])
        code, _ = accounts.issue_link_code(
            session=session, clock=FixedClock(NOW), actor=integrator, reference="saver-1"
        )
        accounts.confirm_link(session=session, clock=FixedClock(NOW), user_id=person, code=code)
        consent = accounts.grant_consent(
            session=session, clock=FixedClock(NOW), user_id=person, partner_id=bank["id"]
        )
    read = client.get(f"/api/v1/levels/{consent.id}", headers=bank_key)
    assert read.status_code == 200 and read.json()["level"] == "green_step", read.text
    assert client.get(f"/api/v1/levels/{consent.id}", headers=metro_key).json()["code"] == "not_found"


def test_a_partner_pushes_records_and_a_file_and_resending_changes_nothing(
    client: TestClient, admin: dict[str, str]
) -> None:
    _metro, metro_key = partner(client, admin)
    trips = [record(account_ref="api-rider", external_id=f"api-{n}",
                    start_time=f"2026-03-{n + 1:02d}T08:00:00+08:00",
                    end_time=f"2026-03-{n + 1:02d}T09:00:00+08:00") for n in range(3)]  # fmt: skip
    trips.append(record(account_ref="api-rider", external_id="api-bad", distance_km=-4))
    pushed = client.post("/api/v1/accounts/records", headers=metro_key, json={"records": trips})
    assert pushed.status_code == 200, pushed.text
    body = pushed.json()
    assert (body["credited"], body["grams"], body["problems"]) == (
        3, 3 * 467, [{"row": 4, "code": "out_of_range", "external_id": "api-bad"}]
    )  # fmt: skip
    again = client.post("/api/v1/accounts/records", headers=metro_key, json={"records": trips}).json()
    assert (again["already_received"], again["grams"]) == (4, 0)
    times = (
        "2026-03-09T08:00:00+08:00,2026-03-09T09:00:00+08:00",
        "1970-01-01T08:00:00+08:00,1970-01-01T09:00:00+08:00",
    )
    csv = "account_ref,external_id,behaviour,mode,distance_km,start_time,end_time\n" + "".join(
        f"api-rider,file-{n},public_transport,metro,10,{span}\n" for n, span in enumerate(times)
    )
    upload = client.post(
        "/api/v1/accounts/records/files", headers=metro_key, files={"file": ("march.csv", csv, "text/csv")}
    )
    assert upload.status_code == 200 and upload.json()["problems"][0]["code"] == "time_before_epoch"
    assert (
        client.get("/api/v1/accounts/api-rider", headers=metro_key).json()["account"]["credited_g"] == 4 * 467
    )
    broken = client.post(
        "/api/v1/accounts/records/files",
        headers=metro_key,
        files={"file": ("x.xlsx", b"PK", "application/zip")},
    )
    assert broken.status_code == 415 and broken.json()["code"] == "unsupported_format"
    too_many = client.post("/api/v1/accounts/records", headers=metro_key, json={"records": [{}] * 5_001})
    assert too_many.status_code in (413, 422)
