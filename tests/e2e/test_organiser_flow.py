"""An organiser at a desk and guests on phones, in a real browser: a new conference scene, its poster's
QR code decoded and followed, the guest's footprint counted on the dashboard, and the leaderboards."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import zxingcpp
from PIL import Image

from neutralize.access.domain import Role
from neutralize.demo import DEMO_ACCOUNTS
from neutralize.scenes.domain import SceneType
from tests.e2e.test_offset_flow import PhoneFit, follow

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
FORUM = "tianfu-forum-2026"
FORUM_DEMO_GUESTS = 36
ORGANISER_EMAIL, _, _, ORGANISER_PASSWORD = next(a for a in DEMO_ACCOUNTS if a[2] is Role.ORGANISER)
GUEST = "李娜"
MASKED = re.compile(r"\S?\*")  # 张*, G*, or a bare * where no name was known


@pytest.fixture
def desk(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh page on a desktop-sized screen, with its own cookies."""
    context: BrowserContext = browser.new_context(base_url=base_url, viewport=DESKTOP, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Page) -> None:
    """Sign in with the demo organiser's account; lands on the account page."""
    page.goto("/login")
    page.get_by_label("E-mail").fill(ORGANISER_EMAIL)
    page.get_by_label("Password").fill(ORGANISER_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))


def create_conference(page: Page, name: str, slug: str) -> None:
    """From the organiser's home, create a conference scene; lands on its dashboard."""
    page.goto("/organiser")
    form = page.locator("form[action='/organiser/scenes']")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Short name for its address").fill(slug)
    form.get_by_label("Kind").select_option(SceneType.CONFERENCE.value)
    form.get_by_label("Country").fill("CN")
    form.get_by_label("Region").fill("CN-SC")
    with page.expect_navigation():
        form.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(rf"/organiser/scenes/{slug}$"))


def participants(page: Page) -> int:
    """The participant count the dashboard shows, read afresh from the server."""
    page.reload()
    return int(page.locator("#participants").inner_text())


def travel_by_rail(phone: Page, distance_km: int, nights: int, meals: int, shown_name: str = "") -> None:
    """On a conference scene's calculator: rail there and back, hotel nights and meals, and a name
    for the leaderboard if one is given; calculate."""
    phone.get_by_label("By").select_option("rail")
    phone.get_by_label("or distance, km").fill(str(distance_km))
    phone.get_by_label("and back").check()
    phone.get_by_label("Nights").fill(str(nights))
    phone.locator("input[name=meals]").fill(str(meals))
    if shown_name:
        phone.get_by_label("show my name").check()
        phone.get_by_label("Name", exact=True).fill(shown_name)
    follow(phone, phone.locator("#calculate"), re.compile(r"/s/[a-z0-9-]+$"))


def decode_qr(png: bytes) -> str:
    """The text of the one QR code in a PNG image."""
    codes = [c for c in zxingcpp.read_barcodes(Image.open(io.BytesIO(png))) if c.valid]
    assert len(codes) == 1, f"{len(codes)} readable barcodes in the poster"
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
    return codes[0].text


