"""The one refusal of a newer stored format: one wording, and each format's own exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from credguard.azcache import sealstore
from credguard.errors import CredguardError, ExitCode, StateError, check_version
from credguard.protect import journal
from credguard.vault import store

NEWER = ("was written by a newer credguard (format version 99; this one reads up to 1): "
         "upgrade credguard")


def test_known_and_older_versions_pass() -> None:
    assert check_version(1, 1, "the thing") == 1
    assert check_version(0, 1, "the thing") == 0  # older ones are each format's own decision


@pytest.mark.parametrize("version", [None, "1", 1.0, True])
def test_what_is_no_whole_number_is_no_version(version: object) -> None:
    with pytest.raises(ValueError, match="the thing has no format version"):
        check_version(version, 1, "the thing")


def test_a_newer_version_names_the_file_and_both_versions() -> None:
    with pytest.raises(StateError) as info:
        check_version(99, 1, "the thing", StateError)
    assert info.value.message == f"the thing {NEWER}"
    assert info.value.exit_code == ExitCode.STATE


def _vault_state(tmp_path: Path) -> tuple[Callable[[], object], str]:
    (tmp_path / "vault.json").write_text(json.dumps({"version": 99, "keystore": "keyring"}))
    return lambda: store.read_state(tmp_path), str(tmp_path / "vault.json")


def _sealed_caches(tmp_path: Path) -> tuple[Callable[[], object], str]:
    (tmp_path / "sealed.json").write_text(json.dumps({"version": 99, "seals": []}))
    return sealstore.Store(tmp_path).all, str(tmp_path / "sealed.json")


def _bundle(tmp_path: Path) -> tuple[Callable[[], object], str]:
    doc = {"format": sealstore.BUNDLE_FORMAT, "version": 99, "tool": "azd", "files": {}}
    return (lambda: sealstore.unpack_bundle(json.dumps(doc).encode(), "azd"),
            "the sealed azd cache in the vault")


def _journal(tmp_path: Path) -> tuple[Callable[[], object], str]:
    path = tmp_path / "entry.json"
    path.write_text(json.dumps({"version": 99}))
    return lambda: journal.read(path), f"journal entry {path}"


SUPPORTED = {"journal": journal.VERSION,  # the formats past their first version
             "vault_state": store.STATE_VERSION}


@pytest.mark.parametrize(
    ("stored", "code"),
    [
        (_vault_state, ExitCode.STATE),
        (_sealed_caches, ExitCode.STATE),
        (_bundle, ExitCode.INTEGRITY),
        (_journal, ExitCode.STATE),
    ],
    ids=["vault.json", "sealed.json", "sealed-bundle", "journal"],
)
def test_every_stored_format_refuses_a_newer_version_alike(
    tmp_path: Path,
    stored: Callable[[Path], tuple[Callable[[], object], str]],
    code: int,
) -> None:
    read, what = stored(tmp_path)
    with pytest.raises(CredguardError) as info:
        read()
    supported = SUPPORTED.get(stored.__name__.lstrip("_"), 1)
    assert info.value.message == f"{what} {NEWER}".replace("up to 1)", f"up to {supported})")
    assert info.value.exit_code == code
