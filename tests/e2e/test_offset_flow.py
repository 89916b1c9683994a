"""A guest on a phone, in a real browser: footprint, offset, sandbox payment, certificate, verify."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import PHONE

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

NAME = "张伟"
SERIAL = re.compile(r"[A-Z0-9][A-Z0-9-]{10,}[0-9]")
READ_PDF = """async (url) => {
    const response = await fetch(url);
    const bytes = new Uint8Array(await response.arrayBuffer());
    return [response.headers.get("content-type"), String.fromCharCode(...bytes.slice(0, 5)), bytes.length];
}"""


class TooWideForPhoneError(AssertionError):
    """A page of the flow needs horizontal scrolling on the phone."""


class PhoneFit:
    """Records every page of a flow that is wider than the phone; asserted once the flow is done,
    so a layout defect does not hide the functional checks that follow it."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.too_wide: list[str] = []

    def check(self) -> None:
        # A mobile browser widens its layout viewport (window.innerWidth) to fit a page that
        # overflows, so innerWidth alone would pass any page: it must also equal the screen's width.
        path, scroll_width, inner_width = self.page.evaluate(
            "() => [location.pathname, document.documentElement.scrollWidth, window.innerWidth]"
        )
        if not scroll_width <= inner_width == PHONE["width"]:
            self.too_wide.append(f"{path}: {scroll_width} px wide, window {inner_width} px")

    def assert_all_fit(self) -> None:
        if self.too_wide:
            raise TooWideForPhoneError(f"wider than a {PHONE['width']} px phone: " + "; ".join(self.too_wide))


def follow(page: Page, target: Locator, url: str | re.Pattern[str]) -> None:
    """Tap a link or a submit button and wait until the page it leads to has loaded."""
    with page.expect_navigation():
        target.tap()
    page.wait_for_url(url)


def calculate(page: Page, origin: str, destination: str) -> None:
    """Fill the calculator with a one-way economy flight and two hotel nights in China."""
    page.goto("/")
    page.get_by_label("From").fill(origin)
    page.get_by_label("To", exact=True).fill(destination)
    page.get_by_label("Cabin").select_option("economy")
    page.get_by_label("Country").fill("CN")
    page.get_by_label("Nights").fill("2")
    follow(page, page.get_by_role("button", name="Calculate"), re.compile(r"/$"))


def reserve(page: Page) -> None:
    """On the offset page: name the beneficiary and reserve; lands on the order page."""
    page.get_by_label("Name on the certificate").fill(NAME)
    follow(
        page, page.get_by_role("button", name=re.compile(r"^Reserve and pay")), re.compile(r"/orders/[^/]+$")
    )


def pay(page: Page, button: str) -> None:
    """From a pending order, through the sandbox checkout and back to the order."""
    order_url = page.url
    follow(page, page.locator("#pay"), re.compile(r"/sandbox/pay/[^/]+$"))
    assert "simulated" in page.locator("h1").inner_text()
    follow(page, page.locator(button), order_url)


