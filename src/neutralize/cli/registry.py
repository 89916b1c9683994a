"""``neutralize registry``, ``neutralize keys`` and ``neutralize audit``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from neutralize.access import users
from neutralize.access.domain import Role
from neutralize.access.service import create_key, revoke_key
from neutralize.cli.common import (
    CHECK_FAILED,
    acting,
    err,
    fail,
    out,
    print_model,
    read_bytes,
    read_model,
    session_scope,
    validated,
)
from neutralize.core.clock import SystemClock
from neutralize.core.config import get_settings
from neutralize.core.errors import DomainError
from neutralize.core.signing import KeyRing, verifier_from_settings
from neutralize.registry import exports, journal, mirror, service
from neutralize.registry.importers.records import Programme
from neutralize.registry.schemas import (
    BufferReversalCmd,
    CancelCmd,
    ExportCmd,
    IssueCmd,
    OrganisationCreate,
    PostCmd,
    ProjectCreate,
    ProjectTransition,
    ReservationCmd,
    ReserveCmd,
    RetireCmd,
    TransferCmd,
    VerificationCreate,
)

registry_app = typer.Typer(help="The carbon-credit registry.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="Tamper evidence: verify the journal, sign checkpoints.", no_args_is_help=True)

ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="the acting key (default: $NEUTRALIZE_API_KEY)")
]
Body = Annotated[str, typer.Argument(help="the command as JSON: a file, or - for stdin")]
CLOCK = SystemClock()


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="the key's role")],
    organisation: Annotated[str | None, typer.Option(help="the organisation it acts for")] = None,
    label: Annotated[str, typer.Option(help="a note to recognise it by")] = "",
) -> None:
    """Create an API key; its secret is printed once and stored only as a digest."""
    with session_scope() as session:
        _known_organisation(session, organisation)
        key = create_key(session=session, clock=CLOCK, role=role, organisation_id=organisation, label=label)
    out.print(key.token)
    err.print(f"key {key.id} ({key.role}) created: keep the token above, it is not shown again")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="the e-mail address to sign in with")],
    name: Annotated[str, typer.Option(help="the name shown on pages")],
    role: Annotated[Role, typer.Option(help="the account's role")] = Role.MEMBER,
    organisation: Annotated[str | None, typer.Option(help="the organisation it acts for")] = None,
) -> None:
    """Create an account with any role (people sign themselves up as members). The password is read
    from $NEUTRALIZE_NEW_PASSWORD, or asked for."""
    password = os.environ.get("NEUTRALIZE_NEW_PASSWORD") or typer.prompt("Password", hide_input=True)
    with session_scope() as session:
        _known_organisation(session, organisation)
        cmd = validated(users.SignUp, {"email": email, "password": password, "display_name": name})
        user = users.sign_up(session=session, clock=CLOCK, cmd=cmd, role=role, organisation_id=organisation)
    err.print(f"account {user.id} ({user.role}) created for {user.email}")


def _known_organisation(session: Session, organisation_id: str | None) -> None:
    """``NOT_FOUND`` before anything is written, rather than the database's foreign-key refusal."""
    if organisation_id is not None:
        service.organisation_public(session=session, organisation_id=organisation_id)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    with session_scope() as session:
        revoke_key(session=session, clock=CLOCK, key_id=key_id)
    err.print(f"key {key_id} revoked")


