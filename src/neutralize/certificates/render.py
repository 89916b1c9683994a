"""Certificates drawn for people: a bilingual A4 PDF and a PNG share card, each with a QR code.

The signed certificate document travels inside the PDF as the attachment ``certificate.json``, so
a PDF that was downloaded, mailed or archived can still be checked without our servers. Both
renderings use one CJK TrueType font, loaded once per process: ReportLab embeds only the glyphs a
certificate uses (a subset), Pillow rasterises the same outlines for the card.
"""

from __future__ import annotations

import io
import unicodedata
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import segno
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream, PDFString, PDFZCompress
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas

from neutralize.core.errors import DomainError, ErrorCode

# The Debian package that ships the font, and where it puts it. Its outlines are TrueType (glyf),
# which ReportLab can subset; CFF-flavoured OpenType fonts such as Noto Sans CJK it cannot.
FONT_PACKAGE = "fonts-wqy-microhei"
FONT_CANDIDATES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),)
# Index 0 of the collection is the proportional WenQuanYi Micro Hei; index 1 is its monospaced twin.
FONT_INDEX = 0

ATTACHMENT_NAME = "certificate.json"
STATUSES = ("retired", "pending")
LANGUAGES = ("zh", "en")

MAX_HOLDER_CHARS = 200
MAX_TEXT_CHARS = 2_000
MAX_LIST_ITEMS = 100
MAX_URL_CHARS = 512
MAX_SIGNED_JSON_BYTES = 1 << 20
MAX_PDF_BYTES = 16 << 20
MAX_QR_SCALE = 40

TITLE_ZH = "碳减排量注销证明"
TITLE_EN = "Carbon credit retirement certificate"

PAGE_WIDTH_PT, PAGE_HEIGHT_PT = float(A4[0]), float(A4[1])
MARGIN_PT = 48.0
# Where the QR code sits on the page: x and y of its lower-left corner and its side, in points,
# quiet zone excluded (the page around it stays white).
PDF_QR_RECT = (PAGE_WIDTH_PT - MARGIN_PT - 112.0, 92.0, 112.0)
FOOTER_TOP_PT = 222.0

CARD_SIZE_PX = (1080, 1350)
CARD_MARGIN_PX = 72
# Where the QR code sits on the card, quiet zone included: left, top, right, bottom in pixels.
CARD_QR_BOX = (CARD_MARGIN_PX, 1040, CARD_MARGIN_PX + 264, 1304)

INK = (0.11, 0.13, 0.12)
MUTED = (0.40, 0.43, 0.42)
GREEN = (0.03, 0.36, 0.23)
RED = (0.76, 0.09, 0.09)
WATERMARK_RED = (0.98, 0.88, 0.88)


@dataclass(frozen=True, slots=True)
class CertificateView:
    """Everything a rendering shows, already worded; rendering adds no facts of its own."""

    number: str
    status: str
    holder_name: str
    kilograms: int
    claim: Mapping[str, str]
    offsets: Mapping[str, str]
    project_name: str
    project_code: str
    standard: str
    vintage: str
    labels: Sequence[str]
    evidence: Sequence[str]
    issued_at: str
    key_id: str
    verify_url: str
    signed_json: bytes


# ----------------------------------------------------------------------------------------------
# Font


def cjk_font_path() -> Path:
    """The CJK TrueType font both renderings use; FONT_MISSING names the package to install."""
    for path in FONT_CANDIDATES:
        if path.is_file():
            return path
    raise _font_missing(f"no CJK font at {', '.join(map(str, FONT_CANDIDATES))}")


def _font_missing(why: str) -> DomainError:
    return DomainError(
        code=ErrorCode.FONT_MISSING,
        message=f"{why}: install the Debian package {FONT_PACKAGE} "
        f"(apt-get install -y --no-install-recommends {FONT_PACKAGE}, or make system-deps)",
    )


