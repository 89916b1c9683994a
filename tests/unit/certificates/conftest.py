"""Fixtures for the certificate renderings: the CJK font, pdftoppm, sample views, QR reading."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from neutralize.certificates.render import CertificateView, cjk_font_path
from neutralize.core.errors import DomainError
from tests.conftest import ON_CI

Matrix = tuple[tuple[bool, ...], ...]
RASTER_DPI = 100

SIGNED_JSON = (
    json.dumps(
        {"number": "NZC-2026-000123", "holder": "张伟", "kg": 340, "signature": "q1w2e3=="},
        ensure_ascii=False,
        indent=2,
    ).encode()
    + b"\n"
)


def _missing(message: str) -> None:
    if ON_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def font_path() -> Path:
    try:
        return cjk_font_path()
    except DomainError as error:
        _missing(f"{error.message}; make system-deps installs it")
        raise


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        _missing(f"{tool} is missing: install poppler-utils (make system-deps)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def pdftoppm() -> str:
    return _poppler("pdftoppm")


@pytest.fixture(scope="session")
def pdfdetach() -> str:
    return _poppler("pdfdetach")


def view(**changes: Any) -> CertificateView:
    """A realistic retired certificate; tests override what they are about."""
    fields: dict[str, Any] = {
        "number": "NZC-2026-000123",
        "status": "retired",
        "holder_name": "张伟",
        "kilograms": 340,
        "claim": {
            "en": "Has paid for the retirement of 340 kg CO2e of carbon credits, a contribution to "
            "climate mitigation.",
            "zh": "已出资注销 340 千克二氧化碳当量的碳信用，为气候减缓作出贡献。",
        },
        "offsets": {
            "en": "Footprint of 3 activities (339.2 kg CO2e)",
            "zh": "3 项活动的碳足迹（339.2 千克二氧化碳当量）",
        },
        "project_name": "Chengdu Metro Regenerative Braking",
        "project_code": "CD-METRO",
        "standard": "CDCER",
        "vintage": "2025",
        "labels": ["CDCER", "avoidance", "no corresponding adjustment"],
        "evidence": [
            "NZ-CDCER-CD-METRO-2025-000000000001-000000000340",
            "Merkle root 3f2a" + "0b" * 30,
        ],
        "issued_at": "2026-01-25T10:30:00Z",
        "key_id": "nzk-2026-01",
        "verify_url": "https://verify.neutralize.example/verify/NZC-2026-000123",
        "signed_json": SIGNED_JSON,
    }
    fields.update(changes)
    return CertificateView(**fields)


@pytest.fixture
def rasterise(pdftoppm: str, tmp_path: Path) -> Callable[[bytes], Image.Image]:
    """Render page 1 of a PDF with poppler, in grey, at RASTER_DPI."""
    counter = iter(range(1_000))

    def run(pdf: bytes) -> Image.Image:
        stem = tmp_path / f"page{next(counter)}"
        source = stem.with_suffix(".pdf")
        source.write_bytes(pdf)
        command = [pdftoppm, "-r", str(RASTER_DPI), "-gray", "-png", "-singlefile", str(source), str(stem)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        with Image.open(stem.with_suffix(".png")) as image:
            return image.convert("L")

    return run


def read_modules(image: Image.Image) -> Matrix:
    """Rebuild a QR code's module matrix from its pixels, knowing nothing of the encoder.

    The symbol is the bounding box of the dark pixels (the finder patterns fill three corners);
    the top-left finder pattern's first row is 7 modules wide, which gives the module size; each
    module is then read at its centre.
    """
    gray = image.convert("L")
    box = gray.point(lambda value: 255 if value < 128 else 0).getbbox()
    assert box is not None, "no dark pixels: no QR code here"
    left, top, right, bottom = box
    finder = max(_dark_run(gray, left, row) for row in range(top, min(top + 3, bottom)))
    size = round((right - left) / (finder / 7))
    step_x, step_y = (right - left) / size, (bottom - top) / size
    return tuple(
        tuple(
            gray.getpixel((int(left + (col + 0.5) * step_x), int(top + (row + 0.5) * step_y))) < 128
            for col in range(size)
        )
        for row in range(size)
    )


def _dark_run(gray: Image.Image, left: int, row: int) -> int:
    run = 0
    while gray.getpixel((left + run, row)) < 128:
        run += 1
    return run


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
