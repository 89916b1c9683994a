"""The registry command line: keys, imports, checks and the audit, with their exit codes."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neutralize.cli import app
from neutralize.core.config import get_settings

DATA = Path(__file__).resolve().parents[1] / "data" / "registry"
runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NEUTRALIZE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


def admin_token() -> str:
    result = runner.invoke(app, ["keys", "create", "--role", "admin"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_demo_data_passes_the_check_and_the_audit(database: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    check = runner.invoke(app, ["registry", "check"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["ok"]
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    audit = runner.invoke(app, ["audit", "verify"])
    assert audit.exit_code == 0 and json.loads(audit.stdout)["ok"]


def test_an_import_with_bad_rows_exits_2_and_lists_line_numbers(database: Path) -> None:
    token = admin_token()
    bad = runner.invoke(
        app,
        ["registry", "import", str(DATA / "verra_bad_rows.csv"), "--programme", "VCS", "--api-key", token],
    )
    assert bad.exit_code == 2
    assert '"invalid_import"' in bad.stderr and '"row": 3' in bad.stderr
    good = runner.invoke(
        app, ["registry", "import", str(DATA / "verra_export.csv"), "--programme", "VCS", "--api-key", token]
    )
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["blocks"] > 0


def test_commands_need_a_valid_key(database: Path) -> None:
    missing = runner.invoke(app, ["registry", "organisation", "Acme"], env={"NEUTRALIZE_API_KEY": ""})
    assert missing.exit_code == 2 and "unauthenticated" in missing.stderr
    wrong = runner.invoke(app, ["registry", "organisation", "Acme", "--api-key", "nz_k_00_bad"])
    assert wrong.exit_code == 2 and "unauthenticated" in wrong.stderr
    made = runner.invoke(app, ["registry", "organisation", "Acme", "--api-key", admin_token()])
    assert made.exit_code == 0 and json.loads(made.stdout)["name"] == "Acme"


def test_a_retirement_by_file_and_where_its_serial_went(database: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    export = runner.invoke(app, ["registry", "export", "units", "--format", "json"])
    units = json.loads(export.stdout)
    held = next(u for u in units if u["unitStatus"] == "Held" and u["projectId"] == "CDCER-CD-METRO")
    where = runner.invoke(app, ["registry", "where", held["serialNumberBlock"]])
    assert where.exit_code == 0 and json.loads(where.stdout)[0]["state"] == "held"
    assert runner.invoke(app, ["registry", "where", "NZ-NOPE"]).exit_code == 2


def organisation_id(database: Path, name: str) -> str:
    with closing(sqlite3.connect(database / "cli.db")) as db:
        row = db.execute("SELECT id FROM organisations WHERE name = ?", (name,)).fetchone()
    assert row is not None, name
    return str(row[0])


def count(database: Path, table: str) -> int:
    with closing(sqlite3.connect(database / "cli.db")) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_units_leave_for_another_registry_with_send_out_and_export_still_writes_files(
    database: Path, tmp_path: Path
) -> None:
    # given the demo's held units and a key of the organisation that holds them
    assert runner.invoke(app, ["demo"]).exit_code == 0
    units = json.loads(runner.invoke(app, ["registry", "export", "units", "--format", "json"]).stdout)
    held = next(u for u in units if u["unitStatus"] == "Held" and u["projectId"] == "CDCER-CD-METRO")
    owner = organisation_id(database, held["unitOwner"])
    key = runner.invoke(app, ["keys", "create", "--role", "project_owner", "--organisation", owner])
    assert key.exit_code == 0, key.output
    start = held["unitBlockStart"]
    serial = f"NZ-CDCER-CD-METRO-2025-{start:012d}-{start + 999:012d}"
    body = tmp_path / "e1.json"
    body.write_text(
        json.dumps(
            {
                "units": {"serial": serial},
                "destination_registry": "VCS",
                "reference": "R-1",
                "idempotency_key": "e1",
            }
        ),
        encoding="utf-8",
    )
    # when they are sent out to another registry
    sent = runner.invoke(app, ["registry", "send-out", str(body), "--api-key", key.stdout.strip()])
    # then they are exported there, and the file export lists them so
    assert sent.exit_code == 0, sent.output
    result = json.loads(sent.stdout)
    assert result["operation"] == "export" and result["quantity_kg"] == 1000
    assert [b["destination"] for b in result["blocks"]] == ["VCS: R-1"]
    after = json.loads(runner.invoke(app, ["registry", "export", "units", "--format", "json"]).stdout)
    assert any(u["serialNumberBlock"] == serial and u["unitStatus"] == "Exported" for u in after)


@pytest.mark.parametrize(
    ("command", "table"),
    [
        (["keys", "create", "--role", "project_owner"], "api_keys"),
        (
            ["users", "create", "--email", "ada@example.org", "--name", "Ada", "--role", "project_owner"],
            "users",
        ),
    ],
)
def test_an_unknown_organisation_is_not_found_and_nothing_is_written(
    database: Path, command: list[str], table: str
) -> None:
    # given no organisation org_doesnotexist
    before = count(database, table)
    # when a key or an account is created for it
    result = runner.invoke(
        app,
        [*command, "--organisation", "org_doesnotexist"],
        env={"NEUTRALIZE_NEW_PASSWORD": "correct horse battery staple"},
    )
    # then the command refuses with a code and writes nothing
    assert result.exit_code == 2, result.output
    assert json.loads(result.stderr)["code"] == "not_found"
    assert count(database, table) == before


@pytest.mark.parametrize(
    ("arguments", "code", "field"),
    [
        (["registry", "transition", "AUD-FOREST", "bogus"], "unknown_value", "to_status"),
        (["registry", "organisation", ""], "out_of_range", "name"),
        (["registry", "issue", "ver_x", "--key", ""], "out_of_range", "idempotency_key"),
    ],
)
def test_an_invalid_argument_exits_2_with_the_code_the_api_gives(
    database: Path, arguments: list[str], code: str, field: str
) -> None:
    # given an admin key
    token = admin_token()
    # when a command is given an argument its schema refuses
    result = runner.invoke(app, [*arguments, "--api-key", token])
    # then it exits 2 with the API's code for the same failure and the field at fault
    assert result.exit_code == 2, result.output
    problem = json.loads(result.stderr)
    assert problem["code"] == code
    assert [p["field"] for p in problem["problems"]] == [field]


def test_an_invalid_email_for_a_new_account_exits_2_with_a_code(database: Path) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "--email", "not-an-address", "--name", "Ada"],
        env={"NEUTRALIZE_NEW_PASSWORD": "correct horse battery staple"},
    )
    assert result.exit_code == 2, result.output
    assert json.loads(result.stderr)["code"] == "wrong_type"


def test_a_body_gets_the_codes_and_field_paths_the_api_gives(database: Path) -> None:
    # given a transfer with an unknown field and a quantity out of range
    body = {
        "units": {"project_code": "AUD-FOREST", "vintage": 2024, "quantity_kg": 0},
        "to_account_id": "acc_x",
        "idempotency_key": "t1",
        "note": "hello",
    }
    # when it is read
    result = runner.invoke(
        app, ["registry", "transfer", "-", "--api-key", admin_token()], input=json.dumps(body)
    )
    # then each problem has the API's code and field path
    assert result.exit_code == 2, result.output
    problems = {(p["code"], p["field"]) for p in json.loads(result.stderr)["problems"]}
    assert problems == {("out_of_range", "units.quantity_kg"), ("unknown_field", "note")}


def test_an_import_of_a_file_that_is_not_utf8_gets_the_apis_code(database: Path) -> None:
    export = database / "gb18030.csv"
    export.write_bytes("项目,名称\n1,2\n".encode("gb18030"))
    command = ["registry", "import", str(export), "--programme", "VCS", "--api-key", admin_token()]
    refused = runner.invoke(app, command)
    assert refused.exit_code == 2
    assert json.loads(refused.stderr)["code"] == "invalid_import"


def test_a_file_imported_by_the_cli_is_known_by_its_bytes(database: Path) -> None:
    # given the sample export with CRLF line ends, imported once
    export = database / "crlf.csv"
    export.write_bytes((DATA / "verra_export.csv").read_bytes().replace(b"\n", b"\r\n"))
    command = ["registry", "import", str(export), "--programme", "VCS", "--api-key", admin_token()]
    first, again = runner.invoke(app, command), runner.invoke(app, command)
    # then the second time is the same batch, already imported
    assert first.exit_code == again.exit_code == 0, first.output
    assert json.loads(again.stdout)["already_imported"]
    assert json.loads(again.stdout)["batch_id"] == json.loads(first.stdout)["batch_id"]


def audit(*extra_env: tuple[str, str]) -> tuple[int, dict[str, object] | None, str]:
    result = runner.invoke(app, ["audit", "verify"], env=dict(extra_env))
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = None
    return result.exit_code, report, result.output


def test_audit_verify_with_another_key_directory_makes_no_key_and_names_the_unknown_one(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a checkpoint signed with the keys in one directory
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    # when the audit is run with settings naming a directory that does not exist
    elsewhere = database / "no-keys-here"
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_DIR", str(elsewhere))
    get_settings.cache_clear()
    code, report, output = audit()
    # then no key was made there, and the checkpoint is reported signed by an unknown key
    assert not elsewhere.exists()
    assert code == 1 and report is not None, output
    assert [p["kind"] for p in report["problems"]] == ["unknown_key"]  # type: ignore[index, union-attr]


def test_audit_verify_reports_an_unreadable_journal_row_and_checks_the_rest(database: Path) -> None:
    # given two organisations (two entries on their chain), then the second's payload made unreadable
    token = admin_token()
    for name in ("Org A", "Org B"):
        assert runner.invoke(app, ["registry", "organisation", name, "--api-key", token]).exit_code == 0
    with closing(sqlite3.connect(database / "cli.db")) as db, db:
        db.execute("DROP TRIGGER journal_no_update")
        db.execute("UPDATE journal SET payload = 'not json' WHERE chain = 'organisations' AND chain_seq = 2")
    # when the audit runs, then it reports that entry altered (no traceback) and exits 1
    code, report, output = audit()
    assert code == 1 and report is not None, output
    problems = [(p["chain"], p["seq"], p["kind"]) for p in report["problems"]]  # type: ignore[index, union-attr]
    assert problems == [("organisations", 2, "altered")]


def test_rotating_a_key_given_by_the_environment_exits_2_with_a_code(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY", base64.b64encode(bytes(range(32))).decode("ascii"))
    get_settings.cache_clear()
    result = runner.invoke(app, ["audit", "rotate-key"])
    assert result.exit_code == 2, result.output
    assert json.loads(result.stderr)["code"] == "signing_key_invalid"
