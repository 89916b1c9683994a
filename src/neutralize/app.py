"""The web application factory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session, sessionmaker

from neutralize import __version__
from neutralize.api import accounts, factors, footprints, health, market, registry, wellknown
from neutralize.api.authorisation import authorise
from neutralize.api.errors import install_error_handlers
from neutralize.api.limits import BodyLimitMiddleware
from neutralize.api.text import refuse_unstorable_text
from neutralize.core.clock import Clock, SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.signing import KeyRing
from neutralize.scenes import events
from neutralize.scenes import service as scenes
from neutralize.web import account as account_pages
from neutralize.web import admin as admin_pages
from neutralize.web import carbon as carbon_pages
from neutralize.web import market as market_pages
from neutralize.web import neutrality as neutrality_pages
from neutralize.web import pages
from neutralize.web import registry as registry_pages
from neutralize.web import scenes as scene_pages
from neutralize.web.i18n import LanguageMiddleware
from neutralize.web.security import CsrfCookieMiddleware

logger = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the periodic jobs beside the app while it serves: the market's, the leaderboards' ranks and
    the events' offset-deadline reminders."""
    interval = app.state.settings.market_jobs_seconds
    task = asyncio.create_task(_jobs(app, interval)) if interval else None
    yield
    if task is not None:
        task.cancel()


async def _jobs(app: FastAPI, interval: int) -> None:
    state = app.state
    ranked_at = 0.0
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(
                market.run_jobs, state.session_factory, state.clock, state.settings, state.keys
            )
            if time.monotonic() - ranked_at >= state.settings.ranks_refresh_seconds:
                await asyncio.to_thread(_refresh_ranks, state.session_factory)
                await asyncio.to_thread(_remind, state.session_factory, state.clock, state.settings)
                ranked_at = time.monotonic()
        except Exception:  # a failed round is logged and retried next time; it must not stop the loop
            logger.exception("periodic jobs failed")


def _refresh_ranks(factory: sessionmaker[Session]) -> None:
    with unit_of_work(factory) as session:
        scenes.refresh_ranks(session=session)


def _remind(factory: sessionmaker[Session], clock: Clock, settings: Settings) -> None:
    with unit_of_work(factory) as session:
        events.send_deadline_reminders(session=session, clock=clock, settings=settings)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the platform's ASGI app for ``settings``; nothing is created at import time."""
    app = FastAPI(
        title="Neutralize",
        version=__version__,
        description="Open carbon-neutrality service platform: measure, neutralize, certify.",
        lifespan=_lifespan,
    )
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.keys = KeyRing.from_settings(settings, clock=app.state.clock)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    install_error_handlers(app, page_problem=pages.error_page)

    uploads = ("/api/v1/footprints/batch", "/api/v1/registry/imports", "/api/v1/accounts/records/files")

    def limit_for(path: str) -> int:
        return settings.max_upload_bytes if path.rstrip("/") in uploads else settings.max_request_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for, page_problem=pages.error_page)
    app.add_middleware(CsrfCookieMiddleware, secure=settings.public_url.startswith("https://"))
    app.add_middleware(LanguageMiddleware, secure=settings.public_url.startswith("https://"))
    # The JSON routes enforce their rule of api/authorisation.RULES at the door, then refuse text no
    # database can keep (api/text.py); pages refuse such text first, then check their rules themselves
    # (a page sends a stranger to /login rather than answering 401).
    for router in (
        health.router,
        wellknown.router,
        footprints.router,
        factors.router,
        registry.router,
        market.router,
        accounts.router,
    ):
        app.include_router(router, dependencies=[Depends(authorise), Depends(refuse_unstorable_text)])
    for router in (
        pages.router,
        market_pages.router,
        admin_pages.router,
        account_pages.router,
        scene_pages.router,
        carbon_pages.router,
        neutrality_pages.router,
        registry_pages.router,
    ):
        app.include_router(router, dependencies=[Depends(refuse_unstorable_text)])
    return app
