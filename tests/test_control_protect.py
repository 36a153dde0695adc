"""The ``protect`` control command's checks and context (credguard.control.protect).

The request is checked like every other (shape, sizes, absolute paths), and the context digest
changes with everything the command's result depends on besides the files, and with nothing
else: the daemon compares it to its own, so a digest that missed a difference would let the
daemon protect under another configuration.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers.home import Home

from credguard import control
from credguard.control import protect as cp
from credguard.protect.transaction import BATCH

KEY = "0" * 32


def good(**over: object) -> dict[str, object]:
    args: dict[str, object] = {"paths": ["/home/u/Downloads/a.PublishSettings"],
                               "context": {"key": KEY, "digest": "f" * 64}}
    return {**args, **over}


def test_one_request_carries_at_most_one_group_commit() -> None:
    assert cp.MAX_PATHS == BATCH


def test_a_well_formed_request_is_accepted() -> None:
    cmd, args = control.validate({"v": control.PROTOCOL, "cmd": "protect", "args": good()})
    assert cmd == "protect"
    assert args == good()


@pytest.mark.parametrize("args", [
    {},
    {"paths": ["/a"]},
    good(extra=1),
    good(paths=[]),
    good(paths="/a"),
    good(paths=["relative/a"]),
    good(paths=["/a\0b"]),
    good(paths=[1]),
    good(paths=[f"/p{i}" for i in range(BATCH + 1)]),
    good(context=None),
    good(context={"key": KEY}),
    good(context={"key": KEY, "digest": "F" * 64}),
    good(context={"key": KEY, "digest": "f" * 63}),
    good(context={"key": "0" * 31, "digest": "f" * 64}),
    good(context={"key": KEY, "digest": "f" * 64, "more": "x"}),
], ids=lambda a: ",".join(sorted(a)) if isinstance(a, dict) else str(a))
def test_a_malformed_request_is_refused_with_a_short_fixed_message(
        args: dict[str, object]) -> None:
    with pytest.raises(control.ProtocolError) as caught:
        control.validate({"v": control.PROTOCOL, "cmd": "protect", "args": args})
    message = caught.value.message
    assert message.startswith("protect ") and "/a" not in message and "relative" not in message


def test_the_context_is_the_digest_of_this_environment_and_these_files(home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text("[notifications]\nenabled = false\n")
    ctx = cp.context()
    assert ctx is not None and set(ctx) == {"key", "digest"}
    texts = [(p, Path(p).read_text() if Path(p).exists() else None) for p in cp.config_files()]
    assert cp.digest(ctx["key"], texts, os.environ) == ctx["digest"]
    assert cp.context() != ctx  # a new key each time: one digest tells nothing of another


def test_what_the_result_depends_on_changes_the_digest(
        home: Home, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    texts = [(p, None) for p in cp.config_files()]
    base = cp.digest(KEY, texts, os.environ)
    assert cp.digest(KEY, texts, dict(os.environ)) == base
    assert cp.digest("1" * 32, texts, os.environ) != base
    assert cp.digest(KEY, [(texts[0][0], None), (texts[1][0], "x = 1\n")], os.environ) != base
    assert cp.digest(KEY, texts, {**os.environ, "CREDGUARD_SCAN_MAX_FILE_SIZE": "1"}) != base
    assert cp.digest(KEY, texts, {**os.environ, "CREDGUARD_PASSPHRASE": "p"}) != base
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "HOME"):
        monkeypatch.setenv(name, str(tmp_path / name))
        assert cp.digest(KEY, texts, os.environ) != base, name
        monkeypatch.undo()
        monkeypatch.setenv("HOME", str(home.root))


def test_what_exec_hands_a_child_and_the_tests_hooks_do_not(home: Home) -> None:
    texts = [(p, None) for p in cp.config_files()]
    base = cp.digest(KEY, texts, os.environ)
    handed = {name: "x" for name in cp.HANDED} | {
        "CREDGUARD_PUBLISH_PASSWORD": "x", "CREDGUARD_TEST_CRASH_AT": "x", "PATH": "/nowhere"}
    assert cp.digest(KEY, texts, {**os.environ, **handed}) == base


def test_the_digest_never_holds_a_value_in_clear(home: Home) -> None:
    secret = "correct horse battery staple"
    texts = [(p, None) for p in cp.config_files()]
    assert secret not in cp.digest(KEY, texts, {**os.environ, "CREDGUARD_PASSPHRASE": secret})


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "too-large", "not-utf8"])
def test_a_configuration_file_that_is_not_plain_has_no_context(
        home: Home, tmp_path: Path, kind: str) -> None:
    """Never a link followed (its target could change unseen), never a FIFO waited on."""
    config = home.config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    if kind == "symlink":
        (tmp_path / "real.toml").write_text("")
        config.symlink_to(tmp_path / "real.toml")
    elif kind == "fifo":
        os.mkfifo(config)
    elif kind == "directory":
        config.mkdir()
    elif kind == "too-large":
        config.write_bytes(b"#" * (cp.MAX_CONFIG + 1))
    else:
        config.write_bytes(b"# \xff\n")
    started = time.monotonic()
    assert cp.context() is None
    assert time.monotonic() - started < 5


def test_a_configuration_file_at_the_size_limit_is_summarised(home: Home) -> None:
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_bytes(b"#" * cp.MAX_CONFIG)
    ctx = cp.context()
    assert ctx is not None
    texts = [(p, Path(p).read_text() if Path(p).exists() else None) for p in cp.config_files()]
    assert cp.digest(ctx["key"], texts, os.environ) == ctx["digest"]


def test_a_protector_holds_the_shared_lock_for_a_whole_batch(
        secret_service: object, home: Home, tmp_path: Path) -> None:
    """The daemon's worker and its protect requests share one lock: a batch waits for the
    other's to end, so their group commits never interleave."""
    from credguard import config
    from credguard.protect.transaction import Protector
    from credguard.vault.access import open_vault

    cfg = config.load()
    lock = threading.Lock()
    protector = Protector(cfg, open_vault(cfg), one_at_a_time=lock)
    missing = tmp_path / "none.PublishSettings"
    entered = threading.Event()

    def other() -> None:
        with protector.protect_batch([(missing, None)]):
            entered.set()

    with lock:
        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.5)
    thread.join(10)
    assert entered.is_set()
    with protector.protect_batch([(missing, None)]) as done:
        assert lock.locked()
        assert done[0].reason == "not-found"
    assert not lock.locked()


def test_a_keystore_failing_during_a_request_turns_the_daemon_alert_only(home: Home) -> None:
    """The daemon's vault keeps the key once fetched, so a real keyring cannot fail here; the
    protector factory that raises stands in for a vault that lost its keystore."""
    from credguard import config
    from credguard.daemon.commands import protect_reply
    from credguard.errors import KeystoreError
    from credguard.policy import Mode

    cfg = config.load()
    ctx = cp.context()
    assert ctx is not None
    lost: list[str] = []

    def failing() -> object:
        raise KeystoreError("the keyring is locked")

    with pytest.raises(KeystoreError):
        protect_reply(cfg, Mode.PROTECTING, failing, lost.append,  # type: ignore[arg-type]
                      {"paths": ["/x"], "context": ctx})
    assert lost == ["the keyring is locked"]
    refused = protect_reply(cfg, Mode.ALERT_ONLY, failing, lost.append,  # type: ignore[arg-type]
                            {"paths": ["/x"], "context": ctx})
    assert refused == {"refused": "the daemon is alert-only"}