def test_organiser_poster_qr_code_brings_a_guest_who_is_counted_on_the_dashboard(
    desk: Page, phone: Page, base_url: str, tmp_path: Path
) -> None:
    fit = PhoneFit(phone)
    slug = f"e2e-forum-{uuid.uuid4().hex[:10]}"
    # Given the demo organiser, signed in at a desk, creates a new conference scene
    sign_in(desk)
    create_conference(desk, "Chengdu Low-Carbon Summit", slug)

    # Then its dashboard shows no participants and nothing to offset yet
    assert desk.locator("h1").inner_text() == "Chengdu Low-Carbon Summit"
    assert participants(desk) == 0
    assert Decimal(desk.locator("#total").inner_text()) == 0
    desk.screenshot(path=tmp_path / "dashboard-new.png", full_page=True)

    # When the organiser downloads the poster's PNG with their signed-in cookies
    poster = desk.context.request.get(f"/organiser/scenes/{slug}/poster.png")
    assert poster.status == 200
    assert poster.headers["content-type"] == "image/png"

    # Then its QR code decodes to the scene's public address, as the dashboard also states
    url = decode_qr(poster.body())
    assert url == f"{base_url}/s/{slug}"
    assert desk.locator(f"a[href='{url}']").count() == 1

    # And the printable poster is a PDF
    pdf = desk.context.request.get(f"/organiser/scenes/{slug}/poster.pdf")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    assert len(pdf.body()) > 1_000

    # When a guest with no account opens the decoded address on a phone and fills the calculator
    phone.goto(url)
    fit.check()
    assert phone.locator("#scene-name").inner_text() == "Chengdu Low-Carbon Summit"
    travel_by_rail(phone, distance_km=350, nights=2, meals=3, shown_name=GUEST)

    # Then the footprint has a line each for rail, hotel and meals, a total, an offset button and a rank
    fit.check()
    phone.screenshot(path=tmp_path / "guest-footprint.png", full_page=True)
    lines = phone.locator("tbody tr")
    kinds = " ".join(lines.all_inner_texts()).lower()
    assert re.search(r"rail · 700(\.0)? km", kinds), kinds
    assert "hotel" in kinds and "meal" in kinds, kinds
    total = Decimal(phone.locator("#total").inner_text())
    assert total > 0
    assert phone.locator("#offset").is_visible()
    rank = phone.locator("#rank")
    assert rank.is_visible()

    # When they follow the leaderboard link, their own place is shown
    follow(phone, rank, re.compile(rf"/leaderboards/{slug}\?me="))
    fit.check()
    phone.screenshot(path=tmp_path / "guest-rank.png", full_page=True)
    assert re.fullmatch(r"Your place: 1 \(0 kg offset\)", phone.locator("#my-rank").inner_text())
    mine = phone.locator("#leaderboard tr.me")
    assert mine.count() == 1
    assert mine.locator("td").nth(1).inner_text() == GUEST

    # And back at the desk, the dashboard counts one participant with the guest's footprint
    assert participants(desk) == 1
    assert abs(Decimal(desk.locator("#total").inner_text()) - total) <= Decimal("0.05")
    desk.screenshot(path=tmp_path / "dashboard-one-guest.png", full_page=True)

    # And every page the guest saw fitted the phone
    fit.assert_all_fit()


def test_forum_dashboard_counts_the_demo_guests_and_one_more(desk: Page, phone: Page, tmp_path: Path) -> None:
    # Given the demo forum's dashboard, whose count matches its participants export
    sign_in(desk)
    desk.goto(f"/organiser/scenes/{FORUM}")
    before = participants(desk)
    export = desk.context.request.get(f"/organiser/scenes/{FORUM}/participants.csv")
    assert export.status == 200
    rows = list(csv.DictReader(io.StringIO(export.text())))
    assert len(rows) == before
    # The demo's 36 guests, plus any that earlier tests in this worker added
    assert before >= FORUM_DEMO_GUESTS
    # Only the demo's guests 1, 4, 7, … agreed to be named; nine of them offset
    named = {r["name"] for r in rows if not MASKED.fullmatch(r["name"])}
    assert named == {f"Guest {n + 1}" for n in range(0, FORUM_DEMO_GUESTS, 3)}, named
    assert sum(1 for r in rows if r["order"]) >= 9
    assert Decimal(desk.locator("#offset-share").inner_text()) > 0
    desk.screenshot(path=tmp_path / "forum-dashboard.png", full_page=True)

    # When one more guest fills the forum's calculator on a phone
    fit = PhoneFit(phone)
    phone.goto(f"/s/{FORUM}")
    fit.check()
    travel_by_rail(phone, distance_km=350, nights=2, meals=3)
    fit.check()
    assert Decimal(phone.locator("#total").inner_text()) > 0

    # Then the dashboard counts exactly one more
    assert participants(desk) == before + 1
    fit.assert_all_fit()


