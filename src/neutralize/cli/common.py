"""What every command shares: consoles, failing with a code, a unit of work, the acting key."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor
from neutralize.access.service import authenticate
from neutralize.core.config import get_settings
from neutralize.core.db import make_engine, make_session_factory, unit_of_work
from neutralize.core.errors import DomainError, ErrorCode, validation_problems

USAGE_ERROR = 2  # bad input: the command did nothing
CHECK_FAILED = 1  # a check ran and found problems
API_KEY_ENV = "NEUTRALIZE_API_KEY"
Model = TypeVar("Model", bound=BaseModel)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def fail(error: DomainError) -> NoReturn:
    err.print_json(json.dumps(error.as_dict(), ensure_ascii=False))
    raise typer.Exit(USAGE_ERROR)


def print_model(model: BaseModel | list[Any]) -> None:
    if isinstance(model, list):
        sys.stdout.write(
            json.dumps([m.model_dump(mode="json") for m in model], indent=2, ensure_ascii=False) + "\n"
        )
    else:
        sys.stdout.write(model.model_dump_json(indent=2) + "\n")


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work on the configured database; a ``DomainError`` exits 2 and changes nothing."""
    engine = make_engine(get_settings())
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            yield session
    except DomainError as error:
        fail(error)
    finally:
        engine.dispose()


def acting(session: Session, api_key: str | None) -> Actor:
    """The actor of ``--api-key`` (or $NEUTRALIZE_API_KEY)."""
    token = api_key or os.environ.get(API_KEY_ENV, "")
    if not token:
        raise DomainError(code=ErrorCode.UNAUTHENTICATED, message=f"give --api-key or set {API_KEY_ENV}")
    return authenticate(session=session, token=token)


def read_text(source: str | Path) -> str:
    """Text from a file, or from stdin for ``-``; ``INVALID_REQUEST`` if unreadable."""
    try:
        return sys.stdin.read() if str(source) == "-" else Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"cannot read {source}: {error}") from None


def read_bytes(source: str | Path) -> bytes:
    """A file's bytes as they are, or stdin's for ``-``; ``INVALID_REQUEST`` if unreadable."""
    try:
        return sys.stdin.buffer.read() if str(source) == "-" else Path(source).read_bytes()
    except OSError as error:
        raise DomainError(code=ErrorCode.INVALID_REQUEST, message=f"cannot read {source}: {error}") from None


def read_json(source: str) -> Any:
    """JSON from a file, or from stdin for ``-``; ``INVALID_REQUEST`` if unreadable."""
    text = read_text(source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DomainError(
            code=ErrorCode.INVALID_REQUEST,
            message=f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
        ) from None


def validated(model: type[Model], data: Any) -> Model:
    """``data`` as ``model``; each problem gets the code and field path the API gives it."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise DomainError.from_problems(validation_problems(error.errors())) from None


def read_model(source: str, model: type[Model]) -> Model:
    """A command body from JSON, validated like the API validates it."""
    return validated(model, read_json(source))