@registry_app.command("organisation")
def organisation(name: str, api_key: ApiKey = None) -> None:
    """Create an organisation with its holding, retirement, buffer and export accounts."""
    with session_scope() as session:
        cmd = validated(OrganisationCreate, {"name": name})
        print_model(
            service.create_organisation(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@registry_app.command("project")
def project(body: Body, api_key: ApiKey = None) -> None:
    """Register a project (draft) from JSON."""
    with session_scope() as session:
        cmd = read_model(body, ProjectCreate)
        print_model(
            service.create_project(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@registry_app.command("projects")
def projects(status: str | None = None, standard: str | None = None) -> None:
    """List projects."""
    with session_scope() as session:
        print_model(service.list_projects(session=session, status=status, standard=standard, page_size=200))


@registry_app.command("transition")
def transition(code: str, to_status: str, note: str = "", api_key: ApiKey = None) -> None:
    """Move a project along its lifecycle (submitted, validated, registered, rejected, suspended)."""
    with session_scope() as session:
        cmd = validated(ProjectTransition, {"to_status": to_status, "note": note})
        print_model(
            service.transition_project(
                session=session, clock=CLOCK, actor=acting(session, api_key), project_code=code, cmd=cmd
            )
        )


@registry_app.command("verification")
def verification(body: Body, api_key: ApiKey = None) -> None:
    """Record a verification of a monitoring period (verifier or admin)."""
    with session_scope() as session:
        cmd = read_model(body, VerificationCreate)
        print_model(
            service.record_verification(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@registry_app.command("issue")
def issue(
    verification_id: str, key: Annotated[str, typer.Option(help="idempotency key")], api_key: ApiKey = None
) -> None:
    """Issue a verified vintage (admin)."""
    with session_scope() as session:
        cmd = validated(IssueCmd, {"verification_id": verification_id, "idempotency_key": key})
        print_model(service.issue(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd))


def _operation(name: str, model: type[BaseModel], doc: str, *, command_name: str | None = None) -> None:
    def command(body: Body, api_key: ApiKey = None) -> None:
        with session_scope() as session:
            cmd = read_model(body, model)
            run = getattr(service, name)
            print_model(run(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd))

    command.__doc__ = doc
    registry_app.command(command_name or name)(command)


for _name, _model, _doc in (
    ("transfer", TransferCmd, "Transfer units to another holding account."),
    ("retire", RetireCmd, "Retire units on behalf of a beneficiary."),
    ("cancel", CancelCmd, "Cancel units without a claim."),
    ("reserve", ReserveCmd, "Reserve units for an order."),
    ("release", ReservationCmd, "Release a reservation."),
    ("post", PostCmd, "Post a reservation: retire what it holds, for a beneficiary."),
):
    _operation(_name, _model, _doc)
# ``export`` is the file export that pairs with ``import``, so the movement has a name of its own.
_operation(
    "export",
    ExportCmd,
    "Export units to another registry: they leave this one, with destination and reference.",
    command_name="send-out",
)


@registry_app.command("where")
def where(serial: str) -> None:
    """Where every kilogram of a serial range is now."""
    with session_scope() as session:
        print_model(service.where_did_it_go(session=session, text=serial, private=True))


@registry_app.command("check")
def check() -> None:
    """Check conservation per project vintage and that no unit is in two blocks; exit 1 if not."""
    with session_scope() as session:
        report = service.check(session=session)
    print_model(report)
    if not report.ok:
        raise typer.Exit(CHECK_FAILED)


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every journal chain and signed checkpoint; report the first altered, removed or
    reordered entry of each; exit 1 if there is one."""
    settings = get_settings()
    with session_scope() as session:
        report = journal.verify(session=session, keys=verifier_from_settings(settings, clock=CLOCK))
    print_model(report)
    if not report.ok:
        raise typer.Exit(CHECK_FAILED)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the current head of every chain (run it periodically)."""
    settings = get_settings()
    with session_scope() as session:
        point = journal.checkpoint(
            session=session, clock=CLOCK, keys=KeyRing.from_settings(settings, clock=CLOCK)
        )
        out.print(
            f"checkpoint {point.id}: {len(point.heads)} chains, root {point.root}, signed by {point.key_id}"
        )


@registry_app.command("import")
def import_export(
    path: Annotated[Path, typer.Argument(help="the public CSV export")],
    programme: Annotated[Programme, typer.Option(help="VCS (Verra) or GS (Gold Standard)")],
    api_key: ApiKey = None,
) -> None:
    """Mirror a Verra or Gold Standard public export: all rows or nothing; bad rows listed by line."""
    with session_scope() as session:
        report = mirror.import_export(
            session=session,
            clock=CLOCK,
            actor=acting(session, api_key),
            programme=programme,
            data=read_bytes(path),
            filename=path.name,
        )
    print_model(report)


@registry_app.command("record-retirement")
def record_retirement(body: Body, api_key: ApiKey = None) -> None:
    """Record a retirement made on a home registry (its id, serial range, tonnes, date, beneficiary)."""
    with session_scope() as session:
        cmd = read_model(body, mirror.HomeRetirementCreate)
        print_model(
            mirror.record_retirement(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@registry_app.command("share")
def share(body: Body, api_key: ApiKey = None) -> None:
    """Allocate a kilogram share of a recorded home retirement to a buyer."""
    with session_scope() as session:
        cmd = read_model(body, mirror.ShareCreate)
        print_model(
            mirror.allocate_share(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@registry_app.command("export")
def export(
    kind: Annotated[str, typer.Argument(help="projects, units or transactions")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="file to write (default: standard output)")
    ] = None,
) -> None:
    """Write projects, unit blocks (close to the CADT unit model) or journal transactions to a file
    (units leave for another registry with send-out)."""
    with session_scope() as session:
        text = exports.export(session=session, kind=kind, fmt=fmt)
    if out_path is None:
        sys.stdout.write(text)
    else:
        out_path.write_text(text, encoding="utf-8", newline="")  # CSV lines end with CRLF as written
        err.print(f"wrote {out_path}")


@registry_app.command("reverse-buffer")
def reverse_buffer(body: Body, api_key: ApiKey = None) -> None:
    """Replace credits found invalid from the project's buffer (admin): buffer units are cancelled
    and the invalid credits get a replaced-by link."""
    with session_scope() as session:
        cmd = read_model(body, BufferReversalCmd)
        print_model(
            service.reverse_buffer(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )


@audit_app.command("rotate-key")
def audit_rotate_key() -> None:
    """Make a new signing key current; the old one stays published so its signatures still verify."""
    settings = get_settings()
    try:
        info = KeyRing.from_settings(settings, clock=CLOCK).rotate(CLOCK)
    except DomainError as error:
        fail(error)
    out.print(f"signing key {info.key_id} is now current")


@registry_app.command("record-holding")
def record_holding(body: Body, api_key: ApiKey = None) -> None:
    """Record units the platform holds in its own account at a home registry (its stock)."""
    with session_scope() as session:
        cmd = read_model(body, mirror.HomeHoldingCreate)
        print_model(
            mirror.record_holding(session=session, clock=CLOCK, actor=acting(session, api_key), cmd=cmd)
        )