def test_guest_on_a_phone_sees_the_forum_leaderboard_with_masked_and_shown_names(
    phone: Page, tmp_path: Path
) -> None:
    fit = PhoneFit(phone)
    # When a guest on a phone opens the forum's leaderboard
    phone.goto(f"/leaderboards/{FORUM}")

    # Then it lists the forum's guests, masked unless they agreed to show their name
    fit.check()
    phone.screenshot(path=tmp_path / "forum-leaderboard.png", full_page=True)
    assert "Tianfu Carbon Neutrality Forum 2026" in phone.locator("h1").inner_text()
    names = phone.locator("#leaderboard tr td:nth-child(2)").all_inner_texts()
    assert len(names) >= FORUM_DEMO_GUESTS
    masked = [n for n in names if MASKED.fullmatch(n)]
    shown = [n for n in names if re.fullmatch(r"Guest \d+", n)]
    assert masked, names
    assert shown, names
    # Only guests 1, 4, 7, … agreed to be named in the demo
    assert all((int(n.split()[1]) - 1) % 3 == 0 for n in shown), shown
    assert set(names) <= {*masked, *shown}, set(names) - {*masked, *shown}
    assert phone.locator("#my-rank").count() == 0
    fit.assert_all_fit()


def submit(page: Page, form: str, url: str | re.Pattern[str]) -> None:
    """Click the submit button of the form posting to ``form`` and wait for where it leads."""
    with page.expect_navigation():
        page.locator(f"form[action$='{form}'] button[type=submit]").click()
    page.wait_for_url(url)


def step_done(page: Page, step: str) -> bool:
    return page.locator(f"#status-{step}").get_attribute("data-complete") == "yes"


REGISTRATION_LIST = b"""reference,origin,distance_km,mode,nights,hotel_country
S-1,PEK,,,2,
S-2,CHONGQING,300,rail,1,
S-3,LESHAN,150,car,0,
S-4,,,,,
"""


def test_forum_shows_its_neutrality_steps_in_progress(desk: Page, tmp_path: Path) -> None:
    # Given the demo organiser on the forum's dashboard, who follows the event-neutrality link
    sign_in(desk)
    desk.goto(f"/organiser/scenes/{FORUM}")
    with desk.expect_navigation():
        desk.locator("#neutrality").click()
    # Then the forum has a plan, measures and a complete account with bounds, but no offset yet
    assert all(step_done(desk, s) for s in ("plan", "reduce", "account"))
    assert not step_done(desk, "offset") and not step_done(desk, "evaluate")
    low, high = (Decimal(desk.locator(f"#{b}-kg").inner_text().replace(",", "")) for b in ("low", "high"))
    assert 0 < low < high
    assert desk.locator("#extrapolated").is_visible()
    assert desk.locator("#claim-refused").is_visible()
    desk.screenshot(path=tmp_path / "forum-neutrality.png", full_page=True)


