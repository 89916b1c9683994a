"""User accounts: sign up, sign in and out, browser sessions, password reset by a signed link
(the e-mail goes to the outbox), rate limits, and API keys made from an account.

Passwords are hashed with argon2id; a session cookie and a reset link are random or signed, and
only their SHA-256 (sessions) or nothing at all (reset links: an HMAC over the user, the expiry and
the current password hash, so a used or outdated link fails) is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from neutralize.access.domain import Actor, Role
from neutralize.access.models import ApiKey, OutboxMessage, RateEvent, User, WebSession
from neutralize.access.service import IssuedKey, create_key
from neutralize.core.clock import Clock, as_utc
from neutralize.core.config import Settings
from neutralize.core.db import add_once, hold
from neutralize.core.errors import DomainError, ErrorCode, NotFoundError
from neutralize.core.ids import new_id

logger = logging.getLogger(__name__)
_hasher = PasswordHasher()  # argon2id with the library's current defaults
MIN_PASSWORD = 10
RESET_HOURS = 2
BUCKET_LENGTH = 200  # RateEvent.bucket


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(max_length=200)
    display_name: str = Field(min_length=1, max_length=200)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    display_name: str
    role: str
    organisation_id: str | None


class KeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def _check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD or password.casefold() == email.casefold():
        raise DomainError(
            code=ErrorCode.WEAK_PASSWORD,
            message=f"a password has at least {MIN_PASSWORD} characters and is not the e-mail address",
        )


def sign_up(
    *,
    session: Session,
    clock: Clock,
    cmd: SignUp,
    role: Role = Role.MEMBER,
    organisation_id: str | None = None,
) -> UserPublic:
    """A new account (members sign themselves up; other roles are given by an admin)."""
    email = cmd.email.strip().lower()
    _check_password(cmd.password, email)

    def taken() -> bool:
        return session.scalars(select(User.id).where(User.email == email)).first() is not None

    duplicate = DomainError(code=ErrorCode.DUPLICATE, message="an account with this e-mail address exists")
    if taken():
        raise duplicate
    now = clock.now()
    user = User(
        id=new_id("usr", now),
        email=email,
        display_name=cmd.display_name.strip(),
        password_hash=_hasher.hash(cmd.password),
        role=role.value,
        organisation_id=organisation_id,
        created_at=now,
        password_changed_at=now,
    )
    add_once(session, [user], taken=taken, refusal=duplicate)  # signed up a moment ago: that account wins
    return UserPublic.model_validate(user)


def log_in(*, session: Session, clock: Clock, settings: Settings, email: str, password: str) -> str:
    """A new session token for the right e-mail and password; ``UNAUTHENTICATED`` otherwise (the
    same answer whether the address exists or not)."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    try:
        if user is None:
            raise VerificationError("no such user")
        _hasher.verify(user.password_hash, password[:200])
    except (VerificationError, InvalidHashError):
        raise DomainError(
            code=ErrorCode.UNAUTHENTICATED, message="wrong e-mail address or password"
        ) from None
    # Locked and read again (as a reset locks it): a password reset that committed while the hash was
    # checked wins, and this sign-in with the old password is refused, its rehash never written.
    verified = user.password_hash
    user = session.get(User, user.id, with_for_update=True, populate_existing=True)
    if user is None or user.password_hash != verified:
        raise DomainError(code=ErrorCode.UNAUTHENTICATED, message="wrong e-mail address or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        WebSession(
            token_sha256=_sha256(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=settings.session_hours),
        )
    )
    session.flush()
    return token


def session_actor(*, session: Session, clock: Clock, token: str) -> tuple[Actor, UserPublic] | None:
    """Who a session cookie signs in, if it is current."""
    if not token or len(token) > 100:
        return None
    row = session.get(WebSession, _sha256(token))
    if row is None or as_utc(row.expires_at) <= clock.now():
        return None
    user = session.get(User, row.user_id)
    assert user is not None
    return Actor(
        id=user.id, role=Role(user.role), organisation_id=user.organisation_id
    ), UserPublic.model_validate(user)


def log_out(*, session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_sha256 == _sha256(token)))