def _resolve_font(font_path: Path | None) -> Path:
    path = cjk_font_path() if font_path is None else font_path
    if not path.is_file():
        raise _font_missing(f"no font file at {path}")
    return path


@cache
def pdf_font(path: Path) -> str:
    """Parse and register the font with ReportLab once per process; return its registered name."""
    name = f"NeutralizeCJK-{zlib.crc32(str(path).encode()):08x}"
    index = FONT_INDEX if path.suffix.lower() == ".ttc" else 0
    try:
        pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=index))
    except (TTFError, OSError) as error:
        raise _font_missing(f"{path} is not a usable TrueType font ({error})") from error
    return name


@lru_cache(maxsize=32)
def _card_font(path: Path, size_px: int) -> ImageFont.FreeTypeFont:
    index = FONT_INDEX if path.suffix.lower() == ".ttc" else 0
    try:
        return ImageFont.truetype(str(path), size_px, index=index)
    except OSError as error:
        raise _font_missing(f"{path} is not a usable TrueType font ({error})") from error


@lru_cache(maxsize=16_384)
def _pdf_char_em(font: str, char: str) -> float:
    """Advance width of one character at 1 pt; ReportLab applies no kerning, so widths add up."""
    return float(pdfmetrics.stringWidth(char, font, 1000.0)) / 1000.0


# ----------------------------------------------------------------------------------------------
# Checking the view


def _check(view: CertificateView) -> None:
    """Refuse views that cannot be drawn honestly, before any drawing starts."""
    texts = [view.number, view.project_name, view.project_code, view.standard, view.vintage, view.key_id]
    texts += [*view.labels, *view.evidence]
    texts += [view.claim.get(lang, "") for lang in LANGUAGES]
    texts += [view.offsets.get(lang, "") for lang in LANGUAGES]
    failures = [
        (view.status not in STATUSES, f"status must be one of {', '.join(STATUSES)}"),
        (not 0 < len(view.holder_name) <= MAX_HOLDER_CHARS, f"holder name: 1 to {MAX_HOLDER_CHARS} chars"),
        (isinstance(view.kilograms, bool) or view.kilograms <= 0, "kilograms must be a positive integer"),
        (any(not view.claim.get(lang) for lang in LANGUAGES), "claim needs both zh and en wording"),
        (any(not view.offsets.get(lang) for lang in LANGUAGES), "offsets needs both zh and en wording"),
        (any(len(text) > MAX_TEXT_CHARS for text in texts), f"texts are limited to {MAX_TEXT_CHARS} chars"),
        (max(len(view.labels), len(view.evidence)) > MAX_LIST_ITEMS, f"at most {MAX_LIST_ITEMS} items"),
        (not 0 < len(view.verify_url) <= MAX_URL_CHARS, f"verify URL: 1 to {MAX_URL_CHARS} chars"),
        (len(view.signed_json) > MAX_SIGNED_JSON_BYTES, f"signed JSON over {MAX_SIGNED_JSON_BYTES} bytes"),
    ]
    for failed, message in failures:
        if failed:
            raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"certificate view: {message}")
    _issued_at(view.issued_at)


def _issued_at(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="issued_at is not ISO 8601") from error
    if moment.tzinfo is None:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="issued_at needs a UTC offset")
    return moment.astimezone(UTC)


# ----------------------------------------------------------------------------------------------
# Text layout shared by both renderings


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _wrap(text: str, max_width: float, char_width: Callable[[str], float]) -> list[str]:
    """Greedy line breaking: CJK may break between any two characters, Latin words stay whole."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line, width = "", 0.0
        for char in paragraph:
            advance = char_width(char)
            if line and width + advance > max_width:
                head, line = _break(line, char)
                lines.append(head)
                width = sum(map(char_width, line))
            if line or not char.isspace():
                line, width = line + char, width + advance
        lines.append(line)
    return lines


# Closing punctuation never starts a line in Chinese typesetting: the character before it moves down too.
_NO_LINE_START = frozenset("，。、；：！？）」』》〉】”’…,.;:!?)]}")


def _break(line: str, next_char: str) -> tuple[str, str]:
    """Split a full line; inside a Latin word, carry the word's start over to the next line."""
    cut = line.rfind(" ")
    mid_word = not (next_char.isspace() or _is_wide(next_char) or _is_wide(line[-1]))
    if mid_word and cut > 0:
        return line[:cut].rstrip(), line[cut + 1 :]
    if next_char in _NO_LINE_START and len(line) > 1 and not line[-1].isspace():
        return line[:-1], line[-1]
    return line.rstrip(), ""


