"""``neutralize accounts``: take in a partner's record file, bundle verified grams into registry
credits, and check that every account's totals equal its history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neutralize.accounts import bundles, intake
from neutralize.accounts import service as accounts
from neutralize.accounts.ingest import read_records
from neutralize.cli.common import CHECK_FAILED, acting, err, print_model, read_model, session_scope
from neutralize.core.clock import SystemClock
from neutralize.scenes import service as scenes

accounts_app = typer.Typer(help="Carbon accounts: records in, bundles out, checks.", no_args_is_help=True)
ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="the acting key (default: $NEUTRALIZE_API_KEY)")
]
CLOCK = SystemClock()


@accounts_app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines, CSV or Parquet")],
    api_key: ApiKey = None,
) -> None:
    """Credit a partner's record file with its integrator key: each record once, refused rows listed
    with their row numbers and codes."""
    with session_scope() as session:
        raw = read_records(file)
        report = intake.ingest(session=session, clock=CLOCK, actor=acting(session, api_key), raw=raw)
        scenes.record_reductions(session=session, user_ids=report.linked_users)
    print_model(report)


@accounts_app.command("bundle")
def bundle(
    body: Annotated[str, typer.Argument(help="the command as JSON: a file, or - for stdin")],
    api_key: ApiKey = None,
) -> None:
    """Issue a period's verified, unbundled grams as whole kilograms of a carbon-inclusive project:
    {"project_code", "period_start", "period_end", "verifier", "report_sha256"} (an admin key)."""
    with session_scope() as session:
        cmd = read_model(body, bundles.BundleCreate)
        print_model(bundles.bundle(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd))


@accounts_app.command("check")
def check() -> None:
    """Prove every account's grams credited and bundled and points spent equal its history, and no
    entry bundled beyond its grams. Exit 1 on any finding."""
    with session_scope() as session:
        findings = accounts.check(session=session)
    print_model(findings)
    if findings:
        err.print(f"{len(findings)} finding(s)")
        raise typer.Exit(CHECK_FAILED)
