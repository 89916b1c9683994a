"""The market command line on the demo data: reconcile, settlements, and offline verification."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from neutralize.certificates import service as certificates
from neutralize.cli import app
from neutralize.core.clock import SystemClock
from neutralize.core.config import get_settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.signing import KeyRing
from tests.cli.test_registry_cli import database  # noqa: F401  (fixture)

runner = CliRunner()


def test_the_demo_orders_reconcile_and_their_certificates_verify_offline(database: Path) -> None:  # noqa: F811
    assert runner.invoke(app, ["demo"]).exit_code == 0
    reconciled = runner.invoke(app, ["market", "reconcile"])
    assert reconciled.exit_code == 0, reconciled.output
    assert json.loads(reconciled.stdout)["ok"]
    settled = runner.invoke(app, ["market", "settlements"])
    assert settled.exit_code == 0 and json.loads(settled.stdout)["balanced"]
    listings = json.loads(runner.invoke(app, ["market", "listings"]).stdout)
    assert {entry["verdict"] for entry in listings} == {"offer", "flag"}
    # a certificate, as JSON and as PDF, verifies offline with the published keys only
    settings = get_settings()
    engine = make_engine(settings)
    with unit_of_work(make_session_factory(engine)) as session:
        number = session.execute(text("SELECT number FROM certificates LIMIT 1")).scalar_one()
        signed = certificates.get(session=session, number=number)
        pdf = certificates.pdf(session=session, number=number)
    engine.dispose()
    published = database / "keys.json"
    published.write_text(json.dumps(KeyRing.from_settings(settings, clock=SystemClock()).published_keys()))
    as_json = database / "certificate.json"
    as_json.write_text(json.dumps(signed, ensure_ascii=False), encoding="utf-8")
    as_pdf = database / "certificate.pdf"
    as_pdf.write_bytes(pdf)
    for path in (as_json, as_pdf):
        result = runner.invoke(app, ["verify", str(path), "--keys", str(published)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["ok"]
    # and a changed certificate fails
    signed["certificate"]["kg_co2e"] += 1
    as_json.write_text(json.dumps(signed), encoding="utf-8")
    tampered = runner.invoke(app, ["verify", str(as_json), "--keys", str(published)])
    assert tampered.exit_code == 1 and not json.loads(tampered.stdout)["ok"]
    garbage = database / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7 not really")
    unreadable = runner.invoke(app, ["verify", str(garbage), "--keys", str(published)])
    assert unreadable.exit_code == 2 and "certificate_unreadable" in unreadable.stderr


def test_the_demo_carbon_accounts_check_and_a_partner_ingests_a_file(
    database: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    checked = runner.invoke(app, ["accounts", "check"])
    assert checked.exit_code == 0 and json.loads(checked.stdout) == []
    engine = make_engine(get_settings())
    with engine.connect() as connection:
        metro = connection.execute(
            text("SELECT id FROM organisations WHERE name = 'Chengdu Metro Riders App'")
        ).scalar_one()
    engine.dispose()
    made = runner.invoke(app, ["keys", "create", "--role", "integrator", "--organisation", metro])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    records = tmp_path / "late.jsonl"
    records.write_text(
        json.dumps({"account_ref": "rider-0001", "external_id": "late-1", "behaviour": "public_transport",
                    "mode": "metro", "distance_km": 10, "start_time": "2026-01-05T08:00:00+08:00",
                    "end_time": "2026-01-05T08:40:00+08:00"}) + "\n{not json\n"
    )  # fmt: skip
    first = runner.invoke(app, ["accounts", "ingest", str(records), "--api-key", token])
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert (report["credited"], report["grams"], [p["code"] for p in report["problems"]]) == (
        1, 467, ["malformed_row"]
    )  # fmt: skip
    again = json.loads(runner.invoke(app, ["accounts", "ingest", str(records), "--api-key", token]).stdout)
    assert again["already_received"] == 1 and again["grams"] == 0
    assert runner.invoke(app, ["accounts", "check"]).exit_code == 0
