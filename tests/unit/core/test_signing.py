"""Signing keys: where they come from, how they are kept, sign/verify, rotation, canonical JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import SecretStr

from neutralize.core.canonical import canonical_json
from neutralize.core.clock import FixedClock
from neutralize.core.config import Settings
from neutralize.core.errors import DomainError, ErrorCode
from neutralize.core.signing import (
    KeyRing,
    KeySource,
    Signature,
    VerifyOutcome,
    key_id_for,
)

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
T1 = T0 + timedelta(days=90)

# RFC 8032 §7.1 TEST 1 (the key RFC 8037 Appendix A uses): a deterministic signature of b"".
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_SIGNATURE_EMPTY = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC_8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC_KID = "ed25519:" + hashlib.sha256(RFC_PUBLIC).hexdigest()[:16]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("ed25519-*.json"))


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With umask 0, only explicit modes keep key files private.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.open_directory(tmp_path / "keys", clock=FixedClock(T0))


# -- the key directory -------------------------------------------------------------------------------


def test_first_use_creates_one_private_key_with_owner_only_modes(
    tmp_path: Path, permissive_umask: None
) -> None:
    # Given a key directory that does not exist yet
    directory = tmp_path / "var" / "keys"
    # When the ring is first opened
    ring = KeyRing.open_directory(directory, clock=FixedClock(T0))
    # Then it made the directory 0700 and one key file 0600 named after the key id
    assert mode(directory) == 0o700
    [path] = key_files(directory)
    assert mode(path) == 0o600
    assert path.name == "ed25519-" + ring.current_key_id.removeprefix("ed25519:") + ".json"
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    [info] = ring.public_keys()
    assert (info.created_at, info.retired_at, info.status) == (T0, None, "current")
    assert ring.source is KeySource.DIRECTORY


def test_an_existing_key_is_reused_not_replaced(tmp_path: Path) -> None:
    first = KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    again = KeyRing.open_directory(tmp_path, clock=FixedClock(T1))
    assert again.current_key_id == first.current_key_id
    assert again.public_keys()[0].created_at == T0
    assert len(key_files(tmp_path)) == 1
    # And a signature made by one process verifies in the other
    assert again.verify(b"journal", first.sign(b"journal"))


def test_key_id_is_sha256_of_the_raw_public_key(ring: KeyRing) -> None:
    [info] = ring.public_keys()
    assert len(info.public_key) == 32
    assert ring.current_key_id == "ed25519:" + hashlib.sha256(info.public_key).hexdigest()[:16]
    assert key_id_for(RFC_PUBLIC) == RFC_KID


@pytest.mark.parametrize("unsafe_mode", [0o640, 0o604, 0o620, 0o644])
def test_a_key_file_others_can_read_or_change_is_refused(tmp_path: Path, unsafe_mode: int) -> None:
    KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    [path] = key_files(tmp_path)
    path.chmod(unsafe_mode)
    with pytest.raises(DomainError) as caught:
        KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_UNSAFE


def test_a_key_file_whose_id_does_not_match_its_key_is_refused(tmp_path: Path) -> None:
    KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    [path] = key_files(tmp_path)
    doc = json.loads(path.read_bytes())
    doc["public_key"] = base64.urlsafe_b64encode(RFC_PUBLIC).rstrip(b"=").decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(DomainError) as caught:
        KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_INVALID


# -- keys from the environment or a file ---------------------------------------------------------------


def test_environment_key_is_used_and_no_directory_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY", base64.b64encode(RFC_SECRET).decode())
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_DIR", str(tmp_path / "keys"))
    ring = KeyRing.from_settings(Settings(), clock=FixedClock(T0))
    assert ring.current_key_id == RFC_KID
    assert ring.source is KeySource.ENVIRONMENT
    assert not (tmp_path / "keys").exists()


def test_settings_default_to_the_key_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().signing_key_dir == Path("./var/keys")
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_DIR", str(tmp_path / "keys"))
    ring = KeyRing.from_settings(Settings(), clock=FixedClock(T0))
    assert ring.source is KeySource.DIRECTORY
    assert len(key_files(tmp_path / "keys")) == 1


def write_private(path: Path, data: bytes, file_mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(file_mode)
    return path


def pem_of(secret: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(secret)
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


@pytest.mark.parametrize(
    "content", [pem_of(RFC_SECRET), base64.b64encode(RFC_SECRET) + b"\n"], ids=["pem", "base64"]
)
def test_key_file_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    path = write_private(tmp_path / "signing.key", content, 0o600)
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_FILE", str(path))
    ring = KeyRing.from_settings(Settings(), clock=FixedClock(T0))
    assert ring.current_key_id == RFC_KID
    assert ring.source is KeySource.FILE
    assert ring.sign(b"").signature_b64 == base64.b64encode(RFC_SIGNATURE_EMPTY).decode()


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = write_private(tmp_path / "signing.key", pem_of(RFC_SECRET), 0o644)
    with pytest.raises(DomainError) as caught:
        KeyRing.from_key_file(path, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_UNSAFE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64!",
        base64.b64encode(RFC_SECRET[:31]).decode(),
        base64.b64encode(RFC_SECRET * 2).decode(),
    ],
    ids=["empty", "not-base64", "31-bytes", "64-bytes"],
)
def test_malformed_key_is_refused(value: str) -> None:
    with pytest.raises(DomainError) as caught:
        KeyRing.from_key_b64(value, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_INVALID


def test_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = write_private(tmp_path / "signing.key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n", 0o600)
    with pytest.raises(DomainError) as caught:
        KeyRing.from_key_file(path, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_INVALID


def test_setting_both_environment_key_and_key_file_is_refused(tmp_path: Path) -> None:
    path = write_private(tmp_path / "signing.key", pem_of(RFC_SECRET), 0o600)
    settings = Settings(
        signing_key=SecretStr(base64.b64encode(RFC_SECRET).decode()),
        signing_key_file=path,
        signing_key_dir=tmp_path / "keys",
    )
    with pytest.raises(DomainError) as caught:
        KeyRing.from_settings(settings, clock=FixedClock(T0))
    assert caught.value.code is ErrorCode.SIGNING_KEY_INVALID


def test_the_environment_key_is_not_shown_in_settings() -> None:
    secret = base64.b64encode(RFC_SECRET).decode()
    assert secret not in repr(Settings(signing_key=SecretStr(secret)))


# -- sign and verify -----------------------------------------------------------------------------------


def test_signature_matches_the_rfc_8032_test_vector() -> None:
    ring = KeyRing.from_key_b64(base64.b64encode(RFC_SECRET).decode(), clock=FixedClock(T0))
    signature = ring.sign(b"")
    assert signature == Signature(RFC_KID, base64.b64encode(RFC_SIGNATURE_EMPTY).decode())
    assert ring.verify(b"", signature)


def test_signed_data_verifies(ring: KeyRing) -> None:
    data = canonical_json({"certificate": "c_1", "kg_co2e": Decimal("12.500000")})
    signature = ring.sign(data)
    assert signature.key_id == ring.current_key_id
    assert len(base64.b64decode(signature.signature_b64)) == 64
    assert ring.check(data, signature) is VerifyOutcome.VALID
    assert ring.verify(data, signature) is True


def test_tampered_data_does_not_verify(ring: KeyRing) -> None:
    data = canonical_json({"certificate": "c_1", "kg_co2e": Decimal("12.500000")})
    signature = ring.sign(data)
    tampered = canonical_json({"certificate": "c_1", "kg_co2e": Decimal("12.500001")})
    assert ring.verify(tampered, signature) is False
    assert ring.check(tampered, signature) is VerifyOutcome.BAD_SIGNATURE


def test_tampered_signature_does_not_verify(ring: KeyRing) -> None:
    signature = ring.sign(b"data")
    raw = bytearray(base64.b64decode(signature.signature_b64))
    raw[0] ^= 1
    flipped = Signature(signature.key_id, base64.b64encode(bytes(raw)).decode())
    assert ring.check(b"data", flipped) is VerifyOutcome.BAD_SIGNATURE
    for garbage in ("", "!" * 88, signature.signature_b64 + "AAAA", signature.signature_b64[:-4]):
        assert ring.check(b"data", Signature(signature.key_id, garbage)) is VerifyOutcome.MALFORMED_SIGNATURE


def test_unknown_key_id_does_not_verify_and_says_why(ring: KeyRing) -> None:
    signature = ring.sign(b"data")
    stranger = Signature("ed25519:0000000000000000", signature.signature_b64)
    assert ring.verify(b"data", stranger) is False
    assert ring.check(b"data", stranger) is VerifyOutcome.UNKNOWN_KEY


def test_a_signature_by_another_ring_does_not_verify(tmp_path: Path) -> None:
    ours = KeyRing.open_directory(tmp_path / "ours", clock=FixedClock(T0))
    theirs = KeyRing.open_directory(tmp_path / "theirs", clock=FixedClock(T0))
    assert ours.check(b"data", theirs.sign(b"data")) is VerifyOutcome.UNKNOWN_KEY


# -- rotation -------------------------------------------------------------------------------------------


def test_rotation_keeps_old_signatures_verifiable_and_signs_with_the_new_key(tmp_path: Path) -> None:
    # Given a ring that signed something
    ring = KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    old_kid = ring.current_key_id
    old_signature = ring.sign(b"issued before rotation")
    # When it rotates
    new_info = ring.rotate(FixedClock(T1))
    # Then new signatures carry the new key id and old ones still verify
    assert new_info.key_id == ring.current_key_id != old_kid
    new_signature = ring.sign(b"issued after rotation")
    assert new_signature.key_id == new_info.key_id
    assert ring.verify(b"issued before rotation", old_signature)
    assert ring.verify(b"issued after rotation", new_signature)
    assert [(k.key_id, k.created_at, k.retired_at) for k in ring.public_keys()] == [
        (old_kid, T0, T1),
        (new_info.key_id, T1, None),
    ]
    # And a fresh ring on the same directory sees the same
    reopened = KeyRing.open_directory(tmp_path, clock=FixedClock(T1))
    assert reopened.current_key_id == new_info.key_id
    assert reopened.verify(b"issued before rotation", old_signature)


def test_a_retired_key_file_keeps_no_private_key(tmp_path: Path) -> None:
    ring = KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    old_kid = ring.current_key_id
    ring.rotate(FixedClock(T1))
    docs = {json.loads(p.read_bytes())["kid"]: json.loads(p.read_bytes()) for p in key_files(tmp_path)}
    assert "private_key" not in docs[old_kid]
    assert "private_key" in docs[ring.current_key_id]
    assert all(mode(p) == 0o600 for p in key_files(tmp_path))


def test_a_rotation_cut_short_after_retiring_gets_a_new_current_key(tmp_path: Path) -> None:
    # Given a directory whose only key is retired (the new key's file never written)
    ring = KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    old_kid = ring.current_key_id
    new_kid = ring.rotate(FixedClock(T1)).key_id
    (tmp_path / ("ed25519-" + new_kid.removeprefix("ed25519:") + ".json")).unlink()
    # When a ring opens it, then it makes a new current key and keeps the retired one
    reopened = KeyRing.open_directory(tmp_path, clock=FixedClock(T1))
    assert reopened.current_key_id not in (old_kid, new_kid)
    assert [k.status for k in reopened.public_keys()] == ["retired", "current"]


def test_a_fixed_key_cannot_be_rotated() -> None:
    ring = KeyRing.from_key_b64(base64.b64encode(RFC_SECRET).decode(), clock=FixedClock(T0))
    with pytest.raises(DomainError) as caught:
        ring.rotate(FixedClock(T1))
    assert caught.value.code is ErrorCode.SIGNING_KEY_INVALID
    assert ring.current_key_id == RFC_KID


# -- published keys ------------------------------------------------------------------------------------


def test_published_keys_of_the_rfc_key_are_rfc_8037_jwks() -> None:
    ring = KeyRing.from_key_b64(base64.b64encode(RFC_SECRET).decode(), clock=FixedClock(T0))
    assert ring.published_keys() == {
        "keys": [
            {
                "kid": RFC_KID,
                "kty": "OKP",
                "crv": "Ed25519",
                "x": RFC_8037_X,
                "created_at": "2026-03-01T09:30:00Z",
                "retired_at": None,
                "status": "current",
            }
        ]
    }


def test_published_keys_list_retired_and_current_keys_as_json(tmp_path: Path) -> None:
    ring = KeyRing.open_directory(tmp_path, clock=FixedClock(T0))
    old_kid = ring.current_key_id
    ring.rotate(FixedClock(T1))
    document = json.loads(json.dumps(ring.published_keys()))
    retired, current = document["keys"]
    assert (retired["kid"], retired["status"], retired["retired_at"]) == (
        old_kid,
        "retired",
        "2026-05-30T09:30:00Z",
    )
    assert (current["kid"], current["status"], current["retired_at"]) == (
        ring.current_key_id,
        "current",
        None,
    )
    for jwk in document["keys"]:
        assert set(jwk) == {"kid", "kty", "crv", "x", "created_at", "retired_at", "status"}
        assert "=" not in jwk["x"] and "d" not in jwk
        raw = base64.urlsafe_b64decode(jwk["x"] + "=")
        assert key_id_for(raw) == jwk["kid"]


# -- canonical JSON ------------------------------------------------------------------------------------


def test_canonical_json_is_independent_of_key_order() -> None:
    one = {"b": 1, "a": {"y": [3, 2, 1], "x": None}, "c": True}
    two = {"c": True, "a": {"x": None, "y": [3, 2, 1]}, "b": 1}
    assert canonical_json(one) == canonical_json(two) == b'{"a":{"x":null,"y":[3,2,1]},"b":1,"c":true}'


def test_canonical_json_writes_unicode_as_utf8_and_escapes_only_what_json_needs() -> None:
    data = {"name": "Zürich — café ✓", "quote": 'a"b\\c', "control": "\n\t\u001f"}
    assert canonical_json(data) == (
        '{"control":"\\n\\t\\u001f","name":"Zürich — café ✓","quote":"a\\"b\\\\c"}'.encode()
    )


def test_canonical_json_sorts_keys_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) in UTF-16, so it sorts before U+FB01; RFC 8785 §3.2.3.
    data = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(data) == '{"a":3,"\U0001f600":2,"\ufb01":1}'.encode()


def test_canonical_json_writes_decimals_as_strings_keeping_their_scale() -> None:
    data = {"a": Decimal("1.10"), "b": Decimal("1E+2"), "c": Decimal("0.000001"), "d": Decimal("-3")}
    assert canonical_json(data) == b'{"a":"1.10","b":"100","c":"0.000001","d":"-3"}'


def test_canonical_json_writes_datetimes_in_utc_with_z() -> None:
    paris = timezone(timedelta(hours=2))
    data = [
        datetime(2026, 3, 1, 11, 30, tzinfo=paris),
        datetime(2026, 3, 1, 9, 30, 0, 250_000, tzinfo=UTC),
        date(2026, 3, 1),
    ]
    assert canonical_json(data) == b'["2026-03-01T09:30:00Z","2026-03-01T09:30:00.250000Z","2026-03-01"]'


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), TypeError),
        (1.5, TypeError),
        (Decimal("NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (datetime(2026, 3, 1, 9, 30), ValueError),  # noqa: DTZ001 — the naive datetime under test
        ({1: "a"}, TypeError),
        ({"a", "b"}, TypeError),
        (b"bytes", TypeError),
    ],
    ids=["nan", "float", "decimal-nan", "decimal-inf", "naive-datetime", "int-key", "set", "bytes"],
)
def test_canonical_json_refuses_values_without_one_canonical_form(
    value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        canonical_json({"value": value})


def test_canonical_json_limits_nesting() -> None:
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError):
        canonical_json(deep)