def request_password_reset(
    *, session: Session, clock: Clock, settings: Settings, email: str, base_url: str
) -> None:
    """Put a reset link in the outbox if the address has an account; say nothing either way."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        return
    expires = int((clock.now() + timedelta(hours=RESET_HOURS)).timestamp())
    token = f"{user.id}.{expires}.{_reset_mac(settings, user, expires)}"
    link = f"{base_url.rstrip('/')}/password-reset/{token}"
    body = f"Someone asked to reset the password of {user.email} on Neutralize.\n\n{link}\n\n" \
        f"The link works for {RESET_HOURS} hours. If it was not you, ignore this message."  # fmt: skip
    send_mail(session=session, clock=clock, settings=settings, to=user.email,
              subject="Reset your password", body=body)  # fmt: skip


def send_mail(
    *, session: Session, clock: Clock, settings: Settings, to: str, subject: str, body: str
) -> None:
    """Put an e-mail in the outbox for the mailer (and, in development, in the log)."""
    session.add(OutboxMessage(recipient=to, subject=subject, body=body, created_at=clock.now()))
    if settings.environment == "development":
        logger.info("outbox: %s to %s:\n%s", subject, to, body)


def email_of(*, session: Session, user_id: str) -> str | None:
    """The e-mail address of a user account (None for an API key's id or an unknown user)."""
    return session.scalars(select(User.email).where(User.id == user_id)).first()


def reset_password(*, session: Session, clock: Clock, settings: Settings, token: str, password: str) -> None:
    """Set a new password with a reset link, once: every session of the account ends, and the link
    (signed over the old password's hash) fails from then on."""
    user = _user_of_link(session, clock, settings, token)
    _check_password(password, user.email)
    user.password_hash = _hasher.hash(password)
    user.password_changed_at = clock.now()
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def _user_of_link(session: Session, clock: Clock, settings: Settings, token: str) -> User:
    invalid = DomainError(
        code=ErrorCode.TOKEN_INVALID, message="this link is not valid (any more): ask again"
    )
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit() or len(token) > 200:
        raise invalid
    # Locked and read again: two requests with one link take turns, and the second sees the new hash.
    user = session.get(User, parts[0], with_for_update=True, populate_existing=True)
    expires = int(parts[1])
    if user is None or expires < clock.now().timestamp():
        raise invalid
    if not hmac.compare_digest(parts[2], _reset_mac(settings, user, expires)):
        raise invalid
    return user


def _reset_mac(settings: Settings, user: User, expires: int) -> str:
    message = f"reset|{user.id}|{expires}|{user.password_hash}".encode()
    mac = hmac.new(settings.link_secret(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def rate_limit(*, session: Session, clock: Clock, bucket: str, limit: int, window_seconds: int) -> None:
    """Count one attempt in ``bucket``; ``RATE_LIMITED`` once ``limit`` were made in the window.
    PostgreSQL: the bucket is held until the attempt commits, so that attempts arriving together are
    counted one after the other rather than each seeing the others' uncounted (SQLite: its writer
    lock does the same). A bucket longer than the column is counted by a prefix and its hash, so that
    a long address is limited like a short one."""
    if len(bucket) > BUCKET_LENGTH:
        bucket = bucket[: BUCKET_LENGTH - 64] + hashlib.sha256(bucket.encode()).hexdigest()
    hold(session, f"neutralize.rate:{bucket}")
    now = clock.now()
    since = now - timedelta(seconds=window_seconds)
    recent = session.scalar(
        select(func.count()).select_from(RateEvent).where(RateEvent.bucket == bucket, RateEvent.at > since)
    )
    if (recent or 0) >= limit:
        raise DomainError(code=ErrorCode.RATE_LIMITED, message="too many attempts: wait a few minutes")
    session.add(RateEvent(bucket=bucket, at=now))
    session.flush()


def create_user_key(*, session: Session, clock: Clock, actor: Actor, label: str) -> IssuedKey:
    """An API key with the account's own role and organisation (the secret is shown once)."""
    issued = create_key(
        session=session, clock=clock, role=actor.role, organisation_id=actor.organisation_id, label=label
    )
    key = session.get(ApiKey, issued.id)
    assert key is not None
    key.user_id = actor.id
    return issued


def user_keys(*, session: Session, actor: Actor) -> list[KeyPublic]:
    rows = session.scalars(select(ApiKey).where(ApiKey.user_id == actor.id).order_by(ApiKey.created_at))
    return [KeyPublic.model_validate(k) for k in rows]


def revoke_user_key(*, session: Session, clock: Clock, actor: Actor, key_id: str) -> None:
    """Revoke one of the account's own keys (another's is not found)."""
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != actor.id:
        raise NotFoundError(f"no key {key_id!r} of yours")
    key.revoked_at = key.revoked_at or clock.now()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
