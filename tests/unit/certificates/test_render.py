"""The certificate renderings: the A4 PDF, its attachment and font, the QR codes and the share card."""

from __future__ import annotations

import io
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageChops, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject

from neutralize.certificates import render
from neutralize.certificates.render import (
    CARD_QR_BOX,
    CARD_SIZE_PX,
    FONT_INDEX,
    PDF_QR_RECT,
    cjk_font_path,
    qr_matrix,
    qr_png,
    qr_svg,
    render_pdf,
    render_share_card,
    signed_json_from_pdf,
)
from neutralize.core.errors import DomainError, ErrorCode
from tests.unit.certificates.conftest import RASTER_DPI, SIGNED_JSON, png, read_modules, view

URL = "https://verify.neutralize.example/verify/NZC-2026-000123"
LONG_CHINESE_NAME = ("张伟李娜王芳刘洋陈静" * 20)[:200]
LONG_LATIN_NAME = ("Maximiliana Alexandrina Featherstonehaugh-Cholmondeley " * 4)[:200]
Raster = Callable[[bytes], Image.Image]


def segno_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The reference: segno's own matrix for url, at the error level the renderer asks for."""
    return tuple(tuple(bool(cell) for cell in row) for row in segno.make_qr(url, error="m").matrix)


def page_text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


# ---------------------------------------------------------------------------------------------- PDF


def test_pdf_opens_as_one_a4_page_showing_number_holder_and_title(font_path: Path) -> None:
    # Given a retired certificate; when it is rendered
    reader = PdfReader(io.BytesIO(render_pdf(view())))
    # Then it is one A4 page (595.28 x 841.89 pt) with the number, holder and bilingual title on it
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert (round(float(box.width), 1), round(float(box.height), 1)) == (595.3, 841.9)
    text = reader.pages[0].extract_text()
    for shown in (
        "NZC-2026-000123",
        "张伟",
        "碳减排量注销证明",
        "Carbon credit retirement certificate",
        "340 kg CO2e",
        "CD-METRO",
        "no corresponding adjustment",
        URL,
        "nzk-2026-01",
    ):
        assert shown in text


def test_signed_json_round_trips_byte_exactly(font_path: Path) -> None:
    pdf = render_pdf(view())
    assert signed_json_from_pdf(pdf) == SIGNED_JSON
    names = PdfReader(io.BytesIO(pdf)).trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "certificate.json"
    assert names[1].get_object()["/EF"]["/F"].get_object()["/Subtype"] == "/application/json"


def test_poppler_finds_the_same_attachment(font_path: Path, pdfdetach: str, tmp_path: Path) -> None:
    # A second, independent PDF reader sees one attachment with the same bytes
    source = tmp_path / "certificate.pdf"
    source.write_bytes(render_pdf(view()))
    listing = subprocess.run([pdfdetach, "-list", str(source)], check=True, capture_output=True, text=True)
    assert listing.stdout.splitlines() == ["1 embedded files", "1: certificate.json"]
    saved = tmp_path / "saved.json"
    subprocess.run([pdfdetach, "-save", "1", "-o", str(saved), str(source)], check=True, timeout=60)
    assert saved.read_bytes() == SIGNED_JSON


def test_pdf_without_the_attachment_is_unreadable() -> None:
    # Given a valid PDF with no attachment, one with another attachment, and bytes that are no PDF
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    bare = io.BytesIO()
    writer.write(bare)
    writer.add_attachment("other.json", b"{}")
    other = io.BytesIO()
    writer.write(other)
    for pdf in (bare.getvalue(), other.getvalue(), b"not a pdf", b""):
        # When the certificate JSON is read back, then the code says the certificate is unreadable
        with pytest.raises(DomainError) as caught:
            signed_json_from_pdf(pdf)
        assert caught.value.code == ErrorCode.CERTIFICATE_UNREADABLE


