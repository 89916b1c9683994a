"""Pages in the browser's language, or the one chosen with the switch and remembered; numbers, dates
and problems as each language writes them. English stays the default."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from neutralize.web.i18n import LANGUAGE_COOKIE
from tests.api.factories import form_token

HTML_LANG = re.compile(r'<html lang="([a-z]+)">')
TOTAL = re.compile(r'id="total">([^<]+)<')


@pytest.fixture(autouse=True)
def forget_the_language(client: TestClient) -> Iterator[None]:
    """The module's client keeps cookies: no test leaves its language to the next."""
    yield
    client.cookies.delete(LANGUAGE_COOKIE)


def html_lang(text: str) -> str:
    found = HTML_LANG.search(text)
    assert found, "no <html lang>"
    return found.group(1)


def test_a_browser_without_preferences_gets_english(client: TestClient) -> None:
    page = client.get("/")
    assert html_lang(page.text) == "en" and page.headers["content-language"] == "en"
    assert "Your carbon footprint" in page.text and "Accept-Language" in page.headers["vary"]
    assert LANGUAGE_COOKIE not in page.cookies


@pytest.mark.parametrize(
    ("accept", "language", "heading"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de", "Ihr CO2-Fußabdruck"),
        ("nl-BE,nl;q=0.9", "nl", "Uw CO2-voetafdruk"),
        ("zh-CN,zh;q=0.9,en;q=0.5", "zh", "您的碳足迹"),
        ("fr-FR,fr;q=0.9,de;q=0.5", "de", "Ihr CO2-Fußabdruck"),
        ("fr-FR,ja", "en", "Your carbon footprint"),
    ],
)
def test_the_browser_language_is_negotiated(
    client: TestClient, accept: str, language: str, heading: str
) -> None:
    page = client.get("/", headers={"Accept-Language": accept})
    assert html_lang(page.text) == language and page.headers["content-language"] == language
    assert heading in page.text


def test_the_switch_sets_a_cookie_that_outranks_the_browser(client: TestClient) -> None:
    # When a German browser chooses 中文 with the switch
    switched = client.get("/registry", params={"lang": "zh"}, headers={"Accept-Language": "de"})

    # Then the page is Chinese, and the choice is remembered for a year, for this site only
    assert html_lang(switched.text) == "zh" and "登记簿：项目" in switched.text
    cookie = switched.headers["set-cookie"]
    assert cookie.startswith(f"{LANGUAGE_COOKIE}=zh;") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=31536000" in cookie

    # And later pages without the switch stay Chinese, whatever the browser asks for
    later = client.get("/login", headers={"Accept-Language": "de"})
    assert html_lang(later.text) == "zh" and "忘记密码？" in later.text
    assert "set-cookie" not in later.headers or LANGUAGE_COOKIE not in later.headers["set-cookie"]


def test_an_unknown_language_is_ignored(client: TestClient) -> None:
    page = client.get("/", params={"lang": "xx"})
    assert html_lang(page.text) == "en" and LANGUAGE_COOKIE not in page.cookies


def test_the_switch_links_keep_the_page_and_mark_the_current_language(client: TestClient) -> None:
    page = client.get("/registry/serials", params={"q": "NZ-X"}, headers={"Accept-Language": "nl"})
    for code, name in (("zh", "中文"), ("en", "English"), ("de", "Deutsch")):
        link = (
            f'<a href="/registry/serials?q=NZ-X&amp;lang={code}" hreflang="{code}" lang="{code}">{name}</a>'
        )
        assert link in page.text
    assert 'hreflang="nl" lang="nl" aria-current="true">Nederlands</a>' in page.text


def test_numbers_are_written_the_way_each_language_writes_them(client: TestClient) -> None:
    # Given a footprint over a thousand kilograms with a fraction
    form = {"region": "CN-SC", "kwh": "9876.5", "csrf_token": form_token(client)}

    # When it is shown in English and in German
    totals = {}
    for language in ("en", "de"):
        page = client.post("/", data=form, headers={"Accept-Language": language})
        assert page.status_code == 200
        found = TOTAL.search(page.text)
        assert found
        totals[language] = found.group(1)

    # Then English groups with commas and German with points, with a decimal point or comma
    assert re.fullmatch(r"\d{1,3}(,\d{3})+\.\d+", totals["en"]), totals
    assert re.fullmatch(r"\d{1,3}(\.\d{3})+,\d+", totals["de"]), totals
    assert Decimal(totals["en"].replace(",", "")) == Decimal(totals["de"].replace(".", "").replace(",", "."))


def test_a_problem_has_a_translated_title_above_its_english_detail(client: TestClient) -> None:
    form = {"origin": "XQX", "destination": "CTU", "csrf_token": form_token(client)}
    page = client.post("/", data=form, headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 422 and 'data-code="unknown_airport"' in page.text
    assert re.search(
        r'<strong>未知机场</strong> · <span lang="en">[^<]*origin unknown[^<]*</span>', page.text
    )


def test_a_trans_block_and_a_data_word_are_translated(client: TestClient) -> None:
    page = client.get("/registry", headers={"Accept-Language": "de"})
    assert "Ausgegebene Zertifikate lauten auf ganze Kilogramm CO2e (1 t = 1.000 kg)." in page.text
    offset = client.get("/offset", params={"kg_co2e": "12"}, headers={"Accept-Language": "nl"})
    if offset.status_code == 200:  # listings exist once the market tests have put some up
        assert "U betaalt" in offset.text and "gesimuleerd" in offset.text


def test_the_json_api_is_not_translated(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Accept-Language": "de"})
    assert response.json() == {"status": "ok"} and "content-language" not in response.headers
