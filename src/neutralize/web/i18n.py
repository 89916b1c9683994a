"""Pages in 中文, English, Deutsch and Nederlands: which language a request gets, its Babel catalogue,
and the gettext callables and number and date filters the templates use.

The catalogues are the ``.po`` files under ``locales/``, read once per process and compiled in
memory, so a clean checkout needs no build step. English is the source language: its catalogue is
the identity, and a string missing from another catalogue shows in English rather than not at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

from babel import Locale, dates, numbers
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from fastapi import Request
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from neutralize.core.errors import ErrorCode

# The languages offered, each named in itself and never translated.
LANGUAGES: Mapping[str, str] = {"zh": "中文", "en": "English", "de": "Deutsch", "nl": "Nederlands"}
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "nz_lang"
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
CATALOGUES = Path(__file__).parent / "locales"


def gettext_noop(message: str) -> str:
    """Mark ``message`` for the catalogues where it is defined; it is translated where it is shown."""
    return message


N_ = gettext_noop

# Words the pages show that come from data (statuses, kinds, choices), translated where shown; a
# value not listed here shows as it is.
TERMS: Mapping[str, str] = {
    # footprint lines, cabins, diets, travel modes
    "flight": N_("flight"),
    "hotel": N_("hotel"),
    "electricity": N_("electricity"),
    "meal": N_("meal"),
    "rail": N_("rail"),
    "car": N_("car"),
    "bus": N_("bus"),
    "metro": N_("metro"),
    "average": N_("average"),
    "economy": N_("economy"),
    "premium_economy": N_("premium economy"),
    "business": N_("business"),
    "first": N_("first"),
    "vegan": N_("vegan"),
    "vegetarian": N_("vegetarian"),
    "fish": N_("fish"),
    "low_meat": N_("low meat"),
    "medium_meat": N_("medium meat"),
    "high_meat": N_("high meat"),
    # roles
    "admin": N_("admin"),
    "verifier": N_("verifier"),
    "project_owner": N_("project owner"),
    "organiser": N_("organiser"),
    "member": N_("member"),
    "integrator": N_("integrator"),
    # dashboard categories (scenes.domain.CATEGORY_OF_TYPE)
    "travel": N_("travel"),
    "stay": N_("stay"),
    "meals": N_("meals"),
    "energy": N_("energy"),
    "freight": N_("freight"),
    "other": N_("other"),
    "taxi": N_("taxi"),
    "motorbike": N_("motorbike"),
    "ferry": N_("ferry"),
    "fuel": N_("fuel"),
    # kinds of scene
    "conference": N_("conference"),
    "scenic_spot": N_("scenic spot"),
    "restaurant": N_("restaurant"),
    "life": N_("everyday life"),
    # orders
    "created": N_("created"),
    "reserved": N_("reserved"),
    "payment_pending": N_("payment pending"),
    "paid": N_("paid"),
    "retired": N_("retired"),
    "issued": N_("issued"),  # a mirrored block not retired or cancelled at its home registry
    "allocated": N_("allocated"),
    "certified": N_("certified"),
    "failed": N_("failed"),
    "expired": N_("expired"),
    "cancelled": N_("cancelled"),
    "refunded": N_("refunded"),
    # the labels of listings and certificates (registry.domain.label_phrases)
    "avoidance": N_("avoidance"),  # also a project's credit type
    "removal": N_("removal"),
    "nature-based": N_("nature-based"),
    "technological": N_("technological"),
    "ICVCM CCP-approved": N_("ICVCM CCP-approved"),
    "carbon-inclusive (behavioural)": N_("carbon-inclusive (behavioural)"),
    "domestic use only": N_("domestic use only"),
    "legacy CCER": N_("legacy CCER"),
    "Article 6 authorised": N_("Article 6 authorised"),
    "corresponding adjustment applied": N_("corresponding adjustment applied"),
    "no corresponding adjustment": N_("no corresponding adjustment"),
    # certificates, listings, serial blocks, projects
    "valid": N_("valid"),
    "pending": N_("pending"),
    "replaced": N_("replaced"),
    "revoked": N_("revoked"),
    "signature": N_("signature"),
    "beneficiary": N_("beneficiary"),
    "home retirement": N_("home retirement"),
    "share": N_("share"),
    "shares within the retirement": N_("shares within the retirement"),
    "offer": N_("offer"),
    "flag": N_("flag"),
    "exclude": N_("exclude"),
    "held": N_("held"),
    "buffer": N_("buffer"),
    "exported": N_("exported"),
    "submitted": N_("submitted"),
    "validated": N_("validated"),
    "registered": N_("registered"),
    "rejected": N_("rejected"),
    "suspended": N_("suspended"),
    # what may offset an event (scenes.neutrality.Instrument)
    "ccer": N_("CCER"),
    "carbon_inclusive": N_("approved carbon-inclusive credits"),
    "new_forestry": N_("new-forestry sink"),
    "chinese_cdm": N_("CER of a Chinese CDM project"),
    "allowance": N_("allowance cancelled elsewhere"),
    # carbon accounts: behaviours, green levels and badges
    "public_transport": N_("public transport"),
    "active_travel": N_("walking and cycling"),
    "freight_matching": N_("matched freight"),
    "nev_driving": N_("electric driving"),
    "starter": N_("starter"),
    "green_step": N_("green step"),
    "green_commuter": N_("green commuter"),
    "green_pioneer": N_("green pioneer"),
    "green_champion": N_("green champion"),
    "first_reduction": N_("first reduction"),
    "hundred_rides": N_("a hundred rides"),
    "thousand_km_active": N_("1,000 km on foot or by bike"),
    "tonne_saved_freight": N_("a tonne saved in freight"),
    "steady_half_year": N_("six steady months"),
}

# A title for each kind of problem, translated above the English detail a DomainError carries.
PROBLEM_TITLES: Mapping[ErrorCode, str] = {
    ErrorCode.INVALID_REQUEST: N_("The request is not valid"),
    ErrorCode.PAYLOAD_TOO_LARGE: N_("Too much data"),
    ErrorCode.TOO_MANY_ACTIVITIES: N_("Too many activities"),
    ErrorCode.UNSUPPORTED_FORMAT: N_("Unsupported format"),
    ErrorCode.MISSING_FIELD: N_("Something is missing"),
    ErrorCode.UNKNOWN_FIELD: N_("Unknown field"),
    ErrorCode.WRONG_TYPE: N_("Not a valid value"),
    ErrorCode.NOT_FINITE: N_("Not a finite number"),
    ErrorCode.OUT_OF_RANGE: N_("Out of range"),
    ErrorCode.CONFLICTING_FIELDS: N_("Fields that contradict each other"),
    ErrorCode.UNKNOWN_ACTIVITY_TYPE: N_("Unknown activity"),
    ErrorCode.UNKNOWN_VALUE: N_("Unknown value"),
    ErrorCode.UNKNOWN_AIRPORT: N_("Unknown airport"),
    ErrorCode.SAME_AIRPORT: N_("Departure and arrival are the same airport"),
    ErrorCode.UNKNOWN_REGION: N_("Unknown region"),
    ErrorCode.UNKNOWN_FACTOR_SET: N_("Unknown emission factor set"),
    ErrorCode.FACTOR_SET_NOT_APPLICABLE: N_("Emission factor set does not apply"),
    ErrorCode.RADIATIVE_FORCING_UNAVAILABLE: N_("Radiative forcing not available"),
    ErrorCode.REGION_NOT_COVERED: N_("Region not covered"),
    ErrorCode.UNIT_NOT_COVERED: N_("Unit not covered"),
    ErrorCode.NOT_FOUND: N_("Not found"),
    ErrorCode.UNAUTHENTICATED: N_("Not signed in"),
    ErrorCode.FORBIDDEN: N_("Not allowed"),
    ErrorCode.IDEMPOTENCY_CONFLICT: N_("Already done differently"),
    ErrorCode.INVALID_TRANSITION: N_("Not possible in this state"),
    ErrorCode.PROJECT_NOT_REGISTERED: N_("Project not registered"),
    ErrorCode.NOT_VERIFIED: N_("Not verified"),
    ErrorCode.PERIOD_NOT_ENDED: N_("The period has not ended"),
    ErrorCode.ALREADY_ISSUED: N_("Already issued"),
    ErrorCode.ALREADY_CLAIMED: N_("Already kept in another account"),
    ErrorCode.INSUFFICIENT_UNITS: N_("Not enough credits"),
    ErrorCode.UNITS_NOT_AVAILABLE: N_("Credits not available"),
    ErrorCode.INVALID_SERIAL: N_("Not a valid serial number"),
    ErrorCode.DUPLICATE: N_("Already exists"),
    ErrorCode.CONSERVATION_BROKEN: N_("The registry does not add up"),
    ErrorCode.FACTOR_DATA_INVALID: N_("Invalid emission factor data"),
    ErrorCode.INVALID_IMPORT: N_("Invalid import"),
    ErrorCode.LISTING_EXCLUDED: N_("These credits are not offered"),
    ErrorCode.NO_ELIGIBLE_LISTING: N_("No credits available"),
    ErrorCode.QUOTE_EXPIRED: N_("The price has expired"),
    ErrorCode.CURRENCY_MISMATCH: N_("Currencies do not match"),
    ErrorCode.PAYMENT_DECLINED: N_("Payment declined"),
    ErrorCode.WEBHOOK_SIGNATURE_INVALID: N_("Invalid payment notification"),
    ErrorCode.UNKNOWN_GATEWAY: N_("Unknown payment provider"),
    ErrorCode.INVALID_TEXT: N_("Text not allowed"),
    ErrorCode.CERTIFICATE_SIGNATURE_INVALID: N_("Invalid certificate signature"),
    ErrorCode.CERTIFICATE_UNREADABLE: N_("Unreadable certificate"),
    ErrorCode.FONT_MISSING: N_("Font missing"),
    ErrorCode.CLAIM_NOT_SUPPORTED: N_("Claim not supported"),
    ErrorCode.INSTRUMENT_NOT_ELIGIBLE: N_("These credits cannot offset an event"),
    ErrorCode.OWN_BOUNDARY_CREDIT: N_("Credits from the event's own reductions"),
    ErrorCode.RATE_LIMITED: N_("Too many attempts: try again later"),
    ErrorCode.CSRF_FAILED: N_("The form has expired: reload the page"),
    ErrorCode.WEAK_PASSWORD: N_("Password too weak"),
    ErrorCode.TOKEN_INVALID: N_("This link is not valid any more"),
    ErrorCode.INSUFFICIENT_POINTS: N_("Not enough points"),
    ErrorCode.BENEFIT_UNAVAILABLE: N_("This benefit is not available"),
    ErrorCode.MALFORMED_ROW: N_("A row could not be read"),
    ErrorCode.TOO_MANY_RECORDS: N_("Too many records"),
    ErrorCode.UNKNOWN_METHODOLOGY: N_("Unknown methodology"),
    ErrorCode.METHODOLOGY_PARAMETERS_INVALID: N_("Invalid methodology parameters"),
    ErrorCode.DUPLICATE_RECORD: N_("Record already received"),
    ErrorCode.OVERLAPPING_BEHAVIOUR: N_("Overlaps a behaviour already counted"),
    ErrorCode.TIME_IN_FUTURE: N_("Time in the future"),
    ErrorCode.TIME_BEFORE_EPOCH: N_("Time too far in the past"),
    ErrorCode.SPEED_IMPLAUSIBLE: N_("Implausible speed"),
    ErrorCode.ROUTE_DISTANCE_IMPLAUSIBLE: N_("Distance does not fit the route"),
    ErrorCode.DAILY_CAP_REACHED: N_("Daily limit reached"),
    ErrorCode.SIGNING_KEY_INVALID: N_("Invalid signing key"),
    ErrorCode.SIGNING_KEY_UNSAFE: N_("Unsafe signing key"),
}


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> Translations:
    """The catalogue of ``language``, compiled from its ``.po`` file (fuzzy entries left out)."""
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = read_po(po, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled)


def choose_language(asked: str | None, remembered: str | None, accept_language: str) -> str:
    """The language of a page: one asked for with ``?lang=``, else the one remembered in the cookie,
    else the browser's best match among ours (Accept-Language), else English."""
    for choice in (asked, remembered):
        if choice is not None and choice in LANGUAGES:
            return choice
    # Browsers list languages best first; a zh-CN or de-AT browser gets zh or de.
    preferred = [part.split(";")[0].strip().lower().replace("-", "_") for part in accept_language.split(",")]
    wanted = [p for p in preferred if p and p != "*"][:20]
    return negotiate_locale(wanted, list(LANGUAGES), aliases={}) or DEFAULT_LANGUAGE


