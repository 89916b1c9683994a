"""A guest whose phone asks for Chinese gets the scene in Chinese, switches to German with the
keyboard, calculates and offsets in German, then reads the price in Dutch: the switch keeps the page,
the choice is remembered, and every page still fits the phone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import phone_context
from tests.e2e.test_offset_flow import PhoneFit, follow

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

FORUM = "tianfu-forum-2026"


def language(page: Page) -> str | None:
    return page.locator("html").get_attribute("lang")


def switch(page: Page, code: str) -> None:
    """Choose a language in the navigation with the keyboard, as someone without a pointer would."""
    link = page.locator(f"#languages a[hreflang={code}]")
    link.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"[?&]lang={code}"))


def test_a_guest_switches_language_on_a_phone(browser: Browser, base_url: str, tmp_path: Path) -> None:
    context = phone_context(browser, base_url, "zh-CN")
    phone = context.new_page()
    fit = PhoneFit(phone)
    try:
        # Given a phone that asks for Chinese, on the forum's QR address
        phone.goto(f"/s/{FORUM}")

        # Then the scene speaks Chinese, and the switch marks 中文 as current
        fit.check()
        assert language(phone) == "zh"
        assert phone.locator("#calculate").inner_text() == "计算"
        assert phone.locator("#languages a[aria-current]").inner_text() == "中文"

        # When the guest switches to Deutsch
        switch(phone, "de")

        # Then the same scene speaks German
        fit.check()
        assert language(phone) == "de"
        assert phone.locator("#calculate").inner_text() == "Berechnen"
        assert phone.locator("#languages a[aria-current]").inner_text() == "Deutsch"

        # When they fill it in by its German labels and calculate
        phone.get_by_label("Verkehrsmittel").select_option("rail")
        phone.get_by_label("oder Entfernung, km").fill("1234")
        phone.get_by_label("hin und zurück").check()
        phone.get_by_label("Nächte").fill("2")
        follow(phone, phone.locator("#calculate"), re.compile(rf"/s/{FORUM}$"))

        # Then the footprint is German, its numbers written the German way
        fit.check()
        assert language(phone) == "de"
        assert "Ihr CO2-Fußabdruck" in phone.locator("h1").inner_text()
        assert "Bahn · 2.468 km" in phone.locator("table").inner_text()
        assert re.fullmatch(r"[\d.]+(,\d+)?", phone.locator("#total").inner_text())

        # When they offset it, the remembered choice carries on without asking again
        follow(phone, phone.locator("#offset"), re.compile(r"/offset\?footprint_id="))
        fit.check()
        assert "lang=" not in phone.url
        assert language(phone) == "de"
        assert "Sie zahlen" in phone.locator("#split").inner_text()
        german_total = phone.locator("#total").inner_text()
        assert re.fullmatch(r"[\d.]+,\d\d [A-Z]{3}", german_total)

        # When they switch to Nederlands on the offset page
        offset_url = phone.url
        switch(phone, "nl")

        # Then the same offer, for the same footprint, is Dutch
        fit.check()
        assert phone.url.startswith(offset_url)
        assert language(phone) == "nl"
        assert "U betaalt" in phone.locator("#split").inner_text()
        assert phone.locator("#total").inner_text() == german_total  # both write 1.234,50
        assert phone.get_by_label("Naam op het certificaat").count() == 1
        screenshot = tmp_path / "offset-nl.png"
        phone.screenshot(path=screenshot, full_page=True)
        assert screenshot.stat().st_size > 10_000

        # And back in English, the same total is written the English way
        switch(phone, "en")
        assert language(phone) == "en"
        assert "You pay" in phone.locator("#split").inner_text()
        assert phone.locator("#total").inner_text() == german_total.replace(".", "_").replace(
            ",", "."
        ).replace("_", ",")
        fit.assert_all_fit()
    finally:
        context.close()
