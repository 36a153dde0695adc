"""The vault item format: known answer, round trip, and every way an item can be damaged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credguard.errors import ExitCode, IntegrityError
from credguard.vault import crypto
from credguard.vault import format as fmt
from credguard.vault.crypto import VaultIntegrityError
from credguard.vault.format import NewerFormatError, Record

KAT = json.loads((Path(__file__).parent / "data" / "vault_kat.json").read_text())
KEY = bytes.fromhex(KAT["test_key_hex"])  # test key, not a secret
KEY_ID = "0123456789abcdef"
ITEM_ID = "00112233445566778899aabbccddeeff"
SECRET = b"s3cr3t-plaintext-marker"


def _kat_record() -> Record:
    fields = dict(KAT["record"])
    data = bytes.fromhex(fields.pop("data_hex"))
    return Record(**fields, data=data)


def _record(data: bytes = SECRET, **over: Any) -> Record:
    fields: dict[str, Any] = {
        "kind": "example",
        "name": "notes.txt",
        "directory": "/home/someone/Downloads",
        "details": {"size": len(data)},
        "imported_at": "2024-05-01T12:00:00+00:00",
    }
    fields.update(over)
    return Record.new(data=data, **fields)


def _item(record: Record | None = None) -> bytes:
    return fmt.pack(record or _record(), KEY, KEY_ID, ITEM_ID)


def _assert_clean(exc: pytest.ExceptionInfo[IntegrityError], *secrets: bytes) -> None:
    text = str(exc.value)
    for secret in (SECRET, KEY, *secrets):
        assert secret.decode("latin-1") not in text
        assert secret.hex() not in text
    assert exc.value.exit_code == ExitCode.INTEGRITY


# ---- known answer --------------------------------------------------------------------------


def test_pack_reproduces_the_known_answer_byte_for_byte() -> None:
    nonce = bytes.fromhex(KAT["nonce_hex"])
    item = fmt.pack(_kat_record(), KEY, KAT["key_id"], KAT["item_id"], nonce=nonce)
    assert item.hex() == KAT["item_hex"]


def test_unpack_reads_the_known_answer() -> None:
    record = fmt.unpack(bytes.fromhex(KAT["item_hex"]), KEY, KAT["item_id"])
    assert record == _kat_record()
    assert record.data == b"hello vault"
    assert fmt.read_key_id(bytes.fromhex(KAT["item_hex"])) == KAT["key_id"]


def test_known_answer_layout_matches_the_documented_format() -> None:
    """Decrypt the vector with raw AES-GCM, following only the module docstring."""
    item = bytes.fromhex(KAT["item_hex"])
    nonce = bytes.fromhex(KAT["nonce_hex"])
    header = b"\x89CGV" + b"\x01" + bytes.fromhex(KAT["key_id"]) + nonce
    assert item[:25] == header
    plain = AESGCM(KEY).decrypt(nonce, item[25:], header + KAT["item_id"].encode())
    length = int.from_bytes(plain[:4], "big")
    meta = json.loads(plain[4 : 4 + length])
    assert meta["v"] == 1
    assert meta["sha256"] == KAT["record"]["sha256"]
    assert plain[4 + length :] == b"hello vault"


# ---- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"x", bytes(range(256)) * 300, "caf\u00e9 \u2603".encode()], ids=len
)
def test_round_trip(data: bytes) -> None:
    record = _record(data, name="caf\u00e9 \udcff.json", details={"nested": {"a": [1, 2]}})
    item_id = fmt.new_item_id()
    item = fmt.pack(record, KEY, KEY_ID, item_id)
    assert fmt.read_key_id(item) == KEY_ID
    assert fmt.unpack(item, KEY, item_id) == record


def test_each_pack_uses_a_fresh_nonce() -> None:
    assert _item() != _item()


def test_large_data_is_not_base64_bloated() -> None:
    data = bytes(1 << 20)
    item = _item(_record(data))
    assert len(item) < len(data) + 1024


def test_ids() -> None:
    assert fmt.is_item_id(fmt.new_item_id())
    assert fmt.is_key_id(fmt.new_key_id())
    assert fmt.new_item_id() != fmt.new_item_id()
    for bad in ["", "0" * 31, "0" * 33, "A" * 32, "g" * 32, None, b"0" * 32, "0" * 31 + "\n"]:
        assert not fmt.is_item_id(bad)
    for bad in ["", "0" * 15, "0" * 17, "ABCDEF0123456789", None, "0" * 15 + "\n"]:
        assert not fmt.is_key_id(bad)


# ---- Record --------------------------------------------------------------------------------


def test_record_repr_hides_data() -> None:
    record = _record()
    assert SECRET.decode() not in repr(record)
    assert "data" not in repr(record)
    assert "notes.txt" in repr(record)


def test_record_meta_is_json_without_data() -> None:
    record = _record()
    meta = record.meta()
    assert set(meta) == {"kind", "name", "directory", "sha256", "imported_at", "details"}
    assert SECRET.decode() not in json.dumps(meta)
    meta["details"]["size"] = -1
    assert record.details["size"] == len(SECRET)


def test_record_refuses_wrong_sha256_and_types() -> None:
    good = _record()
    with pytest.raises(ValueError, match="sha256"):
        Record(**{**good.meta(), "sha256": "0" * 64}, data=good.data)
    with pytest.raises(TypeError):
        Record(**good.meta(), data="text")
    with pytest.raises(TypeError):
        Record(**{**good.meta(), "details": []}, data=good.data)


def test_record_new_defaults() -> None:
    record = Record.new("example", "a.txt", "/tmp", b"abc")
    assert record.sha256 == crypto.sha256_hex(b"abc")
    assert record.details == {}
    assert record.imported_at.endswith("+00:00")


# ---- misuse --------------------------------------------------------------------------------


def test_pack_misuse() -> None:
    with pytest.raises(ValueError, match="item id"):
        fmt.pack(_record(), KEY, KEY_ID, "not-an-id")
    with pytest.raises(ValueError, match="key id"):
        fmt.pack(_record(), KEY, "XYZ", ITEM_ID)
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        fmt.pack(_record(), bytes(16), KEY_ID, ITEM_ID)
    with pytest.raises(ValueError, match="nonce must be 12 bytes"):
        fmt.pack(_record(), KEY, KEY_ID, ITEM_ID, nonce=bytes(8))
    with pytest.raises(TypeError) as info:
        fmt.pack({"kind": "x"}, KEY, KEY_ID, ITEM_ID)  # type: ignore[arg-type]
    assert str(info.value) == "record must be a Record"


def test_unpack_misuse() -> None:
    with pytest.raises(ValueError, match="item id"):
        fmt.unpack(_item(), KEY, ITEM_ID.upper())
    with pytest.raises(TypeError) as info:
        fmt.unpack(_item().hex(), KEY, ITEM_ID)  # type: ignore[arg-type]
    assert str(info.value) == "blob must be bytes"
    with pytest.raises(TypeError):
        fmt.read_key_id(bytearray(_item()))  # type: ignore[arg-type]


def test_the_header_alone_names_the_key() -> None:
    """read_key_id needs the header only: exactly HEADER_SIZE bytes are enough, one less not."""
    item = _item()
    assert fmt.read_key_id(item[: fmt.HEADER_SIZE]) == KEY_ID
    with pytest.raises(VaultIntegrityError):
        fmt.read_key_id(item[: fmt.HEADER_SIZE - 1])


# ---- damage and tampering ------------------------------------------------------------------


def test_every_single_bit_flip_is_an_integrity_error() -> None:
    item = _item(_record(b"tiny", details={}))
    for bit in range(len(item) * 8):
        damaged = bytearray(item)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(IntegrityError) as exc:
            fmt.unpack(bytes(damaged), KEY, ITEM_ID)
        _assert_clean(exc, b"tiny")


def test_truncation_at_every_length_is_an_integrity_error() -> None:
    item = _item()
    for length in range(len(item)):
        with pytest.raises(VaultIntegrityError) as exc:
            fmt.unpack(item[:length], KEY, ITEM_ID)
        _assert_clean(exc)


def test_appended_bytes_are_an_integrity_error() -> None:
    with pytest.raises(VaultIntegrityError):
        fmt.unpack(_item() + b"\0", KEY, ITEM_ID)


def test_wrong_key_is_an_integrity_error() -> None:
    with pytest.raises(VaultIntegrityError) as exc:
        fmt.unpack(_item(), crypto.new_key(), ITEM_ID)
    _assert_clean(exc)


def test_items_cannot_be_swapped_between_files() -> None:
    with pytest.raises(VaultIntegrityError) as exc:
        fmt.unpack(_item(), KEY, fmt.new_item_id())
    _assert_clean(exc)


def test_changed_header_key_id_is_an_integrity_error() -> None:
    item = _item()
    other = "fedcba9876543210"
    forged = item[:5] + bytes.fromhex(other) + item[13:]
    assert fmt.read_key_id(forged) == other
    with pytest.raises(VaultIntegrityError):
        fmt.unpack(forged, KEY, ITEM_ID)


@pytest.mark.parametrize("version", [2, 3, 255])
def test_newer_version_byte_is_refused_as_newer(version: int) -> None:
    item = _item()
    bumped = item[:4] + bytes([version]) + item[5:]
    for call in (lambda: fmt.read_key_id(bumped), lambda: fmt.unpack(bumped, KEY, ITEM_ID)):
        with pytest.raises(NewerFormatError) as exc:
            call()
        assert str(exc.value) == (
            f"this vault item was written by a newer credguard (format version {version}; "
            "this one reads up to 1): upgrade credguard"
        )
        assert exc.value.exit_code == ExitCode.INTEGRITY


def test_newer_version_is_recognised_before_the_header_length() -> None:
    with pytest.raises(NewerFormatError):
        fmt.read_key_id(fmt.MAGIC + b"\x02")


@pytest.mark.parametrize(
    "blob", [b"", b"\x89CG", b"\x89CGV", b"XXXX\x01" + bytes(40), b"\x89CGV\x00" + bytes(40)]
)
def test_bad_header_is_an_integrity_error(blob: bytes) -> None:
    with pytest.raises(VaultIntegrityError):
        fmt.read_key_id(blob)
    with pytest.raises(VaultIntegrityError):
        fmt.unpack(blob, KEY, ITEM_ID)


# ---- records that authenticate but are malformed -------------------------------------------


def _forge(plaintext: bytes) -> bytes:
    """An item whose ciphertext authenticates but whose record is whatever the test says."""
    nonce = crypto.new_nonce()
    header = fmt.MAGIC + bytes([fmt.VERSION]) + bytes.fromhex(KEY_ID) + nonce
    _, ct = crypto.encrypt(KEY, plaintext, header + ITEM_ID.encode(), nonce=nonce)
    return header + ct


def _meta_blob(meta: object, data: bytes = SECRET) -> bytes:
    raw = json.dumps(meta).encode()
    return len(raw).to_bytes(4, "big") + raw + data


def _good_meta(**over: Any) -> dict[str, Any]:
    return {"v": 1, **_record().meta(), **over}


@pytest.mark.parametrize(
    "plaintext",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\0\0", id="short-length"),
        pytest.param((1000).to_bytes(4, "big") + b"{}", id="length-past-end"),
        pytest.param((3).to_bytes(4, "big") + b"\xff\xfe{", id="not-ascii"),
        pytest.param((2).to_bytes(4, "big") + b"{x", id="not-json"),
        pytest.param(_meta_blob([1, 2]), id="not-object"),
        pytest.param(_meta_blob(_good_meta(v=0)), id="v0"),
        pytest.param(_meta_blob(_good_meta(v="1")), id="v-str"),
        pytest.param(_meta_blob(_good_meta(v=True)), id="v-bool"),
        pytest.param(_meta_blob({k: v for k, v in _good_meta().items() if k != "v"}), id="no-v"),
        pytest.param(_meta_blob(_good_meta(extra=1)), id="extra-key"),
        pytest.param(_meta_blob({**_good_meta(), "kind": 5}), id="kind-int"),
        pytest.param(_meta_blob({**_good_meta(), "details": "x"}), id="details-str"),
        pytest.param(_meta_blob({**_good_meta(), "sha256": "ab"}), id="sha-short"),
        pytest.param(_meta_blob(_good_meta(), data=SECRET + b"!"), id="sha-mismatch"),
        pytest.param(_meta_blob(_good_meta(), data=b""), id="data-missing"),
    ],
)
def test_authentic_but_malformed_record_is_an_integrity_error(plaintext: bytes) -> None:
    with pytest.raises(VaultIntegrityError) as exc:
        fmt.unpack(_forge(plaintext), KEY, ITEM_ID)
    _assert_clean(exc)
    assert exc.value.__cause__ is None


def test_newer_record_version_is_refused_as_newer() -> None:
    with pytest.raises(NewerFormatError) as info:
        fmt.unpack(_forge(_meta_blob(_good_meta(v=2))), KEY, ITEM_ID)
    assert info.value.message == (
        "this vault item was written by a newer credguard (format version 2; this one reads up "
        "to 1): upgrade credguard")


@pytest.mark.parametrize("sha", [5, None, ["ab"], "AB" * 32], ids=["int", "null", "list", "upper"])
def test_a_record_checksum_of_the_wrong_type_is_an_integrity_error(sha: object) -> None:
    """Not a TypeError from deep inside: damage is always an integrity error."""
    with pytest.raises(VaultIntegrityError):
        fmt.unpack(_forge(_meta_blob({**_good_meta(), "sha256": sha})), KEY, ITEM_ID)


def test_forge_helper_builds_readable_items() -> None:
    assert fmt.unpack(_forge(_meta_blob(_good_meta())), KEY, ITEM_ID) == _record()
