"""Ed25519 signing keys for tamper evidence and certificates, and the canonical JSON the platform signs.

A ``KeyRing`` holds one current key, which signs, and any number of retired keys, which only
verify. Keys come from one of three sources (see ``KeyRing.from_settings``):

- a directory (``NEUTRALIZE_SIGNING_KEY_DIR``, default ``./var/keys``) that the ring manages:
  it creates a key there on first use and records rotations;
- one fixed key in a file (``NEUTRALIZE_SIGNING_KEY_FILE``): PEM (PKCS#8, unencrypted, as made by
  ``openssl genpkey -algorithm ed25519``) or base64 of the 32-byte raw private key;
- one fixed key in the environment (``NEUTRALIZE_SIGNING_KEY``): base64 of the 32-byte raw key.

Directory layout: one JSON file per key, ``ed25519-<16 hex>.json``, written atomically with mode
0600 in a directory created with mode 0700. A retired key's file keeps its public key only: a
retired key can never sign again. Any key file readable or writable by group or others is
refused (``SIGNING_KEY_UNSAFE``); a malformed or inconsistent one is refused with
``SIGNING_KEY_INVALID``. Changes to the directory are made under an exclusive ``flock`` so that
several processes starting at once agree on one first key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from neutralize.core.canonical import canonical_json, utc_iso
from neutralize.core.clock import Clock
from neutralize.core.config import Settings
from neutralize.core.errors import DomainError, ErrorCode

logger = logging.getLogger(__name__)

KEY_ID_PREFIX = "ed25519:"
RAW_KEY_BYTES = 32
SIGNATURE_BYTES = 64
# Key files are a few hundred bytes; anything much larger is not one of ours.
MAX_KEY_FILE_BYTES = 16 * 1024
# Daily rotation for a quarter of a century; a directory with more keys is not ours either.
MAX_KEYS = 10_000
# Canonical JSON nests no deeper than this; certificates and journal entries need a handful.

_KEY_FILE_RE = re.compile(r"^ed25519-([0-9a-f]{16})\.json$")
_LOCK_FILE = ".lock"
_SIGNATURE_B64_CHARS = 4 * ((SIGNATURE_BYTES + 2) // 3)


class KeySource(StrEnum):
    """Where a key ring's keys come from."""

    DIRECTORY = "directory"
    FILE = "file"
    ENVIRONMENT = "environment"


class VerifyOutcome(StrEnum):
    """Why a signature did or did not verify; ``KeyRing.check`` returns one."""

    VALID = "valid"
    UNKNOWN_KEY = "unknown_key"
    MALFORMED_SIGNATURE = "malformed_signature"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True)
class Signature:
    """A detached Ed25519 signature: the signing key's id and the 64 signature bytes in base64."""

    key_id: str
    signature_b64: str


@dataclass(frozen=True)
class PublicKeyInfo:
    """What anyone may know about a key: its id, raw public key, and when it served."""

    key_id: str
    public_key: bytes
    created_at: datetime
    retired_at: datetime | None

    @property
    def status(self) -> Literal["current", "retired"]:
        return "current" if self.retired_at is None else "retired"


@dataclass(frozen=True)
class _Key:
    info: PublicKeyInfo
    private: Ed25519PrivateKey | None  # None once retired


def key_id_for(public_key: bytes) -> str:
    """``ed25519:`` + the first 16 hex characters of SHA-256 of the 32-byte raw public key."""
    return KEY_ID_PREFIX + hashlib.sha256(public_key).hexdigest()[:16]


class KeyVerifier:
    """Public keys only: checks signatures, never signs. ``verifier_from_settings`` builds one
    without writing anything (an audit must not make the key it then fails to find)."""

    def __init__(self, infos: Sequence[PublicKeyInfo]) -> None:
        self._by_id = {info.key_id: info for info in infos}

    def public_keys(self) -> list[PublicKeyInfo]:
        """Every known key, oldest first; the current key is the last."""
        return sorted(self._by_id.values(), key=_key_order)

    def verify(self, data: bytes, signature: Signature) -> bool:
        """Whether ``signature`` is a valid signature of ``data`` by a known key, current or retired.

        ``check`` says why not.
        """
        return self.check(data, signature) is VerifyOutcome.VALID

    def check(self, data: bytes, signature: Signature) -> VerifyOutcome:
        """Verify ``signature`` over ``data`` and say why it failed, if it did."""
        key = self._by_id.get(signature.key_id)
        if key is None:
            return VerifyOutcome.UNKNOWN_KEY
        raw = _decode_signature(signature.signature_b64)
        if raw is None:
            return VerifyOutcome.MALFORMED_SIGNATURE
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw, data)
        except InvalidSignature:
            return VerifyOutcome.BAD_SIGNATURE
        return VerifyOutcome.VALID


