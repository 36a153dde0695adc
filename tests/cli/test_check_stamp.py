"""The validated-config stamp (:mod:`credguard.cli.stamp`): ``check``'s quick path skips loading
the configuration only when there is none, or when it is exactly what a full ``check`` loaded in
silence; a warning is printed and an invalid file fails on every run, never stamped; a stamp
that is a link, someone else's or writable by others is ignored. Real files in the test's home,
the CLI in-process, each run compared with the full path's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from helpers.home import Home, Run
from helpers.quickcheck import Capsys, compare

from credguard import paths
from credguard.cli import stamp
from credguard.config import files as config_files
from credguard.config.settings import SETTINGS

pytestmark = pytest.mark.timeout(120)
VALID = '# mine\n[scan]\nmax_file_size = "8 MiB"\n'


@pytest.fixture
def source(home: Home) -> Path:
    return home.write("repo/app.py", "print('hello')\n")


def stamp_file() -> Path:
    return paths.user_state_dir() / stamp.NAME


def state_dir() -> Path:
    state = paths.user_state_dir()
    state.mkdir(parents=True, exist_ok=True)  # a first command makes it (here: none ran)
    return state


def runs(capsys: Capsys, source: Path, n: int = 2) -> list[tuple[bool, Run]]:
    return [compare(capsys, source) for _ in range(n)]


def test_the_constants_are_the_configurations() -> None:
    assert {s.env for s in SETTINGS} == stamp.SETTING_VARIABLES
    assert stamp.MAX_CONFIG == config_files.MAX_SIZE


def test_without_a_configuration_file_no_stamp_is_needed(capsys: Capsys, home: Home,
                                                         source: Path) -> None:
    state_dir()
    assert [taken for taken, _ in runs(capsys, source)] == [True, True]
    assert not stamp_file().exists()


@pytest.mark.parametrize("which", ["user", "policy", "both"])
def test_a_valid_configuration_is_stamped_then_trusted(capsys: Capsys, home: Home,
                                                       source: Path, which: str) -> None:
    state_dir()
    if which in ("user", "both"):
        home.write(".config/credguard/config.toml", VALID)
    if which in ("policy", "both"):
        home.write("etc-xdg/credguard/policy.toml", '[scan]\nsniff_max_size = "2 MiB"\n', 0o644)
    assert [taken for taken, _ in runs(capsys, source, 3)] == [False, True, True]
    st = os.lstat(stamp_file())
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    held = stamp_file().read_bytes()
    assert (b'"8 MiB"' in held) is (which != "policy")
    assert (b'"2 MiB"' in held) is (which != "user")


def test_no_stamp_where_there_is_no_state_dir(capsys: Capsys, home: Home, source: Path) -> None:
    home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, False]
    assert not paths.user_state_dir().exists()


@pytest.mark.parametrize("change", ["same size", "longer", "removed", "chmod", "a link"])
def test_a_changed_configuration_is_loaded_again(capsys: Capsys, home: Home, source: Path,
                                                 change: str) -> None:
    state_dir()
    config = home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    if change == "same size":
        config.write_text(VALID.replace("8 MiB", "9 MiB"))
    elif change == "longer":
        config.write_text(VALID + "\n")
    elif change == "removed":
        config.unlink()
    elif change == "chmod":
        config.chmod(0o644)
    else:
        real = home.write("dotfiles/credguard.toml", VALID)
        config.unlink()
        config.symlink_to(real)
    after = [taken for taken, _ in runs(capsys, source, 3)]
    assert after == ([True, True, True] if change == "removed" else [False, True, True])


def test_a_linked_configuration_is_stamped_with_its_target(capsys: Capsys, home: Home,
                                                           source: Path) -> None:
    """A dotfiles manager's link: its target read by the same rules, and any change to it seen."""
    state_dir()
    real = home.write("dotfiles/credguard.toml", VALID)
    config = home.root / ".config" / "credguard" / "config.toml"
    config.parent.mkdir(parents=True)
    config.symlink_to(real)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    real.write_text(VALID.replace("8", "9"))
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    other = home.write("dotfiles/other.toml", VALID.replace("8", "9"))
    config.unlink()
    config.symlink_to(other)  # the same bytes and modes elsewhere
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]


def test_a_warning_is_printed_on_every_run_and_never_stamped(capsys: Capsys, home: Home,
                                                             source: Path) -> None:
    state_dir()
    home.write("etc-xdg/credguard/policy.toml", 'locked = ["scan.exclude"]\n', 0o644)
    config = home.write(".config/credguard/config.toml", '[scan]\nexclude = ["*/vendor/*"]\n')
    for taken, run in runs(capsys, source, 3):
        assert not taken and run.code == 0
        assert f"user config {config}:2: scan.exclude = ['*/vendor/*'] locked" in run.err
    assert not stamp_file().exists()


def test_an_exclude_pattern_is_never_stamped(capsys: Capsys, home: Home, source: Path) -> None:
    """Whether it hides credential files depends on the roots, so on the file system."""
    state_dir()
    home.write(".config/credguard/config.toml", '[scan]\nexclude = ["*/vendor/*"]\n')
    assert [(taken, run.code, run.err) for taken, run in runs(capsys, source)] == [
        (False, 0, ""), (False, 0, "")]
    assert not stamp_file().exists()


@pytest.mark.parametrize("text", ['[scan]\nmax_file_size = "huge"\n', "[scan\n",
                                  '[nope]\nx = 1\n', "version = 99\n", b"\xff\xfe[scan]\n"])
