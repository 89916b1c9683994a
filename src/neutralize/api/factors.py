"""Factor catalogue routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from neutralize.footprint import service
from neutralize.footprint.schemas import FactorPage
from neutralize.footprint.vocabulary import FACTOR_SETS

router = APIRouter(prefix="/api/v1/factors", tags=["factors"])


@router.get("")
def search_factors(
    q: Annotated[str, Query(max_length=200, description="words that must all appear")] = "",
    factor_set: Annotated[str | None, Query(max_length=40, description=", ".join(FACTOR_SETS))] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FactorPage:
    """Search the factor catalogue, a page at a time."""
    return service.search_factors(text=q, factor_set=factor_set, page=page, page_size=page_size)
