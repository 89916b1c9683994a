"""A real server on a free localhost port, loaded with the demo data, and Chromium on a phone.

Each xdist worker starts its own server and browser (session-scoped fixtures run once per worker).
Chromium is Debian's (``make system-deps`` installs it): Playwright's own browser downloads are not
used. Without it, or without Playwright, the suite is skipped — except under ``CI=true``, where a
skipped browser suite would hide a broken set-up, so it fails instead.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import uvicorn

from neutralize.app import create_app
from neutralize.core.clock import SystemClock
from neutralize.core.config import Settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.migrations import upgrade
from neutralize.core.signing import KeyRing
from neutralize.demo import load

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 390, "height": 844}
START_TIMEOUT_S = 20
ON_CI = os.environ.get("CI", "").lower() == "true"


def _missing(reason: str) -> NoReturn:
    if ON_CI:
        pytest.fail(f"CI=true but the browser suite cannot run: {reason}")
    pytest.skip(f"browser suite skipped: {reason}")


def _demo_settings(tmp: Path, base_url: str) -> Settings:
    """A fresh, migrated SQLite database holding the demo data, with certificates pointing at us."""
    settings = Settings(
        environment="test",
        database_url=f"sqlite:///{tmp / 'e2e.db'}",
        signing_key_dir=tmp / "keys",
        public_url=base_url,
        market_jobs_seconds=0,
        log_level="WARNING",
    )
    upgrade(settings)
    clock = SystemClock()
    engine = make_engine(settings)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            added = load(
                session=session,
                clock=clock,
                settings=settings,
                keys=KeyRing.from_settings(settings, clock=clock),
            )
    finally:
        engine.dispose()
    if not added:
        pytest.fail("the demo data was already in a database that should be new")
    return settings


def _serve(settings: Settings, listener: socket.socket) -> tuple[uvicorn.Server, threading.Thread]:
    """Uvicorn serving the app on ``listener`` in a background thread, once it accepts requests."""
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the app did not start within {START_TIMEOUT_S} s")
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="session")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a running Neutralize app (one per xdist worker), stopped after the session."""
    # The port is bound here and handed to uvicorn, so no other process can take it in between.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        server, thread = _serve(_demo_settings(tmp_path_factory.mktemp("e2e"), url), listener)
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=START_TIMEOUT_S)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -c constraints.txt -e '.[dev]')")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (make system-deps, or apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def phone_context(browser: Browser, base_url: str, locale: str) -> BrowserContext:
    """A phone-sized touch screen whose browser asks for ``locale`` (its Accept-Language)."""
    context: BrowserContext = browser.new_context(
        base_url=base_url,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=3,
        locale=locale,
    )
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def phone(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh page on a phone-sized touch screen; each test gets its own cookies and storage.
    Its browser asks for English, the language the flows' assertions read."""
    context = phone_context(browser, base_url, "en-GB")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