class LanguageMiddleware(BaseHTTPMiddleware):
    """Choose each request's language and remember one chosen with ``?lang=`` in a cookie."""

    def __init__(self, app: object, *, secure: bool) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._secure = secure

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        asked = request.query_params.get("lang")
        remembered = request.cookies.get(LANGUAGE_COOKIE)
        language = choose_language(asked, remembered, request.headers.get("accept-language", ""))
        request.state.language = language
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):  # the API is not translated
            response.headers["Content-Language"] = language
            response.headers.append("Vary", "Accept-Language, Cookie")
        if asked == language and remembered != language:
            response.set_cookie(
                LANGUAGE_COOKIE,
                language,
                max_age=LANGUAGE_COOKIE_SECONDS,
                httponly=True,
                samesite="lax",
                secure=self._secure,
            )
        return response


def language_of(request: Request) -> str:
    """The language chosen for ``request`` (English for a request the middleware did not see)."""
    return str(getattr(request.state, "language", DEFAULT_LANGUAGE))


def _language(context: Context) -> str:
    request = context.get("request")
    return language_of(request) if request is not None else DEFAULT_LANGUAGE


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(_language(context)).ugettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(_language(context)).ungettext(singular, plural, n)


# Words that carry a value: "vintage 2016", "CORSIA eligible (first phase)", "serial NZ-…".
_VINTAGE = re.compile(r"vintage (?P<year>\d{4})")
_SERIAL = re.compile(r"serial (?P<serial>\S+)")
_CORSIA = re.compile(r"CORSIA eligible \((?P<phase>[^)]*)\)")