def test_font_is_embedded_as_a_subset(font_path: Path) -> None:
    # Given a certificate PDF; when its font objects are inspected
    fonts = PdfReader(io.BytesIO(render_pdf(view()))).pages[0]["/Resources"]["/Font"]
    assert fonts, "the page uses no font"
    for reference in fonts.values():
        font = reference.get_object()
        assert isinstance(font, DictionaryObject)
        # Then every font is a TrueType subset (tag "ABCDEF+" per ISO 32000 §9.6.4) with its
        # outlines embedded, far smaller than the 5 MB font file
        assert font["/Subtype"] == "/TrueType"
        assert re.fullmatch(r"/[A-Z]{6}\+.+", font["/BaseFont"]), font["/BaseFont"]
        program = font["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
        assert 1_000 < len(program) < 200_000 < font_path.stat().st_size


def test_pdf_is_small_and_the_same_bytes_every_time(font_path: Path) -> None:
    first, second = render_pdf(view()), render_pdf(view())
    assert first == second
    assert len(first) < 100_000


def test_pdf_qr_code_reads_back_as_the_verify_url(font_path: Path, rasterise: Raster) -> None:
    # Given the page rasterised by poppler; when the QR code's area (plus quiet zone) is read
    page = rasterise(render_pdf(view()))
    x, y, side = PDF_QR_RECT
    scale, quiet = RASTER_DPI / 72, 4 * side / len(qr_matrix(URL))
    top = page.height - (y + side + quiet) * scale
    crop = page.crop(
        (
            round((x - quiet) * scale),
            round(top),
            round((x + side + quiet) * scale),
            round(page.height - (y - quiet) * scale),
        )
    )
    # Then its modules are segno's for the verify URL, and not those of another URL
    modules = read_modules(crop)
    assert modules == segno_matrix(URL)
    assert modules != segno_matrix(URL.replace("000123", "000124"))


def _ink(image: Image.Image) -> Image.Image:
    """The tight box around dark pixels, scaled to a fixed size for comparison."""
    box = image.point(lambda value: 255 if value < 160 else 0).getbbox()
    assert box is not None, "no ink"
    return image.crop(box).resize((64, 32), Image.Resampling.BILINEAR)


def _likeness(a: Image.Image, b: Image.Image) -> float:
    """Normalised correlation of two same-size grey images: 1 is identical, 0 unrelated."""
    xs, ys = a.tobytes(), b.tobytes()
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((p - mean_x) * (q - mean_y) for p, q in zip(xs, ys, strict=True))
    var_x = sum((p - mean_x) ** 2 for p in xs)
    var_y = sum((q - mean_y) ** 2 for q in ys)
    return float(cov / (var_x * var_y) ** 0.5)


def _pillow_text(text: str, font_path: Path, size_px: int) -> Image.Image:
    font = ImageFont.truetype(str(font_path), size_px, index=FONT_INDEX)
    image = Image.new("L", (size_px * (len(text) + 2), size_px * 3), 255)
    ImageDraw.Draw(image).text((size_px, size_px), text, font=font, fill=0)
    return image


def test_chinese_holder_name_is_drawn_as_its_glyphs(font_path: Path, rasterise: Raster) -> None:
    # Given the same certificate for two holders with different Chinese names
    zhang = rasterise(render_pdf(view(holder_name="张伟")))
    li = rasterise(render_pdf(view(holder_name="李娜")))
    # When the pages are compared: the pixels that differ are where the holder's name is drawn
    changed = ImageChops.difference(zhang, li).point(lambda value: 255 if value > 64 else 0)
    box = changed.getbbox()
    # Then the names left different ink (missing glyphs would draw both as blanks or the same boxes)
    assert box is not None and changed.histogram()[255] > 40, "the two names drew the same pixels"
    # And the ink looks like Pillow's rendering of "张伟" with the same font, more than like "李娜"
    drawn = _ink(zhang.crop(box))
    size_px = round(12 * RASTER_DPI / 72)  # the holder's name is set at 12 pt
    like_zhang = _likeness(drawn, _ink(_pillow_text("张伟", font_path, size_px)))
    like_li = _likeness(drawn, _ink(_pillow_text("李娜", font_path, size_px)))
    like_tofu = _likeness(drawn, _ink(_pillow_text("\U0010fffd\U0010fffd", font_path, size_px)))
    assert like_zhang > 0.75 and like_zhang > like_li + 0.1 and like_zhang > like_tofu + 0.1, (
        like_zhang,
        like_li,
        like_tofu,
    )


@pytest.mark.parametrize("holder", [LONG_CHINESE_NAME, LONG_LATIN_NAME])
def test_long_names_and_pending_status_render(font_path: Path, holder: str) -> None:
    # Given a pending certificate for a 200-character name with a hundred evidence lines
    evidence = [f"line {i} " + "x" * 90 for i in range(100)]
    pending = view(status="pending", holder_name=holder, evidence=evidence)
    # When both renderings are made
    pdf = render_pdf(pending)
    pages = PdfReader(io.BytesIO(pdf)).pages
    # Then page 1 marks the status plainly and keeps the QR code's URL; no evidence line is lost
    first = pages[0].extract_text()
    assert "PENDING / 待注销" in first and "NZC-2026-000123" in first and URL in first
    assert holder[:20] in first
    assert len(pages) > 1 and "line 99 " in pages[-1].extract_text()
    assert signed_json_from_pdf(pdf) == SIGNED_JSON
    assert png(render_share_card(pending)).size == CARD_SIZE_PX


def test_retired_certificate_has_no_pending_marker_and_no_neutrality_wording(font_path: Path) -> None:
    text = page_text(render_pdf(view())).lower()
    assert "retired / 已注销" in text
    assert "pending" not in text and "待注销" not in text
    assert "carbon neutral" not in text and "碳中和" not in text


def test_views_that_cannot_be_drawn_honestly_are_refused(font_path: Path) -> None:
    bad_views = [
        view(status="cancelled"),
        view(holder_name="x" * 201),
        view(holder_name=""),
        view(kilograms=0),
        view(claim={"en": "only English"}),
        view(issued_at="25 January 2026"),
        view(issued_at="2026-01-25T10:30:00"),
        view(signed_json=b"x" * (render.MAX_SIGNED_JSON_BYTES + 1)),
    ]
    for bad in bad_views:
        with pytest.raises(DomainError) as caught:
            render_pdf(bad)
        assert caught.value.code == ErrorCode.INVALID_REQUEST


# ---------------------------------------------------------------------------------------------- font


def test_missing_font_names_the_package_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(render, "FONT_CANDIDATES", (tmp_path / "absent.ttc",))
    with pytest.raises(DomainError) as caught:
        cjk_font_path()
    assert caught.value.code == ErrorCode.FONT_MISSING
    assert "fonts-wqy-microhei" in caught.value.message
    with pytest.raises(DomainError) as caught:
        render_pdf(view())
    assert caught.value.code == ErrorCode.FONT_MISSING


def test_a_file_that_is_no_truetype_font_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.ttf"
    fake.write_bytes(b"this is not a font" * 10)
    for draw in (render_pdf, render_share_card):
        with pytest.raises(DomainError) as caught:
            draw(view(), font_path=fake)
        assert caught.value.code == ErrorCode.FONT_MISSING


# ---------------------------------------------------------------------------------------------- QR


@pytest.mark.parametrize("scale", [1, 3, 8])
def test_qr_png_reads_back_as_the_url(scale: int) -> None:
    image = png(qr_png(URL, scale=scale))
    size = len(segno_matrix(URL))
    assert image.size == ((size + 8) * scale, (size + 8) * scale)
    assert read_modules(image) == segno_matrix(URL)


def test_qr_svg_is_a_standalone_svg_of_the_right_size() -> None:
    root = ET.fromstring(qr_svg(URL))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == str((len(segno_matrix(URL)) + 8) * 4)


def test_qr_png_refuses_absurd_scales() -> None:
    for scale in (0, render.MAX_QR_SCALE + 1):
        with pytest.raises(DomainError) as caught:
            qr_png(URL, scale=scale)
        assert caught.value.code == ErrorCode.INVALID_REQUEST


# ---------------------------------------------------------------------------------------------- card


def test_share_card_is_a_png_of_the_stated_size_with_a_readable_qr_code(font_path: Path) -> None:
    image = png(render_share_card(view()))
    assert (image.format, image.size) == ("PNG", CARD_SIZE_PX) == ("PNG", (1080, 1350))
    assert read_modules(image.crop(CARD_QR_BOX)) == segno_matrix(URL)


def test_share_card_shows_the_chinese_name(font_path: Path) -> None:
    # Two holders, same everything else: the cards differ, so the name's glyphs were drawn
    zhang = png(render_share_card(view(holder_name="张伟"))).convert("L")
    li = png(render_share_card(view(holder_name="李娜"))).convert("L")
    assert ImageChops.difference(zhang, li).getbbox() is not None


# ---------------------------------------------------------------------------------------------- wrapping


def _widths(char: str) -> float:
    return 2.0 if render._is_wide(char) else 1.0


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("张伟已出资注销碳信用", 8, ["张伟已出", "资注销碳", "信用"]),
        ("hello wonderful world", 12, ["hello", "wonderful", "world"]),
        ("张伟已出资。然后", 10, ["张伟已出", "资。然后"]),
        ("a\nb", 10, ["a", "b"]),
    ],
)
def test_wrapping(text: str, width: float, lines: list[str]) -> None:
    assert render._wrap(text, width, _widths) == lines