def test_an_invalid_configuration_fails_every_run(capsys: Capsys, home: Home, source: Path,
                                                  text: str | bytes) -> None:
    state_dir()
    home.write(".config/credguard/config.toml", text)
    for taken, run in runs(capsys, source, 3):
        assert not taken and run.code == 3 and "credguard: error: " in run.err
    assert not stamp_file().exists()


def test_a_stamp_for_another_configuration_does_not_pass(capsys: Capsys, home: Home,
                                                         source: Path) -> None:
    """A valid configuration stamped; then an invalid one of the same size: exit 3."""
    state_dir()
    config = home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    config.write_text(VALID.replace('"8 MiB"', '"8 MiX"'))
    assert [(taken, run.code) for taken, run in runs(capsys, source)] == [(False, 3), (False, 3)]


@pytest.mark.parametrize("variable", ["CREDGUARD_SCAN_MAX_FILE_SIZE", "CREDGUARD_SCAN_EXCLUDE",
                                      "CREDGUARD_POLICY_AZURE_PUBLISHSETTINGS"])
def test_a_setting_in_the_environment_is_the_full_paths(capsys: Capsys, home: Home,
                                                        source: Path, variable: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir()
    monkeypatch.setenv(variable, "huge")
    for taken, run in runs(capsys, source):
        assert not taken
        assert (run.code == 3 and variable in run.err) is (variable != "CREDGUARD_SCAN_EXCLUDE")
    home.write(".config/credguard/config.toml", VALID)
    monkeypatch.setenv(variable, "8 MiB" if "SIZE" in variable else "")
    assert [taken for taken, _ in runs(capsys, source)] == [False, False]
    assert not stamp_file().exists()  # never stamped with a setting from the environment


@pytest.mark.parametrize("variable", ["HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"])
def test_a_path_variable_changed_is_loaded_again(capsys: Capsys, home: Home, source: Path,
                                                 variable: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir()
    home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    monkeypatch.setenv(variable, os.environ[variable] + "/")  # the same places, spelt otherwise
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]


def test_credguard_config_names_the_file(capsys: Capsys, home: Home, source: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir()
    mine = home.write("elsewhere/mine.toml", VALID)
    monkeypatch.setenv("CREDGUARD_CONFIG", str(mine))
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    monkeypatch.setenv("CREDGUARD_CONFIG", str(home.root / "elsewhere" / "none.toml"))
    assert [taken for taken, _ in runs(capsys, source)] == [True, True]  # no file: none needed
    monkeypatch.setenv("CREDGUARD_CONFIG", f"{mine.parent}//mine.toml")  # Path would respell it
    assert [taken for taken, _ in runs(capsys, source)] == [False, False]
    monkeypatch.setenv("CREDGUARD_CONFIG", "")  # as if unset
    assert [taken for taken, _ in runs(capsys, source)] == [True, True]


@pytest.mark.parametrize("what", ["a link to nothing", "a FIFO", "a directory"])
def test_a_configuration_that_is_no_file_fails_every_run(capsys: Capsys, home: Home,
                                                         source: Path, what: str) -> None:
    state_dir()
    config = home.root / ".config" / "credguard" / "config.toml"
    config.parent.mkdir(parents=True)
    if what == "a link to nothing":
        config.symlink_to(home.root / "dotfiles" / "gone.toml")
    elif what == "a FIFO":
        os.mkfifo(config)
    else:
        config.mkdir()
    for taken, run in runs(capsys, source):
        assert not taken and run.code == 3 and str(config) in run.err
    assert not stamp_file().exists()


def test_a_linked_config_directory_is_the_full_paths(capsys: Capsys, home: Home,
                                                     source: Path) -> None:
    """config.files never opens a parent through its last link: an error, every run."""
    state_dir()
    real = home.root / "dotfiles"
    real.mkdir()
    (home.root / ".config").mkdir()
    (home.root / ".config" / "credguard").symlink_to(real, target_is_directory=True)
    for taken, run in runs(capsys, source):
        assert not taken and run.code == 3


@pytest.mark.parametrize("how", ["a link", "someone else's", "writable by the group"])
def test_an_untrusted_stamp_is_ignored(capsys: Capsys, home: Home, source: Path,
                                       how: str) -> None:
    state_dir()
    home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    path = stamp_file()
    if how == "a link":
        copy = home.write("elsewhere/stamp", path.read_bytes())
        path.unlink()
        path.symlink_to(copy)
    elif how == "someone else's":
        if os.geteuid() != 0:
            pytest.fail("needs root to give the stamp to another uid (tests/run runs as root)")
        os.chown(path, os.getuid() + 1, -1)
    else:
        path.chmod(0o620)
    assert not compare(capsys, source)[0]
    assert [taken for taken, _ in runs(capsys, source)] == [True, True]  # stamped anew
    assert not path.is_symlink() and path.stat().st_uid == os.getuid()


def test_a_stamp_of_another_format_is_ignored(capsys: Capsys, home: Home, source: Path) -> None:
    state_dir()
    home.write(".config/credguard/config.toml", VALID)
    runs(capsys, source)
    path = stamp_file()
    path.write_bytes(path.read_bytes().replace(b"validated-config 1", b"validated-config 9"))
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]


def test_the_stamp_holds_no_secret_variable(capsys: Capsys, home: Home, source: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    state_dir()
    monkeypatch.setenv("CREDGUARD_PASSPHRASE", "S3CR3T-passphrase")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "S3CR3T-client")
    home.write(".config/credguard/config.toml", VALID)
    assert [taken for taken, _ in runs(capsys, source)] == [False, True]
    assert b"S3CR3T" not in stamp_file().read_bytes()