def _clip(lines: list[str], max_lines: int) -> list[str]:
    """Keep at most max_lines; an ellipsis shows that the rest was cut."""
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = kept[-1][:-1].rstrip() + "…"
    return kept


def _kg_text(kilograms: int) -> str:
    return f"{kilograms:,} kg CO2e"


def _status_text(status: str) -> str:
    return "PENDING / 待注销" if status == "pending" else "RETIRED / 已注销"


PENDING_NOTE = "原登记系统的注销尚未记录 / Retirement in the home registry not yet recorded"


# ----------------------------------------------------------------------------------------------
# QR codes


@lru_cache(maxsize=256)
def _qr(url: str) -> segno.QRCode:
    # Level M survives a crease or a smudge on paper and still fits a verify URL in version 4.
    return segno.make_qr(url, error="m")


def qr_matrix(url: str) -> tuple[tuple[bool, ...], ...]:
    """The QR code's modules for url, row by row, dark = True, without the quiet zone."""
    return tuple(tuple(bool(cell) for cell in row) for row in _qr(url).matrix)


def qr_png(url: str, *, scale: int = 8) -> bytes:
    """The QR code for url as a black-on-white PNG, scale pixels per module, 4-module quiet zone."""
    if not 1 <= scale <= MAX_QR_SCALE or not 0 < len(url) <= MAX_URL_CHARS:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="QR: bad scale or URL length")
    out = io.BytesIO()
    _qr(url).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(url: str) -> bytes:
    """The QR code for url as a standalone SVG document (UTF-8), 4-module quiet zone."""
    if not 0 < len(url) <= MAX_URL_CHARS:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message="QR: bad URL length")
    out = io.BytesIO()
    _qr(url).save(out, kind="svg", scale=4, border=4, title="Verify")
    return out.getvalue()


# ----------------------------------------------------------------------------------------------
# PDF


class _Pen:
    """A top-down cursor over the pages: wraps text, and turns the page above the bottom margin.

    Page 1 keeps its footer (times, key, QR code) clear; a long certificate (a 200-character name,
    many evidence lines) continues on further pages rather than losing lines.
    """

    def __init__(self, canvas: Any, font: str, top: float, bottom: float, turn: Callable[[], float]) -> None:
        self.canvas, self.font, self.y, self.bottom, self.turn = canvas, font, top, bottom, turn
        self.page = 1

    def width_of(self, size: float) -> Callable[[str], float]:
        return lambda char: _pdf_char_em(self.font, char) * size

    def room(self, height: float) -> None:
        """Turn the page unless height points fit above the bottom margin."""
        if self.y - height < self.bottom:
            self.y, self.bottom = self.turn(), MARGIN_PT
            self.page += 1

    def text(
        self,
        text: str,
        *,
        size: float,
        max_lines: int,
        x: float = MARGIN_PT,
        width: float = PAGE_WIDTH_PT - 2 * MARGIN_PT,
        color: tuple[float, ...] = INK,
    ) -> None:
        """Draw text wrapped to width, at most max_lines, each line size * 1.4 below the last."""
        for line in _clip(_wrap(text, width, self.width_of(size)), max_lines):
            self.room(size * 1.4)
            self.y -= size * 1.4
            # A turned page starts with ReportLab's default state, so style every line.
            self.canvas.setFillColorRGB(*color)
            self.canvas.setFont(self.font, size)
            self.canvas.drawString(x, self.y, line)

    def field(self, label: str, value: str, *, size: float = 10.5, max_lines: int = 3) -> None:
        """A label in the left column and its value, wrapped, in the right one."""
        self.room(2 * size * 1.4)  # the label (two short lines at most) never turns the page alone
        top, page = self.y, self.page
        self.text(label, size=8.5, max_lines=2, width=118.0, color=MUTED)
        label_bottom, self.y = self.y, top
        self.text(
            value,
            size=size,
            max_lines=max_lines,
            x=MARGIN_PT + 124.0,
            width=PAGE_WIDTH_PT - 2 * MARGIN_PT - 124.0,
        )
        self.y = (min(self.y, label_bottom) if self.page == page else self.y) - 3.0

    def section(self, title: str) -> None:
        self.y -= 8.0
        self.room(11.5 * 1.4 + 3 * 14.0)  # a heading never sits alone at the foot of a page
        self.text(title, size=11.5, max_lines=1, color=GREEN)
        self.canvas.setStrokeColorRGB(*GREEN)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN_PT, self.y - 4.0, PAGE_WIDTH_PT - MARGIN_PT, self.y - 4.0)
        self.y -= 4.0


