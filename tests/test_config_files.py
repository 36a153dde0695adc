"""Configuration files that are not what they claim: nested 5,000 deep, a FIFO, a device, too
large, not UTF-8, a link. Each is a config error (exit 3) naming the file, never a hang or a
RecursionError; a link made by a dotfiles manager is followed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.home import Home, Run, run_subprocess

from credguard import config
from credguard.config import files
from credguard.errors import ConfigError, ExitCode

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]
FP = "sha256:" + "ab" * 32
DEEP = 5000


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def nested_array(depth: int) -> str:
    return "[scan]\nexclude = " + "[" * depth + "]" * depth + "\n"


def nested_table(depth: int) -> str:
    return "[policy]\nazure-publishsettings = " + "{ a = " * depth + '"x"' + " }" * depth + "\n"


def nested_header(depth: int) -> str:  # tomllib parses this without recursing
    return "[policy." + ".".join(["a"] * depth) + "]\nb = 1\n"


@pytest.mark.parametrize("text", [nested_array(DEEP), nested_table(DEEP), nested_header(DEEP),
                                  nested_array(100)],
                         ids=["array-5000", "inline-table-5000", "header-5000", "array-100"])
def test_deep_nesting_is_a_config_error(home: Home, cli: Cli, text: str) -> None:
    write(home.config_file, text)
    with pytest.raises(ConfigError, match="nested more than 16 levels deep") as info:
        config.load()
    assert str(home.config_file) in info.value.message
    for args in (("config", "show"), ("scan", "--local", "--json")):
        run = cli(*args)
        assert run.code == ExitCode.CONFIG, run.err
        assert "nested more than 16 levels deep" in run.err and "internal error" not in run.err


def test_deep_managed_policy_is_a_config_error(home: Home, cli: Cli) -> None:
    write(home.policy_file, nested_array(DEEP))
    run = cli("config", "show", "--json")
    assert run.code == ExitCode.CONFIG and str(home.policy_file) in run.err


def test_schema_depth_still_parses(home: Home) -> None:
    write(home.config_file, '[policy]\nazure-publishsettings = { downloads = "protect" }\n')
    assert config.load().sources["policy.azure-publishsettings"].startswith("user config")


@pytest.mark.parametrize("command", [("config", "show"), ("scan", "--local", "--json")])
def test_fifo_config_never_blocks(home: Home, command: tuple[str, ...]) -> None:
    """As a real process with a deadline: a FIFO nobody writes to would block open() forever."""
    home.config_file.parent.mkdir(parents=True)
    os.mkfifo(home.config_file)
    run = run_subprocess(*command, timeout=30)
    assert run.code == ExitCode.CONFIG, run.err
    assert f"{home.config_file}: cannot read: not a regular file" in run.err


def test_fifo_managed_policy_never_blocks(home: Home) -> None:
    home.policy_file.parent.mkdir(parents=True)
    os.mkfifo(home.policy_file)
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load()


@pytest.mark.parametrize("how", ["link", "CREDGUARD_CONFIG"])
def test_dev_zero_as_config_is_refused(home: Home, cli: Cli, monkeypatch: pytest.MonkeyPatch,
                                       how: str) -> None:
    if how == "link":
        home.config_file.parent.mkdir(parents=True)
        home.config_file.symlink_to("/dev/zero")
    else:
        monkeypatch.setenv("CREDGUARD_CONFIG", "/dev/zero")
    run = cli("config", "show")
    assert run.code == ExitCode.CONFIG
    assert "not a regular file" in run.err and "/dev/zero" in run.err


def test_directory_as_config_is_refused(home: Home) -> None:
    home.config_file.mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a regular file"):
        config.load()


def test_oversized_config_is_refused_unread(home: Home) -> None:
    write(home.config_file, "# padding\n" * (files.MAX_SIZE // 10 + 1))
    with pytest.raises(ConfigError, match="too large for a configuration file"):
        config.load()


def test_non_utf8_config_is_a_config_error(home: Home) -> None:
    home.config_file.parent.mkdir(parents=True)
    home.config_file.write_bytes(b"[scan]\nexclude = [\"\xff\"]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load()


def test_symlinked_config_is_followed(home: Home) -> None:
    """A dotfiles manager links config.toml into a repository: that is the user's own file."""
    target = write(home.root / "dotfiles" / "credguard.toml", '[scan]\nmax_file_size = "8 MiB"\n')
    home.config_file.parent.mkdir(parents=True)
    home.config_file.symlink_to(target)
    cfg = config.load()
    assert cfg["scan.max_file_size"] == 8 << 20
    assert cfg.sources["scan.max_file_size"] == f"user config {home.config_file}:2"
    assert config.add_ignore(cfg, FP, "lab")
    assert home.config_file.is_symlink(), "the link stays; its target gets the entry"
    assert "[[ignore]]" in target.read_text()
    assert config.load().ignored(FP) is not None


def test_link_chain_to_fifo_is_refused(home: Home) -> None:
    fifo = home.root / "dotfiles" / "pipe"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    (home.root / "dotfiles" / "middle").symlink_to(fifo)
    home.config_file.parent.mkdir(parents=True)
    home.config_file.symlink_to(home.root / "dotfiles" / "middle")
    with pytest.raises(ConfigError, match=f"a link to {fifo}.*not a regular file"):
        config.load()


def test_dangling_link_is_an_error_not_a_missing_file(home: Home) -> None:
    home.config_file.parent.mkdir(parents=True)
    home.config_file.symlink_to(home.root / "gone.toml")
    with pytest.raises(ConfigError, match="no such file"):
        config.load()


def test_missing_files_are_no_layer(home: Home) -> None:
    cfg = config.load()
    assert not home.config_file.exists() and not cfg.warnings and not cfg.overridden


def test_add_ignore_refuses_a_deep_file(home: Home) -> None:
    cfg = config.load()
    write(home.config_file, "x = " + "[" * DEEP + "]" * DEEP + "\n")  # changed after loading
    with pytest.raises(ConfigError, match="add it by hand"):
        config.add_ignore(cfg, FP, "")
