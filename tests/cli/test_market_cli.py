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
