"""The ``neutralize`` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from neutralize.cli.accounts import accounts_app
from neutralize.cli.common import out
from neutralize.cli.footprint import factors_app, footprint
from neutralize.cli.market import market_app, verify
from neutralize.cli.registry import audit_app, keys_app, registry_app, users_app
from neutralize.core.config import get_settings
from neutralize.core.logging import configure_logging

app = typer.Typer(help="Neutralize: measure, neutralize, certify.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.command()(footprint)
app.add_typer(factors_app, name="factors")
app.add_typer(registry_app, name="registry")
app.add_typer(market_app, name="market")
app.add_typer(accounts_app, name="accounts")
app.command()(verify)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
) -> None:
    """Start the web platform and the JSON API."""
    import uvicorn

    from neutralize.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level)
    host = host or settings.host
    port = port or settings.port
    if "public_url" not in settings.model_fields_set:  # QR codes point where this server listens
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})
    out.print(
        f"Neutralize is running at [bold]http://{host}:{port}/[/] (API docs: http://{host}:{port}/docs)"
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@app.command()
def demo() -> None:
    """Load the demo data (organisations, projects, issued and retired credits) if it is not there."""
    from neutralize.cli.common import session_scope
    from neutralize.core.clock import SystemClock
    from neutralize.core.signing import KeyRing
    from neutralize.demo import load

    settings, clock = get_settings(), SystemClock()
    with session_scope() as session:
        added = load(
            session=session, clock=clock, settings=settings, keys=KeyRing.from_settings(settings, clock=clock)
        )
    out.print("demo data loaded" if added else "demo data already there")
    from neutralize.demo import DEMO_ACCOUNTS, SALON, SCENES

    for email, _name, role, password in DEMO_ACCOUNTS:
        out.print(f"  sign in at /login as {email} / {password} ({role})")
    out.print(f"  guests start at /s/{SCENES[0][0]} (the QR poster is on the organiser's dashboard)")
    out.print(
        f"  event neutrality: /organiser/scenes/{SCENES[0][0]}/neutrality (in progress), "
        f"/s/{SALON}/neutrality (every step done)"
    )
    out.print("  carbon accounts: /carbon (the member's metro account and level), /partner (the partner)")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration to the configured database."""
    from neutralize.core.migrations import upgrade

    upgrade(get_settings())
    out.print("database is up to date")