def render_pdf(view: CertificateView, *, font_path: Path | None = None) -> bytes:
    """The certificate as an A4 PDF in Chinese and English, certificate.json attached.

    One page for any ordinary certificate; very long names or evidence continue on further pages.
    """
    _check(view)
    font = pdf_font(_resolve_font(font_path))
    out = io.BytesIO()
    # PDF 1.7 for the attachment's /UF (a Unicode file name); the rest needs no more than 1.3.
    canvas = Canvas(out, pagesize=A4, invariant=1, initialFontName=font, pageCompression=1, pdfVersion=(1, 7))
    _pdf_metadata(canvas, view)
    _pdf_page_start(canvas, font, view)
    _pdf_footer(canvas, font, view)
    pen = _Pen(
        canvas, font, PAGE_HEIGHT_PT - MARGIN_PT + 8.0, FOOTER_TOP_PT, lambda: _pdf_turn(canvas, font, view)
    )
    _pdf_header(pen, view)
    _pdf_body(pen, view)
    _attach(canvas, ATTACHMENT_NAME, view.signed_json)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _pdf_page_start(canvas: Any, font: str, view: CertificateView) -> None:
    if view.status == "pending":
        _pdf_watermark(canvas, font)


def _pdf_turn(canvas: Any, font: str, view: CertificateView) -> float:
    """Start a continuation page headed by the number; return where its text begins."""
    canvas.showPage()
    _pdf_page_start(canvas, font, view)
    canvas.setFillColorRGB(*MUTED)
    canvas.setFont(font, 9)
    top = PAGE_HEIGHT_PT - MARGIN_PT
    canvas.drawString(MARGIN_PT, top, f"{TITLE_ZH} / {TITLE_EN} {view.number} (续 / continued)")
    return top - 12.0


def _pdf_metadata(canvas: Any, view: CertificateView) -> None:
    issued = _issued_at(view.issued_at)
    # Stamp the certificate's issue time, not the render time: the same certificate renders to the
    # same bytes every time (with invariant=1), which keeps downloads cacheable and comparable.
    stamp = f"D:{issued:%Y%m%d%H%M%S}Z"
    canvas.setDateFormatter(lambda *_: stamp)
    canvas.setTitle(f"{TITLE_ZH} / {TITLE_EN} {view.number}")
    canvas.setSubject(view.verify_url)
    canvas.setAuthor("Neutralize")
    canvas.setCreator("Neutralize")


def _pdf_watermark(canvas: Any, font: str) -> None:
    # Drawn first, so everything else lies on top; pale enough to leave the QR code scannable.
    canvas.saveState()
    canvas.setFillColorRGB(*WATERMARK_RED)
    canvas.setFont(font, 64)
    canvas.translate(PAGE_WIDTH_PT / 2, PAGE_HEIGHT_PT / 2)
    canvas.rotate(35)
    canvas.drawCentredString(0, 0, "待注销 PENDING")
    canvas.restoreState()


