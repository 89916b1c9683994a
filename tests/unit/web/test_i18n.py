"""The language chosen for a request, and numbers and dates as each language writes them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from neutralize.web.i18n import choose_language, switch_url
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


def render_as(language: str, source: str) -> str:
    request = SimpleNamespace(state=SimpleNamespace(language=language))
    return templates.env.from_string(source).render(request=request)


def test_data_words_and_labels_are_translated_and_unknown_ones_shown_as_they_are() -> None:
    source = (
        "{{ 'payment_pending'|term }} · {{ 'vintage 2016'|term }} · {{ 'avoidance'|term }} · {{ 'VCS'|term }}"
    )
    assert render_as("de", source) == "Zahlung ausstehend · Jahrgang 2016 · Vermeidung · VCS"
    assert render_as("en", source) == "payment pending · vintage 2016 · avoidance · VCS"


def test_trans_blocks_and_problem_titles_follow_the_language() -> None:
    source = (
        "{% trans r='X-1' %}Replaced by <code>{{ r }}</code>{% endtrans %} · {{ problem_title('not_found') }}"
    )
    assert render_as("nl", source) == "Vervangen door <code>X-1</code> · Niet gevonden"
    assert render_as("zh", source) == "已替换为 <code>X-1</code> · 未找到"
    assert render_as("de", "{{ problem_title('no_such_code') }}") == "Die Anfrage ist ungültig"


def test_concurrent_renders_each_keep_their_own_language() -> None:
    # The environment is shared by every request: the language travels with each render's context.
    expected = {"zh": "计算", "en": "Calculate", "de": "Berechnen", "nl": "Berekenen"}
    languages = list(expected) * 50
    with ThreadPoolExecutor(max_workers=8) as pool:
        rendered = list(pool.map(lambda code: render_as(code, '{{ _("Calculate") }}'), languages))
    assert rendered == [expected[code] for code in languages]


def test_the_language_links_keep_an_odd_path_inside_the_link() -> None:
    """A path holding a NUL, a quote or a space is percent-encoded again in the language links."""
    scope = {"type": "http", "method": "GET", "path": '/orders/a\x00b"c d', "query_string": b"x=1",
             "headers": [], "server": ("test", 80), "scheme": "http", "root_path": ""}  # fmt: skip
    assert switch_url(Request(scope), "de") == "/orders/a%00b%22c%20d?x=1&lang=de"
