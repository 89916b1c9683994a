"""Every page, in a real browser: no WCAG 2.1 A/AA violation that axe-core finds (labels, contrast,
names, landmarks, keyboard), and no page heavier than 200 KB before images."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from neutralize.access.domain import Role
from neutralize.demo import DEMO_ACCOUNTS
from tests.e2e.conftest import PHONE

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MAX_BYTES = 200 * 1024
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
FORUM = "tianfu-forum-2026"
PUBLIC = [
    "/",
    f"/s/{FORUM}",
    "/s/dujiangyan",
    "/s/jinjiang-hotel",
    "/s/kuanzhai-kitchen",
    "/s/my-year",
    "/leaderboards",
    f"/leaderboards/{FORUM}",
    f"/leaderboards/{FORUM}?by=organisations",
    "/registry",
    "/registry/serials",
    "/login",
    "/signup",
    "/password-reset",
    "/s/no-such-scene",
    f"/s/{FORUM}/neutrality",
    "/s/chengdu-green-salon-2026/neutrality",
]
ORGANISER = [
    "/account",
    "/organiser",
    f"/organiser/scenes/{FORUM}",
    f"/organiser/scenes/{FORUM}/neutrality",
    "/carbon",
]
ADMIN = ["/admin"]
MEMBER = ["/carbon", "/account", f"/leaderboards/{FORUM}?by=organisations"]  # a linked metro account
PARTNER = ["/partner"]
# Weight of what a page loads before images: the document, its style sheets, scripts and fetches.
WEIGHT = """() => {
    const entries = [...performance.getEntriesByType("navigation"),
                     ...performance.getEntriesByType("resource")];
    return entries.filter(e => e.initiatorType !== "img" && e.initiatorType !== "image")
                  .reduce((sum, e) => sum + e.decodedBodySize, 0);
}"""
_axe = Axe()


def _account(role: Role) -> tuple[str, str]:
    email, _name, _role, password = next(a for a in DEMO_ACCOUNTS if a[2] is role)
    return email, password


@pytest.fixture(scope="module")
def pages(browser: Browser, base_url: str) -> Iterator[dict[str, Page]]:
    """A phone for everyone, and phones signed in as the demo organiser, admin, member and partner."""
    contexts = []
    opened: dict[str, Page] = {}
    for who in ("anyone", "organiser", "admin", "member", "integrator"):
        context = browser.new_context(base_url=base_url, viewport=PHONE, is_mobile=True, has_touch=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        if who != "anyone":
            email, password = _account(Role(who))
            page.goto("/login")
            page.locator("input[name=email]").fill(email)
            page.locator("input[name=password]").fill(password)
            with page.expect_navigation():
                page.locator("form button[type=submit]").first.click()
        opened[who] = page
    try:
        yield opened
    finally:
        for context in contexts:
            context.close()


def _problems(page: Page) -> list[str]:
    results: Any = _axe.run(page, options=WCAG).response
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in results["violations"]
    ]
    weight = int(page.evaluate(WEIGHT))
    if weight > MAX_BYTES:
        found.append(f"{weight:,} bytes before images (at most {MAX_BYTES:,})")
    return found


@pytest.mark.parametrize(
    ("who", "path"),
    [("anyone", p) for p in PUBLIC]
    + [("organiser", p) for p in ORGANISER]
    + [("admin", p) for p in ADMIN]
    + [("member", p) for p in MEMBER]
    + [("integrator", p) for p in PARTNER],
)
def test_page_is_accessible_and_light(pages: dict[str, Page], who: str, path: str) -> None:
    page = pages[who]
    response = page.goto(path)
    assert response is not None and response.status < 500, f"{path}: {response and response.status}"
    assert page.url.split("?")[0].endswith(path.split("?")[0]), f"{path} sent {who} to {page.url}"
    assert _problems(page) == [], path
