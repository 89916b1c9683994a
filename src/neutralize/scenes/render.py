"""A scene's QR poster (PNG and SVG of the code, and a printable A4 PDF with the scene's name), and
the organiser's printable reports."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

from neutralize.certificates.render import cjk_font_path, pdf_font, qr_png, qr_svg

__all__ = ["poster_pdf", "qr_png", "qr_svg", "report_pdf"]


def poster_pdf(*, name: str, url: str, intro: str) -> bytes:
    """An A4 poster: the scene's name, what guests do, a large QR code and its address."""
    font = pdf_font(cjk_font_path())
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    width, height = A4
    canvas.setTitle(name)
    canvas.setFont(font, 30)
    canvas.drawCentredString(width / 2, height - 110, name[:40])
    canvas.setFont(font, 16)
    canvas.drawCentredString(
        width / 2, height - 150, "扫码计算并抵消您的碳足迹 · Scan to measure and offset your footprint"
    )
    canvas.setFont(font, 12)
    canvas.drawCentredString(width / 2, height - 175, intro[:90])
    side = 340
    canvas.drawImage(ImageReader(io.BytesIO(qr_png(url, scale=12))), (width - side) / 2, 230, side, side)
    canvas.setFont(font, 12)
    canvas.drawCentredString(width / 2, 200, url)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def report_pdf(*, title: str, sections: Sequence[tuple[str, Sequence[str]]]) -> bytes:
    """A printable A4 report: a title, then headed sections of text lines (long lines wrap, pages
    break as needed), in the CJK font so that Chinese names and wording print."""
    font = pdf_font(cjk_font_path())
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4)
    width, height = A4
    margin, leading = 50, 15
    canvas.setTitle(title)
    y = height - margin

    def line(text: str, size: int, gap: float = 0) -> None:
        nonlocal y
        for part in simpleSplit(text, font, size, width - 2 * margin) or [""]:
            if y < margin + leading:
                canvas.showPage()
                y = height - margin
            canvas.setFont(font, size)
            canvas.drawString(margin, y, part)
            y -= leading + gap

    line(title, 18, 8)
    for heading, lines in sections:
        y -= 6
        line(heading, 13, 3)
        for text in lines:
            line(text, 10)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