def verifier_from_settings(settings: Settings, *, clock: Clock) -> KeyVerifier:
    """The keys the settings name, to verify with: the environment key or key file as
    ``KeyRing.from_settings`` reads them; a key directory is read as it is (re-read on every call, so
    a rotation by another process is seen), never created or added to, and may hold no key at all."""
    env_key = settings.signing_key.get_secret_value() if settings.signing_key is not None else ""
    if env_key or settings.signing_key_file is not None:
        return KeyRing.from_settings(settings, clock=clock)
    directory = settings.signing_key_dir
    keys = _read_directory(directory) if directory.is_dir() else []
    return KeyVerifier([key.info for key in keys])


class KeyRing(KeyVerifier):
    """The platform's signing keys: one current key that signs, retired keys that still verify.

    Build one with ``from_settings`` (or ``open_directory``, ``from_key_file``, ``from_key_b64``).
    A ring reads its directory when built and after its own ``rotate``; a process that must see
    another process's rotation builds a new ring.
    """

    def __init__(self, keys: Sequence[_Key], *, source: KeySource, directory: Path | None = None) -> None:
        self._source = source
        self._directory = directory
        self._load(keys)

    def _load(self, keys: Sequence[_Key]) -> None:
        current = [k for k in keys if k.info.retired_at is None]
        signer = current[0].private if len(current) == 1 else None
        if signer is None:
            raise DomainError(
                code=ErrorCode.SIGNING_KEY_INVALID,
                message=f"a key ring needs exactly one current private key, found {len(current)} current",
            )
        self._current = current[0].info
        self._signer = signer
        self._by_id = {k.info.key_id: k.info for k in keys}

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> KeyRing:
        """The ring the settings name: the environment key, else the key file, else the directory.

        Setting both ``NEUTRALIZE_SIGNING_KEY`` and ``NEUTRALIZE_SIGNING_KEY_FILE`` is refused
        (``SIGNING_KEY_INVALID``) rather than silently preferring one.
        """
        env_key = settings.signing_key.get_secret_value() if settings.signing_key is not None else ""
        if env_key and settings.signing_key_file is not None:
            raise DomainError(
                code=ErrorCode.SIGNING_KEY_INVALID,
                message="set NEUTRALIZE_SIGNING_KEY or NEUTRALIZE_SIGNING_KEY_FILE, not both",
            )
        if env_key:
            return cls.from_key_b64(env_key, clock=clock)
        if settings.signing_key_file is not None:
            return cls.from_key_file(settings.signing_key_file, clock=clock)
        return cls.open_directory(settings.signing_key_dir, clock=clock)

    @classmethod
    def open_directory(cls, directory: Path, *, clock: Clock) -> KeyRing:
        """The ring kept in ``directory``; creates the directory (0700) and a first key if none is current."""
        _ensure_directory(directory)
        with _locked(directory):
            keys = _read_directory(directory)
            if not any(k.info.retired_at is None for k in keys):
                # Empty, or a rotation stopped between retiring the old key and writing the new one.
                keys.append(_write_new_key(directory, clock))
        return cls(keys, source=KeySource.DIRECTORY, directory=directory)

    @classmethod
    def from_key_file(cls, path: Path, *, clock: Clock) -> KeyRing:
        """A ring of the one private key in ``path`` (PEM PKCS#8, or base64 of the raw 32 bytes).

        The key's ``created_at`` is the clock's time at loading: the file does not record one.
        """
        text = _read_private_file(path).decode("ascii", errors="replace").strip()
        private = _private_from_pem(text, path) if text.startswith("-----BEGIN") else _private_from_b64(text)
        return cls([_fixed_key(private, clock)], source=KeySource.FILE)

    @classmethod
    def from_key_b64(cls, value: str, *, clock: Clock) -> KeyRing:
        """A ring of one private key given as base64 of its 32 raw bytes; ``created_at`` is now."""
        return cls([_fixed_key(_private_from_b64(value), clock)], source=KeySource.ENVIRONMENT)

    # -- use ------------------------------------------------------------------------------------

    @property
    def source(self) -> KeySource:
        return self._source

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    def sign(self, data: bytes) -> Signature:
        """Sign ``data`` with the current key."""
        raw = self._signer.sign(data)
        return Signature(key_id=self._current.key_id, signature_b64=base64.b64encode(raw).decode("ascii"))

    def rotate(self, clock: Clock) -> PublicKeyInfo:
        """Retire the current key and make a new one current; returns the new key.

        The retired key's file keeps only its public key, so its old signatures still verify but
        it never signs again. Only a directory ring rotates; a key from a file or the environment
        is replaced where it is configured (``SIGNING_KEY_INVALID`` otherwise).
        """
        if self._directory is None:
            raise DomainError(
                code=ErrorCode.SIGNING_KEY_INVALID,
                message=f"a key from the {self._source.value} cannot be rotated here; replace it there",
            )
        directory = self._directory
        with _locked(directory):
            # Re-read: another process may have rotated since this ring was loaded.
            keys = _read_directory(directory)
            now = clock.now()
            for key in keys:
                if key.info.retired_at is None:
                    _write_key(directory, _Key(_retired(key.info, now), private=None))
            new = _write_new_key(directory, clock)
            keys = _read_directory(directory)
        logger.info("signing key rotated: %s is current", new.info.key_id)
        self._load(keys)
        return new.info

    def published_keys(self) -> dict[str, Any]:
        """The public key set for ``/.well-known/neutralize-keys.json`` (JWK, RFC 8037), oldest first."""
        return {"keys": [_jwk(info) for info in self.public_keys()]}