@pass_context
def term(context: Context, value: object) -> str:
    """A data word (``payment_pending``) or label in the page's language, or the value itself if
    unknown (underscores as spaces)."""
    text = str(value)
    if text in TERMS:
        return _gettext(context, TERMS[text])
    if vintage := _VINTAGE.fullmatch(text):
        return _gettext(context, N_("vintage %(year)s")) % vintage.groupdict()
    if serial := _SERIAL.fullmatch(text):
        return _gettext(context, N_("serial %(serial)s")) % serial.groupdict()
    if corsia := _CORSIA.fullmatch(text):
        return _gettext(context, N_("CORSIA eligible (%(phase)s)")) % corsia.groupdict()
    return text.replace("_", " ")


@pass_context
def problem_title(context: Context, code: ErrorCode | str) -> str:
    """The translated title of a kind of problem (the general one for a code it does not know)."""
    try:
        title = PROBLEM_TITLES[ErrorCode(code)]
    except ValueError:
        title = PROBLEM_TITLES[ErrorCode.INVALID_REQUEST]
    return _gettext(context, title)


@pass_context
def number(context: Context, value: Decimal | float | int, digits: int | None = None) -> str:
    """``value`` with the locale's separators (1,234.5 · 1.234,5); all its digits, or exactly ``digits``."""
    locale = Locale.parse(_language(context))
    if digits is None:
        return numbers.format_decimal(value, locale=locale, decimal_quantization=False)
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return numbers.format_decimal(value, format=pattern, locale=locale)