def test_guest_on_a_phone_offsets_a_trip_and_verifies_the_certificate(phone: Page, tmp_path: Path) -> None:
    fit = PhoneFit(phone)
    # Given a guest on a phone with a flight PEK→CTU and two hotel nights in China
    calculate(phone, "PEK", "CTU")

    # Then each line shows its factor and source, and the lines add up to the total
    fit.check()
    lines = phone.locator("tbody tr")
    assert lines.count() == 2
    assert "flight" in lines.nth(0).inner_text().lower()
    assert "hotel" in lines.nth(1).inner_text().lower()
    kg = [Decimal(lines.nth(i).locator("td.num").inner_text()) for i in range(2)]
    assert all(value > 0 for value in kg)
    for i in range(2):
        factor = lines.nth(i).locator("td").nth(2).inner_text()
        assert re.search(r"[\d.]+ kg CO2e? / \w+", factor), factor
        assert "Licence" in factor, factor
    assert Decimal(phone.locator("#total").inner_text()) == sum(kg)

    # When they offset it
    follow(phone, phone.locator("#offset"), re.compile(r"/offset\?kg_co2e="))

    # Then the listings show their labels, a flagged one its reason, the price split and "simulated"
    fit.check()
    listings = phone.locator("tr.listing")
    assert listings.count() >= 3
    assert listings.locator(".label").count() >= listings.count()
    flagged = phone.locator("tr.listing[data-verdict=flag]")
    assert flagged.count() >= 1
    assert re.fullmatch(r"flag: \w.{10,}", flagged.first.locator(".problem").first.inner_text())
    assert flagged.locator("strong", has_text="chosen").count() == 0
    split = phone.locator("#split").inner_text()
    for part in ("Credits:", "Platform fee", "Tax on the fee", "Payment provider's fee", "You pay"):
        assert part in split
    assert "simulated" in phone.locator("form[action='/offset']").inner_text()

    # When they put a Chinese name on the certificate and reserve
    reserve(phone)

    # Then the order waits for a payment, with a link to the sandbox
    fit.check()
    assert phone.locator("#status").get_attribute("data-status") == "payment_pending"
    assert phone.locator("#status").inner_text() == "payment pending"
    assert NAME in phone.locator("body").inner_text()
    order_url = phone.url
    follow(phone, phone.locator("#pay"), re.compile(r"/sandbox/pay/[^/]+$"))

    # And the sandbox checkout says it is simulated; they approve
    fit.check()
    assert "simulated" in phone.locator("h1").inner_text()
    follow(phone, phone.locator("#approve"), order_url)

    # Then the order is certified, with a link to the certificate
    fit.check()
    assert phone.locator("#status[data-status=certified]").count() == 1
    follow(phone, phone.locator("#certificate"), re.compile(r"/certificates/[^/]+$"))

    # And the certificate carries the claims in both languages with the name, serials and a QR code
    fit.check()
    assert NAME in phone.locator("#claim-zh").inner_text()
    assert NAME in phone.locator("#claim-en").inner_text()
    serials = phone.locator("h2:text-is('Evidence') ~ ul code").all_inner_texts()
    assert serials, "no serial on the certificate"
    assert all(SERIAL.fullmatch(serial) for serial in serials), serials
    qr = phone.locator("svg")
    assert qr.count() == 1
    assert qr.locator("path, rect").count() >= 1
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 100 and box["height"] >= 100
    screenshot = tmp_path / "certificate.png"
    phone.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 10_000

    # When they follow Verify, the certificate verifies
    follow(phone, phone.locator("#verify"), re.compile(r"/verify/[^/]+$"))
    fit.check()
    assert phone.locator("#verdict[data-ok=true]").count() == 1

    # And every page of the flow fitted the phone
    fit.assert_all_fit()


def test_certificate_pdf_link_downloads_a_pdf(phone: Page) -> None:
    # Given a certified order for 12 kg
    phone.goto("/offset?kg_co2e=12")
    reserve(phone)
    pay(phone, "#approve")
    follow(phone, phone.locator("#certificate"), re.compile(r"/certificates/[^/]+$"))

    # When the guest taps the PDF link
    with phone.expect_response(re.compile(r"/pdf$")) as got:
        follow(phone, phone.get_by_role("link", name="PDF", exact=True), re.compile(r"/pdf$"))

    # Then the browser receives a PDF
    response = got.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'inline; filename="NZC-[\w-]+\.pdf"', response.headers["content-disposition"])
    # Chromium hands a PDF to its viewer, whose page replaces the body Playwright can read, so the
    # browser fetches the same address again to show the bytes.
    content_type, head, size = phone.evaluate(READ_PDF, response.url)
    assert content_type == "application/pdf"
    assert head == "%PDF-"
    assert size > 1_000


def test_declined_sandbox_payment_fails_the_order(phone: Page) -> None:
    # Given a pending order
    phone.goto("/offset?kg_co2e=12")
    reserve(phone)

    # When the sandbox payment is declined
    pay(phone, "#decline")

    # Then the order has failed, says so, and offers neither payment nor certificate
    assert phone.locator("#status[data-status=failed]").count() == 1
    assert phone.locator("#status").inner_text() == "failed"
    assert phone.locator("#pay").count() == 0
    assert phone.locator("#certificate").count() == 0


def test_unknown_airport_is_shown_with_its_code_and_nothing_to_offset(phone: Page) -> None:
    # When a guest asks for a flight from an airport that does not exist
    calculate(phone, "XXX", "CTU")

    # Then the problem is shown with its code, and there is no footprint to offset
    problem = phone.locator("[data-code=unknown_airport]")
    assert problem.count() == 1
    assert problem.is_visible()
    assert "origin" in problem.inner_text()
    assert phone.locator("#offset").count() == 0
