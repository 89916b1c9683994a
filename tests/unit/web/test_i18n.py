"""The language chosen for a request, and numbers and dates as each language writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from neutralize.web.i18n import choose_language
from neutralize.web.pages import templates


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "1,234.5 · 1,234.50 CNY · 0.125 · Nov 25, 2026 · 9:30\u202fAM UTC"),
        ("de", "1.234,5 · 1.234,50 CNY · 0,125 · 25.11.2026 · 09:30 UTC"),
        ("nl", "1.234,5 · 1.234,50 CNY · 0,125 · 25 nov 2026 · 09:30 UTC"),
        ("zh", "1,234.5 · 1,234.50 CNY · 0.125 · 2026年11月25日 · 09:30 UTC"),
    ],
)
def test_the_number_and_date_filters_follow_the_language(language: str, expected: str) -> None:
    template = templates.env.from_string(
        "{{ 1234.5|number }} · {{ 123450|money('CNY') }} · {{ '0.125'|float|number }}"
        " · {{ day|date }} · {{ day|time }}"
    )
    request = SimpleNamespace(state=SimpleNamespace(language=language))
    day = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert template.render(request=request, day=day) == expected


def test_the_choice_is_pure() -> None:
    assert choose_language(None, None, "") == "en"
    assert choose_language("nl", "zh", "de") == "nl"
    assert choose_language("xx", "zh", "de") == "zh"
    assert choose_language(None, "xx", "de-AT") == "de"
    assert choose_language(None, None, "*") == "en"