# -- key material ------------------------------------------------------------------------------------


def _fixed_key(private: Ed25519PrivateKey, clock: Clock) -> _Key:
    public = private.public_key().public_bytes_raw()
    info = PublicKeyInfo(
        key_id=key_id_for(public), public_key=public, created_at=clock.now(), retired_at=None
    )
    return _Key(info, private)


def _private_from_b64(value: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != RAW_KEY_BYTES:
        raise DomainError(
            code=ErrorCode.SIGNING_KEY_INVALID,
            message=f"a signing key must be base64 of {RAW_KEY_BYTES} raw bytes",
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def _private_from_pem(text: str, path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(text.encode("ascii", errors="replace"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DomainError(
            code=ErrorCode.SIGNING_KEY_INVALID,
            message=f"{path} is not an unencrypted PEM private key",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=f"{path} is not an Ed25519 key")
    return key


def _decode_signature(value: str) -> bytes | None:
    if len(value) != _SIGNATURE_B64_CHARS:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == SIGNATURE_BYTES else None


def _retired(info: PublicKeyInfo, at: datetime) -> PublicKeyInfo:
    return PublicKeyInfo(info.key_id, info.public_key, info.created_at, retired_at=at)


def _key_order(info: PublicKeyInfo) -> tuple[bool, datetime, str]:
    return (info.retired_at is None, info.created_at, info.key_id)


def _jwk(info: PublicKeyInfo) -> dict[str, Any]:
    return {
        "kid": info.key_id,
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(info.public_key).rstrip(b"=").decode("ascii"),
        "created_at": utc_iso(info.created_at),
        "retired_at": None if info.retired_at is None else utc_iso(info.retired_at),
        "status": info.status,
    }


# -- the key directory ---------------------------------------------------------------------------------


def _ensure_directory(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask; say it outright.
    directory.chmod(0o700)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_directory(directory: Path) -> list[_Key]:
    paths = sorted(p for p in directory.iterdir() if _KEY_FILE_RE.match(p.name))
    if len(paths) > MAX_KEYS:
        raise DomainError(
            code=ErrorCode.SIGNING_KEY_INVALID,
            message=f"{directory} holds {len(paths)} keys, more than {MAX_KEYS}",
        )
    return [_parse_key_file(p, _read_private_file(p)) for p in paths]


def _read_private_file(path: Path) -> bytes:
    """The bytes of a file that may hold a private key; refuses one others could read or change."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=f"cannot open {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        # fstat the open file, not the path, so the file checked is the file read.
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=f"{path} is not a regular file")
        if st.st_mode & 0o077:
            raise DomainError(
                code=ErrorCode.SIGNING_KEY_UNSAFE,
                message=f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; a private key file must be 0600",
            )
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=f"{path} is too large for a key file")
    return data


def _parse_key_file(path: Path, data: bytes) -> _Key:
    try:
        doc = json.loads(data)
        public = base64.urlsafe_b64decode(doc["public_key"] + "==")
        created_at = _parse_utc(doc["created_at"])
        retired_at = None if doc["retired_at"] is None else _parse_utc(doc["retired_at"])
        private_b64 = doc.get("private_key")
        private = None if private_b64 is None else _private_from_b64(private_b64)
        kid = doc["kid"]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=f"{path} is not a key file") from exc
    problem = _inconsistency(path, kid, public, private, retired_at)
    if problem:
        raise DomainError(code=ErrorCode.SIGNING_KEY_INVALID, message=problem)
    return _Key(PublicKeyInfo(kid, public, created_at, retired_at), private)


def _inconsistency(
    path: Path, kid: str, public: bytes, private: Ed25519PrivateKey | None, retired_at: datetime | None
) -> str | None:
    if len(public) != RAW_KEY_BYTES or kid != key_id_for(public):
        return f"{path}: key id does not match its public key"
    if path.name != _file_name(kid):
        return f"{path}: file name does not match key id {kid}"
    if private is not None and private.public_key().public_bytes_raw() != public:
        return f"{path}: private key does not match its public key"
    if private is None and retired_at is None:
        return f"{path}: a current key needs its private key"
    return None


def _parse_utc(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError("naive timestamp")
    return at.astimezone(UTC)


def _file_name(kid: str) -> str:
    return f"ed25519-{kid.removeprefix(KEY_ID_PREFIX)}.json"


def _write_new_key(directory: Path, clock: Clock) -> _Key:
    key = _fixed_key(Ed25519PrivateKey.generate(), clock)
    _write_key(directory, key)
    logger.info("signing key created: %s", key.info.key_id)
    return key


def _write_key(directory: Path, key: _Key) -> None:
    info = key.info
    doc: dict[str, Any] = {
        "kid": info.key_id,
        "public_key": base64.urlsafe_b64encode(info.public_key).rstrip(b"=").decode("ascii"),
        "created_at": utc_iso(info.created_at),
        "retired_at": None if info.retired_at is None else utc_iso(info.retired_at),
    }
    if key.private is not None:
        doc["private_key"] = base64.b64encode(key.private.private_bytes_raw()).decode("ascii")
    _write_atomically(directory / _file_name(info.key_id), canonical_json(doc) + b"\n")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a 0600 temporary file in the same directory, then rename it over ``path``."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # mkstemp's mode already; say it outright
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- verifying with published keys only ------------------------------------------------------------------


def check_published(published: Any, data: bytes, signature: Signature) -> VerifyOutcome:
    """Verify ``signature`` over ``data`` with a published key set (the JSON of
    ``/.well-known/neutralize-keys.json``) and no private key: what an offline verifier does."""
    keys = published.get("keys") if isinstance(published, dict) else None
    for jwk in keys if isinstance(keys, list) else []:
        if not isinstance(jwk, dict) or jwk.get("kid") != signature.key_id:
            continue
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or not isinstance(jwk.get("x"), str):
            return VerifyOutcome.UNKNOWN_KEY
        try:
            public = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            key = Ed25519PublicKey.from_public_bytes(public)
        except (binascii.Error, ValueError):
            return VerifyOutcome.UNKNOWN_KEY
        raw = _decode_signature(signature.signature_b64)
        if raw is None:
            return VerifyOutcome.MALFORMED_SIGNATURE
        try:
            key.verify(raw, data)
        except InvalidSignature:
            return VerifyOutcome.BAD_SIGNATURE
        return VerifyOutcome.VALID
    return VerifyOutcome.UNKNOWN_KEY
