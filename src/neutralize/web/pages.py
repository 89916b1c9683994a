"""Pages for people: for now, a footprint calculator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from neutralize.core.errors import DomainError, ErrorCode
from neutralize.footprint import service
from neutralize.web.i18n import install
from neutralize.web.security import CsrfChecked, csrf_token

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["csrf_token"] = csrf_token
# Every string a page shows goes through gettext: ``{{ _("…") }}`` or ``{% trans %}…{% endtrans %}``,
# in the language chosen for the request (web/i18n.py).
install(templates.env)


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A template rendered for ``request`` (every page gets its CSRF token through the template)."""
    return templates.TemplateResponse(request, name, context, status_code=status)


def problem_page(
    request: Request, error: DomainError, back: str = "javascript:history.back()", status: int | None = None
) -> HTMLResponse:
    """What went wrong, with its code, and a way back: 404 for what does not exist, 422 otherwise
    (unless ``status`` says)."""
    if status is None:
        status = 404 if error.code is ErrorCode.NOT_FOUND else 422
    return page(request, "problem.html", {"error": error, "back": back}, status)


def error_page(request: Request, error: DomainError, status: int) -> HTMLResponse:
    """The page of a problem no route caught (a form's expired token, a field the form lacks, a page
    that does not exist): the app's error handlers answer a browser with it (api/errors.py)."""
    return problem_page(request, error, status=status)


@router.get("/", response_class=HTMLResponse)
def calculator(request: Request) -> HTMLResponse:
    context: dict[str, object] = {"result": None, "problems": [], "form": {"cabin": "average"}}
    return templates.TemplateResponse(request, "calculator.html", context)


@router.post("/", response_class=HTMLResponse, dependencies=[CsrfChecked])
def calculate(
    request: Request,
    origin: Annotated[str, Form(max_length=3)] = "",
    destination: Annotated[str, Form(max_length=3)] = "",
    round_trip: Annotated[bool, Form()] = False,
    cabin: Annotated[str, Form(max_length=20)] = "average",
    hotel_country: Annotated[str, Form(max_length=6)] = "",
    nights: Annotated[str, Form(max_length=10)] = "",
    region: Annotated[str, Form(max_length=10)] = "",
    kwh: Annotated[str, Form(max_length=20)] = "",
    diet: Annotated[str, Form(max_length=20)] = "",
    meals: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """Compute what the form holds; every line shows its factor and source."""
    activities: list[dict[str, object]] = []
    if origin or destination:
        activities.append(
            {
                "type": "flight",
                "origin": origin,
                "destination": destination,
                "round_trip": round_trip,
                "cabin": cabin,
            }
        )
    if hotel_country or nights:
        activities.append({"type": "hotel", "country": hotel_country, "nights": nights})
    if region or kwh:
        activities.append({"type": "electricity", "region": region, "kwh": kwh})
    if diet or meals:
        activities.append({"type": "meal", "diet": diet, "count": meals})
    form = {
        "origin": origin,
        "destination": destination,
        "round_trip": round_trip,
        "cabin": cabin,
        "hotel_country": hotel_country,
        "nights": nights,
        "region": region,
        "kwh": kwh,
        "diet": diet,
        "meals": meals,
    }
    context: dict[str, object] = {"result": None, "problems": [], "form": form}
    try:
        context["result"] = service.calculate(activities=activities)
    except DomainError as error:
        context["problems"] = error.problems or [error]
    status = 200 if context["result"] is not None else 422
    return templates.TemplateResponse(request, "calculator.html", context, status_code=status)