def test_organiser_takes_a_new_event_to_carbon_neutrality(desk: Page, phone: Page, tmp_path: Path) -> None:
    slug = f"e2e-event-{uuid.uuid4().hex[:10]}"
    path = f"/organiser/scenes/{slug}/neutrality"
    # Given a new conference scene, the organiser opens its neutrality page: every step is open
    sign_in(desk)
    create_conference(desk, "Chengdu Climate Dialogue", slug)
    desk.goto(path)
    assert not any(step_done(desk, s) for s in ("plan", "reduce", "account", "offset", "evaluate"))

    # When they record the plan and a reduction measure with its evidence
    desk.get_by_label("Expected attendees").fill("5")
    desk.get_by_label("Expected footprint, kg CO2e").fill("2000")
    desk.get_by_label("First day").fill("2026-11-20")
    desk.get_by_label("Last day").fill("2026-11-21")
    desk.get_by_label("Airport attendees fly to").fill("TFU")
    desk.get_by_label("Reduction plan").fill("Rail and metro first; vegetarian lunch")
    submit(desk, "/neutrality/plan", re.compile(rf"{path}#step-plan$"))
    desk.get_by_label("Measure", exact=True).fill("Shuttle bus from the station")
    desk.get_by_label("Evidence (reference, address or note)").fill("Bus contract CCD-7")
    submit(desk, "/neutrality/measures", re.compile(rf"{path}#step-reduce$"))
    assert step_done(desk, "plan") and step_done(desk, "reduce")

    # And upload the registration list and enter venue electricity and catering
    desk.get_by_label("Registration list (CSV)").set_input_files(
        {"name": "registrations.csv", "mimeType": "text/csv", "buffer": REGISTRATION_LIST}
    )
    submit(desk, "/neutrality/registrations", re.compile(rf"{path}#step-account$"))
    for kind, qualifier, quantity in (("electricity", "CN-SC", "900"), ("catering", "vegetarian", "10")):
        desk.locator("form[action$='/neutrality/items'] select[name=kind]").select_option(kind)
        desk.get_by_label("Region, diet, fuel, or materials/waste").fill(qualifier)
        desk.get_by_label("Quantity", exact=True).fill(quantity)
        submit(desk, "/neutrality/items", re.compile(rf"{path}#step-account$"))

    # Then the account is complete with a lower and upper bound, one attendee extrapolated
    assert step_done(desk, "account")
    assert desk.locator("#extrapolated").is_visible()
    required = int(desk.locator("#required-kg").inner_text())
    assert required >= Decimal(desk.locator("#high-kg").inner_text().replace(",", ""))

    # And Verra credits are not offered for an event, with the rule's code
    assert desk.locator("#ineligible li[data-code=instrument_not_eligible]").count() >= 1
    assert desk.locator("#listing option[disabled]").count() >= 1

    # When they order the upper bound in new-forestry credits and pay in the sandbox
    forest = desk.locator("#listing option", has_text="CN-SC-FOREST-01").get_attribute("value")
    assert forest
    desk.locator("#listing").select_option(forest)
    assert desk.locator("input[name=kg]").input_value() == str(required)
    submit(desk, "/neutrality/offsets", re.compile(r"/orders/[^/]+$"))
    with desk.expect_navigation():
        desk.locator("#pay").click()
    with desk.expect_navigation():
        desk.locator("#approve").click()
    assert desk.locator("#certificate").is_visible()

    # Then the offset step is complete; no claim until the evaluation is recorded
    desk.goto(path)
    assert step_done(desk, "offset") and not step_done(desk, "evaluate")
    desk.locator("form[action$='/neutrality/evaluation'] select[name=kind]").select_option("third_party")
    desk.get_by_label("Evaluator's name").fill("Sichuan Verification Centre")
    desk.get_by_label("Report reference or evidence").fill("SVC-2026-118")
    submit(desk, "/neutrality/evaluation", re.compile(rf"{path}#step-evaluate$"))
    assert step_done(desk, "evaluate")
    desk.screenshot(path=tmp_path / "event-neutral.png", full_page=True)

    # And the public event page, on a phone, states the claim with its certificate and evaluator
    fit = PhoneFit(phone)
    phone.goto(f"/s/{slug}/neutrality")
    fit.check()
    phone.screenshot(path=tmp_path / "event-public.png", full_page=True)
    assert "碳中和" in phone.locator("#claim").inner_text()
    assert phone.locator("#offsets a[href^='/certificates/NZC-']").count() == 1
    assert "Sichuan Verification Centre" in phone.locator("#evaluation").inner_text()

    # And the organiser's PDF report downloads
    report = desk.context.request.get(f"/organiser/scenes/{slug}/report.pdf")
    assert report.status == 200 and report.body().startswith(b"%PDF")
    fit.assert_all_fit()