def _pdf_header(pen: _Pen, view: CertificateView) -> None:
    top = pen.y
    pen.text(TITLE_ZH, size=22, max_lines=1, color=GREEN)
    pen.text(TITLE_EN, size=13, max_lines=1, color=GREEN)
    _pdf_badge(pen.canvas, pen.font, view.status, top)
    if view.status == "pending":
        pen.text(PENDING_NOTE, size=9, max_lines=2, color=RED)
    pen.y -= 10.0


def _pdf_badge(canvas: Any, font: str, status: str, top: float) -> None:
    color = RED if status == "pending" else GREEN
    text = _status_text(status)
    width = pdfmetrics.stringWidth(text, font, 11) + 20.0
    x, y = PAGE_WIDTH_PT - MARGIN_PT - width, top - 34.0
    canvas.setStrokeColorRGB(*color)
    canvas.setFillColorRGB(*color)
    canvas.setLineWidth(1.5)
    canvas.roundRect(x, y, width, 24.0, 4.0, stroke=1, fill=0)
    canvas.setFont(font, 11)
    canvas.drawString(x + 10.0, y + 8.0, text)


def _pdf_body(pen: _Pen, view: CertificateView) -> None:
    pen.field("证书编号 / Certificate no.", view.number, size=12, max_lines=1)
    pen.field("持有人 / Holder", view.holder_name, size=12, max_lines=8)
    pen.field("数量 / Quantity", f"{view.kilograms:,} 千克二氧化碳当量 / {_kg_text(view.kilograms)}", size=12)
    pen.field("状态 / Status", _status_text(view.status), max_lines=1)
    pen.section("声明 / Claim")
    pen.text(view.claim["zh"], size=10.5, max_lines=4)
    pen.text(view.claim["en"], size=10.5, max_lines=4)
    pen.section("对应排放 / What it offsets")
    pen.text(view.offsets["zh"], size=10, max_lines=3)
    pen.text(view.offsets["en"], size=10, max_lines=3)
    pen.section("项目 / Project")
    pen.field("名称 / Name", view.project_name, max_lines=2)
    pen.field("代码 / Code", view.project_code, max_lines=1)
    pen.field("标准 / Standard", view.standard, max_lines=2)
    pen.field("年份 / Vintage", view.vintage, max_lines=1)
    pen.field("标签 / Labels", " · ".join(view.labels) or "—", max_lines=3)
    pen.section("证据 / Evidence")
    for line in view.evidence:
        pen.text(line, size=8, max_lines=3, color=MUTED)


def _pdf_footer(canvas: Any, font: str, view: CertificateView) -> None:
    pen = _Pen(canvas, font, FOOTER_TOP_PT - 6.0, 0.0, lambda: FOOTER_TOP_PT)
    text_width = PDF_QR_RECT[0] - MARGIN_PT - 24.0
    canvas.setStrokeColorRGB(*MUTED)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_PT, FOOTER_TOP_PT, PAGE_WIDTH_PT - MARGIN_PT, FOOTER_TOP_PT)
    pen.text(f"签发时间 / Issued (UTC): {view.issued_at}", size=9, max_lines=1, width=text_width)
    pen.text(f"签名密钥 / Signing key: {view.key_id}", size=9, max_lines=2, width=text_width)
    pen.y -= 6.0
    pen.text(
        "已签名的证书数据作为附件 certificate.json 嵌入本文件，可离线核验。 The signed certificate is "
        "attached to this file as certificate.json and can be checked offline.",
        size=8,
        max_lines=4,
        width=text_width,
        color=MUTED,
    )
    pen.text(
        "扫描二维码或访问下方网址核验 / Scan the QR code or visit the address below to verify.",
        size=8,
        max_lines=2,
        width=text_width,
        color=MUTED,
    )
    _pdf_qr(canvas, qr_matrix(view.verify_url))
    _pdf_url(canvas, font, view.verify_url)


