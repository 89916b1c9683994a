"""Typed dependencies shared by the routes: settings, clock, and a unit of work per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from neutralize.access.domain import Actor
from neutralize.access.service import authenticate
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.db import unit_of_work
from neutralize.core.signing import KeyRing


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with unit_of_work(factory) as session:
        yield session


def get_keys(request: Request) -> KeyRing:
    keys: KeyRing = request.app.state.keys
    return keys


def session_factory(request: Request) -> sessionmaker[Session]:
    """For the rare route that needs more than one unit of work (e.g. commit a payment, then
    complete the order in a transaction of its own)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[KeyRing, Depends(get_keys)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(request: Request, session: SessionDep) -> Actor | None:
    """The actor of the request's API key (``Authorization: Bearer nz_...``), or ``None`` if it has none.

    A key that is present but wrong is refused, never treated as anonymous.
    """
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
    if not token:
        return None
    return authenticate(session=session, token=token)


ActorDep = Annotated[Actor | None, Depends(get_actor)]
