"""The crypto recipe layer: known answers, misuse errors, one opaque integrity error."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from credguard.errors import ExitCode, IntegrityError
from credguard.vault import crypto
from credguard.vault.crypto import VaultIntegrityError

KEY = bytes(range(32))  # test key, not a secret
NONCE = bytes(12)
AAD = b"associated"
SMALL = {"n": 2**10, "r": 8, "p": 1}


# ---- known answers -------------------------------------------------------------------------


def test_gcm_known_answers_from_the_gcm_specification() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (AES-256).
    _, ct = crypto.encrypt(bytes(32), b"", b"", nonce=bytes(12))
    assert ct.hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    _, ct = crypto.encrypt(bytes(32), bytes(16), b"", nonce=bytes(12))
    assert ct.hex() == "cea7403d4d606b6e074ec5d3baf39d18" + "d0d1c8a799996bf0265b98b5d48ab919"


def test_scrypt_known_answer_from_rfc_7914() -> None:
    # RFC 7914 section 12, P="password", S="NaCl", N=1024, r=8, p=16 (first 32 of 64 bytes).
    key = crypto.derive_key(b"password", b"NaCl", 1024, 8, 16)
    assert key.hex() == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"


def test_sha256_hex() -> None:
    assert crypto.sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()


# ---- round trips and randomness ------------------------------------------------------------


def test_round_trip_with_random_nonce() -> None:
    nonce, ct = crypto.encrypt(KEY, b"hello", AAD)
    assert len(nonce) == crypto.NONCE_SIZE
    assert len(ct) == len(b"hello") + crypto.TAG_SIZE
    assert crypto.decrypt(KEY, nonce, ct, AAD) == b"hello"


def test_nonces_and_keys_are_fresh() -> None:
    assert len({crypto.encrypt(KEY, b"x", AAD)[0] for _ in range(50)}) == 50
    keys = {crypto.new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == crypto.KEY_SIZE for k in keys)
    assert len(crypto.new_salt()) == crypto.SALT_SIZE


def test_derive_key_is_deterministic_and_salted() -> None:
    a = crypto.derive_key(b"pass", b"salt-one-16bytes", **SMALL)
    assert a == crypto.derive_key(b"pass", b"salt-one-16bytes", **SMALL)
    assert a != crypto.derive_key(b"pass", b"salt-two-16bytes", **SMALL)
    assert a != crypto.derive_key(b"pasS", b"salt-one-16bytes", **SMALL)
    assert len(a) == crypto.KEY_SIZE


def test_scrypt_defaults_are_a_real_cost() -> None:
    assert crypto.SCRYPT_DEFAULTS["n"] >= 2**17
    crypto.check_scrypt_params(**crypto.SCRYPT_DEFAULTS)


# ---- authentication failures: one opaque error ---------------------------------------------


def _assert_opaque(exc: pytest.ExceptionInfo[IntegrityError], *secrets: bytes) -> None:
    assert str(exc.value) == crypto.INTEGRITY_MESSAGE
    assert exc.value.exit_code == ExitCode.INTEGRITY
    for secret in secrets:
        assert secret.decode("latin-1") not in str(exc.value)
        assert secret.hex() not in str(exc.value)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda k, n, c, a: (bytes(32), n, c, a), id="wrong-key"),
        pytest.param(lambda k, n, c, a: (k, bytes(12), c, a), id="wrong-nonce"),
        pytest.param(lambda k, n, c, a: (k, n, c, a + b"!"), id="wrong-aad"),
        pytest.param(lambda k, n, c, a: (k, n, c[:-1], a), id="truncated"),
        pytest.param(lambda k, n, c, a: (k, n, c[:5], a), id="shorter-than-tag"),
        pytest.param(lambda k, n, c, a: (k, n, b"", a), id="empty"),
        pytest.param(lambda k, n, c, a: (k, n, c + b"\0", a), id="extended"),
        pytest.param(lambda k, n, c, a: (k, n, bytes([c[0] ^ 1]) + c[1:], a), id="flipped"),
    ],
)
def test_every_authentication_failure_is_the_same_opaque_error(tamper: Any) -> None:
    plaintext = b"top secret plaintext"
    nonce, ct = crypto.encrypt(KEY, plaintext, AAD)
    with pytest.raises(VaultIntegrityError) as exc:
        crypto.decrypt(*tamper(KEY, nonce, ct, AAD))
    _assert_opaque(exc, plaintext, KEY)
    assert exc.value.__cause__ is None


# ---- misuse: precise TypeError / ValueError at once ----------------------------------------


@pytest.mark.parametrize("bad", [bytes(16), bytes(31), bytes(33), b""])
def test_wrong_key_length_is_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        crypto.encrypt(bad, b"x", AAD)
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        crypto.decrypt(bad, NONCE, bytes(20), AAD)


@pytest.mark.parametrize("bad", [bytes(8), bytes(16), b""])
def test_wrong_nonce_length_is_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        crypto.encrypt(KEY, b"x", AAD, nonce=bad)
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        crypto.decrypt(KEY, bad, bytes(20), AAD)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: crypto.encrypt("k" * 32, b"x", AAD), id="str-key"),
        pytest.param(lambda: crypto.encrypt(bytearray(KEY), b"x", AAD), id="bytearray-key"),
        pytest.param(lambda: crypto.encrypt(KEY, "text", AAD), id="str-plaintext"),
        pytest.param(lambda: crypto.encrypt(KEY, b"x", "aad"), id="str-aad-encrypt"),
        pytest.param(lambda: crypto.encrypt(KEY, b"x", None), id="none-aad"),
        pytest.param(lambda: crypto.encrypt(KEY, b"x", AAD, nonce="n" * 12), id="str-nonce"),
        pytest.param(lambda: crypto.decrypt(KEY, NONCE, "c" * 20, AAD), id="str-ct"),
        pytest.param(lambda: crypto.decrypt(KEY, NONCE, bytes(20), "a"), id="str-aad"),
        pytest.param(lambda: crypto.derive_key("pw", b"salt", **SMALL), id="str-passphrase"),
        pytest.param(lambda: crypto.derive_key(b"pw", "salt", **SMALL), id="str-salt"),
        pytest.param(lambda: crypto.derive_key(b"pw", b"salt", 1024.0, 8, 1), id="float-n"),
        pytest.param(lambda: crypto.sha256_hex("abc"), id="str-sha"),
    ],
)
def test_non_bytes_is_type_error(call: Any) -> None:
    with pytest.raises(TypeError):
        call()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: crypto.encrypt(KEY, "text", AAD), "plaintext must be bytes, not str"),
    (lambda: crypto.encrypt(KEY, b"x", None), "aad must be bytes, not NoneType"),
    (lambda: crypto.decrypt(KEY, NONCE, "c" * 20, AAD), "ciphertext must be bytes, not str"),
    (lambda: crypto.decrypt(KEY, NONCE, bytes(20), "a"), "aad must be bytes, not str"),
], ids=["plaintext", "aad-encrypt", "ciphertext", "aad-decrypt"])
def test_a_type_error_names_the_argument_and_the_type_given(call: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("n", "r", "p"),
    [
        (1000, 8, 1),
        (1, 8, 1),
        (0, 8, 1),
        (2**10, 0, 1),
        (2**10, 8, 0),
        (2**10, 8, 17),
        (2**21, 8, 1),
    ],
)
def test_bad_scrypt_params_are_value_errors(n: int, r: int, p: int) -> None:
    with pytest.raises(ValueError):
        crypto.derive_key(b"pw", b"salt", n, r, p)


def test_empty_salt_is_value_error() -> None:
    with pytest.raises(ValueError, match="salt"):
        crypto.derive_key(b"pw", b"", **SMALL)


# ---- found by mutation testing (docs/mutation.md) ------------------------------------------


def test_scrypt_parameter_bounds_are_exact() -> None:
    """r = 1 is allowed; the memory bound is inclusive (128 * n * r == SCRYPT_MAX_MEMORY)."""
    crypto.check_scrypt_params(2, 1, 1)
    n = 1 << 10
    r = crypto.SCRYPT_MAX_MEMORY // (128 * n)
    assert 128 * n * r == crypto.SCRYPT_MAX_MEMORY
    crypto.check_scrypt_params(n, r, 1)
    with pytest.raises(ValueError) as info:
        crypto.check_scrypt_params(n, r + 1, 1)
    assert str(info.value) == "scrypt n * r exceeds the memory bound"
    with pytest.raises(ValueError, match="exceeds the memory bound"):
        crypto.check_scrypt_params(n, 0, 1)


@pytest.mark.parametrize(("args", "message"), [
    (("16", 8, 1), "scrypt n must be an int"),
    ((16, True, 1), "scrypt r must be an int"),
    ((16, 8, 1.0), "scrypt p must be an int"),
])
def test_scrypt_type_errors_name_the_parameter(args: Any, message: str) -> None:
    with pytest.raises(TypeError) as info:
        crypto.check_scrypt_params(*args)
    assert str(info.value) == message


def test_sha256_hex_names_its_argument() -> None:
    with pytest.raises(TypeError) as info:
        crypto.sha256_hex("text")  # type: ignore[arg-type]
    assert str(info.value) == "data must be bytes, not str"