def _pdf_qr(canvas: Any, matrix: tuple[tuple[bool, ...], ...]) -> None:
    """Draw the modules as vector rectangles, one per horizontal run: crisp at any zoom, tiny."""
    x0, y0, side = PDF_QR_RECT
    module = side / len(matrix)
    path = canvas.beginPath()
    for row_index, row in enumerate(matrix):
        y = y0 + side - (row_index + 1) * module
        column = 0
        while column < len(row):
            run = _run_length(row, column)
            if row[column]:
                path.rect(x0 + column * module, y, run * module, module)
            column += run
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)


def _run_length(row: tuple[bool, ...], start: int) -> int:
    end = start
    while end < len(row) and row[end] == row[start]:
        end += 1
    return end - start


def _pdf_url(canvas: Any, font: str, url: str) -> None:
    # Right-aligned under the QR code; a long URL wraps onto a second line rather than overflowing.
    size, right = 7.5, PAGE_WIDTH_PT - MARGIN_PT
    lines = _clip(_wrap(url, 250.0, lambda char: _pdf_char_em(font, char) * size), 2)
    canvas.setFillColorRGB(*INK)
    canvas.setFont(font, size)
    for index, line in enumerate(lines):
        canvas.drawRightString(right, PDF_QR_RECT[1] - 26.0 - index * size * 1.3, line)


def _attach(canvas: Any, name: str, data: bytes) -> None:
    """Embed data as a document-level file attachment (PDF 1.7 §7.11.4), which pypdf can read."""
    document = canvas._doc  # ReportLab has no public API for embedded files; its object model does
    stream = PDFStream(
        PDFDictionary(
            {
                "Type": PDFName("EmbeddedFile"),
                # A name written as-is: PDFName would escape the "#" that stands for the "/" here.
                "Subtype": "/application#2Fjson",
                "Params": PDFDictionary({"Size": len(data)}),
            }
        ),
        content=data,
        filters=[PDFZCompress],
    )
    spec = PDFDictionary(
        {
            "Type": PDFName("Filespec"),
            "F": PDFString(name),
            "UF": PDFString(name),
            "Desc": PDFString("Signed certificate"),
            "AFRelationship": PDFName("Source"),
            "EF": PDFDictionary({"F": document.Reference(stream)}),
        }
    )
    files = PDFDictionary({"Names": PDFArray([PDFString(name), document.Reference(spec)])})
    canvas.setCatalogEntry("Names", PDFDictionary({"EmbeddedFiles": files}))


def signed_json_from_pdf(pdf: bytes) -> bytes:
    """The certificate.json attached to a certificate PDF, byte for byte; CERTIFICATE_UNREADABLE if absent."""
    if len(pdf) > MAX_PDF_BYTES:
        raise _unreadable(f"the PDF is larger than {MAX_PDF_BYTES} bytes")
    try:
        found = PdfReader(io.BytesIO(pdf)).attachments.get(ATTACHMENT_NAME)
    # pypdf reports malformed files through its own errors and, for some damage, plain lookups.
    except (PyPdfError, ValueError, KeyError, IndexError, TypeError) as error:
        raise _unreadable(f"the PDF cannot be read ({error})") from error
    if not found:
        raise _unreadable(f"the PDF has no {ATTACHMENT_NAME} attachment")
    if len(found) != 1:
        raise _unreadable(f"the PDF has {len(found)} attachments named {ATTACHMENT_NAME}")
    return found[0]


def _unreadable(message: str) -> DomainError:
    return DomainError(code=ErrorCode.CERTIFICATE_UNREADABLE, message=message)


# ----------------------------------------------------------------------------------------------
# Share card


