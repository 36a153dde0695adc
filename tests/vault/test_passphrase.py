"""The passphrase keystore: wrapped keys under a scrypt KEK, in one private JSON file."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from credguard.errors import ExitCode, KeystoreError
from credguard.vault import crypto
from credguard.vault.format import new_key_id
from credguard.vault.passphrase import PassphraseKeystore

FAST = {"n": 2**10, "r": 8, "p": 1}
PASSPHRASE = b"correct horse battery staple"


class Source:
    """A passphrase source that counts how often it was asked."""

    def __init__(self, value: bytes = PASSPHRASE) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.value


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "vault" / "passphrase-keystore.json"


def _store(path: Path, source: Callable[[], bytes] | None = None) -> PassphraseKeystore:
    return PassphraseKeystore(path, source or Source(), scrypt_params=FAST)


def _doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _rewrite(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**_doc(path), **changes}))


def test_put_get_delete(path: Path) -> None:
    ks = _store(path)
    kid, key = new_key_id(), crypto.new_key()
    ks.put_key(kid, key)
    assert ks.get_key(kid) == key
    ks.delete_key(kid)
    with pytest.raises(KeystoreError, match=f"vault key {kid} is not in") as exc:
        ks.get_key(kid)
    assert exc.value.exit_code == ExitCode.KEYSTORE


def test_name_names_the_backend_and_path(path: Path) -> None:
    assert _store(path).name == f"passphrase (scrypt, {path})"


def test_several_keys_and_a_new_instance_reads_them(path: Path) -> None:
    keys = {new_key_id(): crypto.new_key() for _ in range(3)}
    ks = _store(path)
    for kid, key in keys.items():
        ks.put_key(kid, key)
    again = PassphraseKeystore(path, Source(), scrypt_params={"n": 2**11, "r": 8, "p": 1})
    assert {kid: again.get_key(kid) for kid in keys} == keys
    assert _doc(path)["n"] == FAST["n"]  # the file's own parameters win


def test_keys_are_written_once(path: Path) -> None:
    ks = _store(path)
    kid, key = new_key_id(), crypto.new_key()
    ks.put_key(kid, key)
    with pytest.raises(KeystoreError, match="already exists"):
        ks.put_key(kid, crypto.new_key())
    assert _store(path).get_key(kid) == key


def test_delete_missing_is_not_an_error_and_needs_no_passphrase(path: Path) -> None:
    source = Source()
    ks = _store(path, source)
    ks.delete_key(new_key_id())  # no file yet
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    ks.delete_key(new_key_id())
    ks.delete_key(kid)
    assert source.calls == 0
    assert _doc(path)["keys"] == {}


def test_missing_key_does_not_ask_for_the_passphrase(path: Path) -> None:
    source = Source()
    with pytest.raises(KeystoreError, match="is not in"):
        _store(path, source).get_key(new_key_id())
    assert source.calls == 0


def test_passphrase_is_asked_once_and_kek_derived_once(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Source()
    derivations = []
    real = crypto.derive_key

    def counting(*args: Any) -> bytes:
        derivations.append(args[2:])
        return real(*args)

    monkeypatch.setattr(crypto, "derive_key", counting)
    ks = _store(path, source)
    kids = [new_key_id() for _ in range(3)]
    for kid in kids:
        ks.put_key(kid, crypto.new_key())
    for kid in kids:
        ks.get_key(kid)
    assert source.calls == 1
    assert len(derivations) == 1


def test_wrong_passphrase(path: Path) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    source = Source(b"wrong horse")
    ks = _store(path, source)
    for _ in range(2):
        with pytest.raises(KeystoreError) as exc:
            ks.get_key(kid)
        assert str(exc.value) == "wrong passphrase for the vault"
        assert b"wrong horse".decode() not in str(exc.value)
    assert source.calls == 2  # a wrong passphrase is forgotten, so it can be asked again
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        ks.put_key(new_key_id(), crypto.new_key())


def test_wrong_passphrase_is_detected_with_no_keys(path: Path) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    _store(path).delete_key(kid)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        _store(path, Source(b"other")).put_key(new_key_id(), crypto.new_key())


def test_empty_or_non_bytes_passphrase_refused(path: Path) -> None:
    with pytest.raises(KeystoreError, match="empty passphrase"):
        _store(path, Source(b"")).put_key(new_key_id(), crypto.new_key())
    with pytest.raises(TypeError):
        _store(path, lambda: "text").put_key(new_key_id(), crypto.new_key())  # type: ignore[arg-type,return-value]
    assert not path.exists()


def test_file_is_private_and_holds_no_plain_key(path: Path) -> None:
    kid, key = new_key_id(), crypto.new_key()
    _store(path).put_key(kid, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    for form in (key, key.hex().encode(), base64.b64encode(key), PASSPHRASE):
        assert form not in raw
    doc = _doc(path)
    assert doc["version"] == 1
    assert doc["kdf"] == "scrypt"
    assert (doc["n"], doc["r"], doc["p"]) == (FAST["n"], FAST["r"], FAST["p"])
    assert len(base64.b64decode(doc["salt"])) == crypto.SALT_SIZE
    assert set(doc["keys"]) == {kid}
    assert set(doc["keys"][kid]) == {"nonce", "wrapped"}


def test_salt_is_fresh_per_keystore(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _store(a).put_key(new_key_id(), crypto.new_key())
    _store(b).put_key(new_key_id(), crypto.new_key())
    assert _doc(a)["salt"] != _doc(b)["salt"]


def test_newer_version_refused(path: Path) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    _rewrite(path, version=2)
    for call in (
        lambda ks: ks.get_key(kid),
        lambda ks: ks.put_key(new_key_id(), crypto.new_key()),
        lambda ks: ks.delete_key(kid),
    ):
        with pytest.raises(KeystoreError, match="written by a newer credguard"):
            call(_store(path))


def test_wrapped_keys_cannot_be_moved_between_ids(path: Path) -> None:
    a, b = new_key_id(), new_key_id()
    ks = _store(path)
    ks.put_key(a, crypto.new_key())
    ks.put_key(b, crypto.new_key())
    doc = _doc(path)
    doc["keys"][a], doc["keys"][b] = doc["keys"][b], doc["keys"][a]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="damaged") as exc:
        _store(path).get_key(a)
    assert "wrong passphrase" not in str(exc.value)


def test_changed_parameters_read_as_a_wrong_passphrase(path: Path) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    _rewrite(path, n=2**11)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        _store(path).get_key(kid)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"version": 0}, id="version-0"),
        pytest.param({"version": "1"}, id="version-str"),
        pytest.param({"version": True}, id="version-bool"),
        pytest.param({"version": None}, id="version-none"),
        pytest.param({"kdf": "pbkdf2"}, id="kdf"),
        pytest.param({"salt": "not base64!"}, id="salt-b64"),
        pytest.param({"salt": base64.b64encode(b"short").decode()}, id="salt-short"),
        pytest.param({"n": 1000}, id="n-not-power"),
        pytest.param({"n": 2**4}, id="n-too-small"),
        pytest.param({"n": 2**30}, id="n-too-large"),
        pytest.param({"r": True}, id="r-bool"),
        pytest.param({"p": 0}, id="p-zero"),
        pytest.param({"keys": []}, id="keys-list"),
        pytest.param({"keys": {"NOT-A-KEY-ID": {}}}, id="key-id"),
        pytest.param({"check": None}, id="no-check"),
    ],
)
def test_damaged_file_refused(path: Path, changes: dict[str, Any]) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    _rewrite(path, **changes)
    with pytest.raises(KeystoreError, match="is damaged"):
        _store(path).get_key(kid)


@pytest.mark.parametrize("content", [b"", b"{", b"\xff\xfe", b"[]", b"null"])
def test_garbage_file_refused(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match="is damaged"):
        _store(path).get_key(new_key_id())


def test_wrapped_key_of_wrong_size_refused(path: Path) -> None:
    kid = new_key_id()
    _store(path).put_key(kid, crypto.new_key())
    doc = _doc(path)
    doc["keys"][kid]["wrapped"] = base64.b64encode(bytes(20)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="is damaged"):
        _store(path).get_key(kid)


def test_symlinked_file_refused(path: Path, tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    _store(real).put_key(new_key_id(), crypto.new_key())
    path.parent.mkdir(parents=True)
    path.symlink_to(real)
    with pytest.raises(KeystoreError, match="cannot read"):
        _store(path).get_key(new_key_id())


def test_unreadable_directory_in_place_of_the_file(path: Path) -> None:
    path.mkdir(parents=True)
    with pytest.raises(KeystoreError, match="cannot read"):
        _store(path).get_key(new_key_id())


def test_write_failure_is_a_keystore_error(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("credguard.vault.passphrase.atomic_write", full)
    with pytest.raises(KeystoreError, match="cannot write the passphrase keystore") as exc:
        _store(path).put_key(new_key_id(), crypto.new_key())
    assert exc.value.__cause__ is None


@pytest.mark.parametrize(
    ("key_id", "key", "error"),
    [
        ("XYZ", bytes(32), ValueError),
        ("0123456789ABCDEF", bytes(32), ValueError),
        ("0123456789abcdef", bytes(16), ValueError),
        ("0123456789abcdef", "k" * 32, ValueError),
    ],
)
def test_put_key_misuse(path: Path, key_id: str, key: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _store(path).put_key(key_id, key)


def test_bad_key_id_in_get_and_delete(path: Path) -> None:
    with pytest.raises(ValueError):
        _store(path).get_key("nope")
    with pytest.raises(ValueError):
        _store(path).delete_key("nope")


def test_weak_constructor_params_refused(path: Path) -> None:
    with pytest.raises(ValueError):
        PassphraseKeystore(path, Source(), scrypt_params={"n": 2**4, "r": 8, "p": 1})


def test_concurrent_gets_derive_once(path: Path) -> None:
    kid, key = new_key_id(), crypto.new_key()
    _store(path).put_key(kid, key)
    source = Source()
    ks = _store(path, source)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(ks.get_key(kid))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [key] * 4
    assert source.calls == 1


# -- the rule for a new keystore's passphrase (issue 15) ---------------------------------------


@pytest.mark.parametrize(("passphrase", "why"), [
    (b"short", "it is too short"),
    (b"elevenchars", "it is too short"),
    (b"aaaaaaaaaaaaaaaaaaaa", "it has too few different characters"),
    (b"abababababab", "it has too few different characters"),
    (b"123456789012", "it is only digits"),
    (b"password1234", "it is a common password"),
    (b"  P@ssw0rd!!2024  ", "it is a common password"),
    (b"Qwertyuiop!!", "it is a common password"),
    (b"credguard2024!", "it is a common password"),
    (PASSPHRASE, ""),
    (b"Tr0ub4dor&3xyz", ""),
    ("pässwört-über-alles".encode(), ""),
    (b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4", ""),  # not UTF-8: still judged
])
def test_the_passphrase_rule(passphrase: bytes, why: str) -> None:
    from credguard.vault.passphrase import passphrase_weakness

    assert passphrase_weakness(passphrase) == why


def test_a_weak_passphrase_creates_nothing_and_is_asked_afresh(path: Path) -> None:
    from credguard.vault.passphrase import PASSPHRASE_RULE

    answers = iter([b"short", PASSPHRASE])
    asked = Source()
    ks = PassphraseKeystore(path, asked, scrypt_params=FAST, new_passphrase=lambda: next(answers))
    kid, key = new_key_id(), crypto.new_key()
    with pytest.raises(KeystoreError) as refused:
        ks.put_key(kid, key)
    assert refused.value.message == f"passphrase refused: it is too short; {PASSPHRASE_RULE}"
    assert refused.value.exit_code == ExitCode.KEYSTORE
    assert not path.exists()
    ks.put_key(kid, key)  # the second answer, a strong one
    assert asked.calls == 0  # creating asks the new-passphrase source only
    assert _store(path).get_key(kid) == key  # and it is the passphrase that opens it


def test_an_existing_keystore_is_opened_with_the_passphrase_not_the_new_one(path: Path) -> None:
    _store(path).put_key(new_key_id(), crypto.new_key())
    kid = new_key_id()

    def never() -> bytes:
        raise AssertionError("a new passphrase was asked for an existing keystore")

    PassphraseKeystore(path, Source(), scrypt_params=FAST, new_passphrase=never).put_key(
        kid, crypto.new_key())
    assert kid in _doc(path)["keys"]