@pass_context
def money(context: Context, minor: int, currency: str) -> str:
    """An amount in minor units (cents, fen) with two decimals and its currency code: 1.234,50 CNY."""
    return f"{number(context, Decimal(minor) / 100, 2)} {currency}"


@pass_context
def format_date(context: Context, value: date | datetime | str) -> str:
    """A date (or the day of a timestamp, or an ISO text) as the locale writes it."""
    day = date.fromisoformat(value[:10]) if isinstance(value, str) else value
    return dates.format_date(day, format="medium", locale=_language(context))


@pass_context
def format_datetime(context: Context, value: datetime | str) -> str:
    """A UTC timestamp (or its ISO text) as the locale writes it, with the zone named."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    text = dates.format_datetime(moment, format="medium", tzinfo=UTC, locale=_language(context))
    return f"{text} UTC"


@pass_context
def format_time(context: Context, value: datetime) -> str:
    """The UTC time of day of a timestamp, as the locale writes it, with the zone named."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{dates.format_time(moment, format='short', tzinfo=UTC, locale=_language(context))} UTC"


def switch_url(request: Request, language: str) -> str:
    """This page's address (path and query) in another language. The path is percent-encoded again
    (the request's is decoded), so that what a visitor typed into it stays inside the link."""
    url = request.url.include_query_params(lang=language)
    return f"{quote(url.path)}?{url.query}"


def install(env: Environment) -> None:
    """Give templates gettext in the language of the request they render for, and the filters."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        languages=LANGUAGES, language_of=language_of, switch_url=switch_url, problem_title=problem_title
    )
    env.filters.update(
        term=term,
        number=number,
        money=money,
        date=format_date,
        datetime=format_datetime,
        time=format_time,
    )
