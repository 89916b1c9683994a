"""A scene's QR poster: PNG and SVG of the code, and a printable A4 PDF with the scene's name."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from neutralize.certificates.render import cjk_font_path, pdf_font, qr_png, qr_svg

__all__ = ["poster_pdf", "qr_png", "qr_svg"]


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