@dataclass(slots=True)
class _Card:
    """A top-down cursor over the card image."""

    draw: ImageDraw.ImageDraw
    font_path: Path
    y: int

    def text(
        self,
        text: str,
        *,
        size: int,
        max_lines: int,
        fill: str = "#1c211f",
        x: int = CARD_MARGIN_PX,
        width: int = CARD_SIZE_PX[0] - 2 * CARD_MARGIN_PX,
    ) -> None:
        font = _card_font(self.font_path, size)
        for line in _clip(_wrap(text, width, _card_width(self.font_path, size)), max_lines):
            self.draw.text((x, self.y), line, font=font, fill=fill)
            self.y += round(size * 1.3)


@lru_cache(maxsize=32)
def _card_width(font_path: Path, size: int) -> Callable[[str], float]:
    font = _card_font(font_path, size)
    return lru_cache(maxsize=4_096)(font.getlength)


def render_share_card(view: CertificateView, *, font_path: Path | None = None) -> bytes:
    """A 1080 x 1350 PNG for sharing: holder, kg, short claim, project and a QR code to verify."""
    _check(view)
    path = _resolve_font(font_path)
    image = Image.new("RGB", CARD_SIZE_PX, "white")
    card = _Card(ImageDraw.Draw(image), path, 0)
    _card_header(card, view)
    _card_body(card, view)
    _card_qr(image, view.verify_url)
    card.y = CARD_QR_BOX[1] + 40
    right_x = CARD_QR_BOX[2] + 36
    right_width = CARD_SIZE_PX[0] - CARD_MARGIN_PX - right_x
    card.text("扫码核验 / verify at", size=30, max_lines=1, x=right_x, width=right_width, fill="#5f6b66")
    card.text(view.verify_url, size=28, max_lines=4, x=right_x, width=right_width, fill="#085c3a")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _card_header(card: _Card, view: CertificateView) -> None:
    card.draw.rectangle((0, 0, CARD_SIZE_PX[0], 300), fill="#085c3a")
    card.y = 64
    card.text(TITLE_ZH, size=60, max_lines=1, fill="white")
    card.text(TITLE_EN, size=36, max_lines=1, fill="white")
    card.y += 12
    card.text(view.number, size=30, max_lines=1, fill="#cfe6da")
    if view.status == "pending":
        card.draw.rectangle((0, 300, CARD_SIZE_PX[0], 372), fill="#c21717")
        card.y = 318
        card.text(f"{_status_text(view.status)} · 原登记系统注销尚未记录", size=30, max_lines=1, fill="white")


def _card_body(card: _Card, view: CertificateView) -> None:
    card.y = 400
    card.text("持有人 / Holder", size=28, max_lines=1, fill="#5f6b66")
    card.text(view.holder_name, size=54, max_lines=2)
    card.y += 10
    card.text(_kg_text(view.kilograms), size=104, max_lines=1, fill="#085c3a")
    card.y += 6
    card.text(view.claim["zh"], size=30, max_lines=2)
    card.text(view.claim["en"], size=28, max_lines=2)
    card.y += 12
    card.text(f"项目 / Project: {view.project_name}", size=28, max_lines=1, fill="#5f6b66")
    card.text(f"{view.project_code} · {view.standard} · {view.vintage}", size=26, max_lines=1, fill="#5f6b66")


def _card_qr(image: Image.Image, url: str) -> None:
    matrix = qr_matrix(url)
    left, top, right, _ = CARD_QR_BOX
    size = len(matrix)
    # Whole pixels per module keep every module the same size, which scanners rely on.
    scale = (right - left) // (size + 8)
    modules = Image.frombytes("L", (size, size), bytes(0 if dark else 255 for row in matrix for dark in row))
    symbol = modules.resize((size * scale, size * scale), Image.Resampling.NEAREST)
    offset = ((right - left) - size * scale) // 2
    ImageDraw.Draw(image).rectangle(CARD_QR_BOX, fill="white")
    image.paste(symbol, (left + offset, top + offset))
