"""What ``credguard check`` (the pre-commit hook, run on every commit), ``credguard --help`` and
``credguard exec`` load (issue 16): a check of ordinary files answered on the quick path loads no
standard-library module the interpreter does not load itself (no argparse, re, pathlib, typing,
…), also with a configuration file it validated before; the full check path, and ``--help``,
import neither the keyring, cryptography, D-Bus, the notification stack, the file watcher, the
daemon nor the vault, and a full check of ordinary files loads no detector family. The
crash-recovery look every command takes first loads neither the journal nor the RAM directory's
checks when there is nothing to recover, and ``exec`` loads only its own verb module and no
``keyring`` library when the Secret Service runs.

Structural, never timed: each command runs in a fresh interpreter (this process has imported
everything already), which reports ``sys.modules`` as the command leaves it. The timings are
``benchmarks/startup.py``'s, recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import site
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run
from helpers.secret_service import SecretService

from credguard import cli
from credguard.cli import VERBS

# Runs the CLI in-process as the console script does (argv[2]: "main"), or its full path alone
# ("full"), then writes sys.modules to argv[1].
CHILD = """\
import json, sys
from credguard import cli
try:
    code = getattr(cli, sys.argv[2])(sys.argv[3:])
except SystemExit as exc:  # --help
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""
# The same for `python -S` (no site: the editable install's finder imports re and pathlib),
# importing nothing itself (json imports re): argv[2] is the directory credguard is in, then
# site-packages (their .pth files unread).
BARE_CHILD = """\
import sys
sys.path[:0] = sys.argv[2].split(":")
before = set(sys.modules)
from credguard.cli import main
code = main(sys.argv[3:])
with open(sys.argv[1], "w") as out:
    out.write(repr((code, sorted(before), sorted(sys.modules))))
"""
# What a check of ordinary files answered on the quick path never imports: what the full path
# is built from.
FULL_PATH = ("argparse", "re", "json", "pathlib", "dataclasses", "typing", "enum", "tomllib",
             "hashlib", "signal", "functools", "importlib", "platformdirs", "credguard.paths",
             "credguard.config", "credguard.scan", "credguard.detect.registry",
             "credguard.fs.safe", "credguard.errors", "credguard.cli.common")
# Never on these paths: what only the vault, exec, the daemon and the tray need.
HEAVY = ("cryptography", "keyring", "jeepney", "secretstorage", "dbus", "dbus_fast", "gi",
         "desktop_notifier", "watchdog", "psutil", "credguard.daemon", "credguard.vault",
         "credguard.notify", "credguard.tray", "credguard.azcache")
# Never loaded by the look for crash leftovers every command takes first when there are none
# (credguard.cli.common.interrupted), nor by anything else check needs: the journal, the RAM
# directory's checks and sweeps, platformdirs (paths computes the XDG dirs on Linux).
RECOVERY = ("credguard.protect", "credguard.fs.shared", "credguard.fs.lock", "credguard.fs.facts",
            "credguard.fs.atomic", "platformdirs", "secrets", "logging", "tempfile")
# A check of files that are no candidates: no detector family and no XML parser either.
FAMILIES = ("defusedxml", "credguard.detect.azcli", "credguard.detect.powershell",
            "credguard.detect.azd", "credguard.detect.publishsettings",
            "credguard.detect.appservice", "credguard.detect.vsprofile",
            "credguard.detect.xmlsafe")


def loaded(tmp_path: Path, *args: str, entry: str = "main") -> tuple[int, list[str], str]:
    """(exit code, modules in ``sys.modules`` at the end, output) of ``credguard ARGS`` in a
    fresh interpreter with this test's environment; ``entry="full"``: on the full path."""
    report = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(report), entry, *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert report.is_file(), proc.stderr
    result = json.loads(report.read_text())
    return result["code"], result["modules"], proc.stdout


# Light modules inside a heavy package: the vault package's init is a docstring, and naming an
# item (an id or a prefix of one, shared by the CLI and the daemon's exec) loads no crypto.
LIGHT = ("credguard.vault", "credguard.vault.itemid")


def among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """The ``modules`` that are one of ``names`` or inside one of them (except :data:`LIGHT`)."""
    return [m for m in modules if m not in LIGHT
            and (m in names or m.startswith(tuple(n + "." for n in names)))]


def ordinary_files(tmp_path: Path) -> list[str]:
    """Files a commit holds that are no credential: source, docs, data."""
    files = {"app.py": "import os\nprint(os.getcwd())\n", "README.md": "# a project\n",
             "settings.json": '{"name": "app", "debug": false}\n', "notes.txt": "todo\n",
             "pyproject.toml": '[project]\nname = "app"\n'}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return [str(tmp_path / name) for name in files]


def bare(tmp_path: Path, *args: str) -> tuple[int, list[str], list[str]]:
    """(exit code, modules before credguard, modules at the end) of ``credguard ARGS`` run by
    ``python -S`` with this test's environment."""
    report = tmp_path / "bare.txt"
    where = ":".join([str(Path(cli.__file__).parents[2]), *site.getsitepackages()])
    proc = subprocess.run([sys.executable, "-S", "-c", BARE_CHILD, str(report), where, *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert report.is_file(), proc.stderr
    code, before, after = ast.literal_eval(report.read_text())
    return code, before, after


def test_a_quick_check_loads_nothing_the_full_path_is_built_from(tmp_path: Path) -> None:
    code, before, modules = bare(tmp_path, "check", *ordinary_files(tmp_path))
    assert code == 0
    assert "credguard.cli.quick" in modules  # the quick path ran
    assert among(before, FULL_PATH) == []  # (python -S loads none of them itself)
    assert among(modules, FULL_PATH) == []


def test_a_quick_check_with_a_validated_configuration_loads_nothing_more(
        tmp_path: Path, home: Home) -> None:
    """A first check loads the configuration and stamps it; the next takes the quick path."""
    home.write(".config/credguard/config.toml", '[scan]\nmax_file_size = "8 MiB"\n')
    home.write(".local/state/credguard/journal/0.lock", "")  # the state dir, as commands make it
    files = ordinary_files(tmp_path)
    code, _, modules = bare(tmp_path, "check", *files)
    assert code == 0 and "credguard.config" in modules
    code, _, modules = bare(tmp_path, "check", *files)
    assert code == 0 and "credguard.cli.quick" in modules
    assert among(modules, FULL_PATH) == []


def test_a_check_needing_a_closer_look_takes_the_full_path(tmp_path: Path) -> None:
    files = ordinary_files(tmp_path)
    marked = tmp_path / "app-config.json"
    marked.write_text('{"client_id": "not a secret"}\n')  # a marker: read it all
    code, _, modules = bare(tmp_path, "check", str(marked), *files)
    assert code == 0 and "credguard.scan.check" in modules


def test_check_loads_neither_keyring_nor_crypto_nor_daemon(tmp_path: Path) -> None:
    code, modules, _ = loaded(tmp_path, "check", *ordinary_files(tmp_path), entry="full")
    assert code == 0
    assert "credguard.scan.check" in modules  # the check ran here
    assert among(modules, HEAVY) == []


def test_check_with_nothing_to_recover_loads_no_recovery_module(tmp_path: Path) -> None:
    """Here the RAM candidate is the shared /dev/shm (the test's runtime dir is no tmpfs): its
    listing finds nothing, so neither credguard.fs.shared nor its logging is loaded."""
    code, modules, _ = loaded(tmp_path, "check", *ordinary_files(tmp_path), entry="full")
    assert code == 0
    assert among(modules, RECOVERY) == []


def test_check_of_ordinary_files_loads_no_detector_family(tmp_path: Path) -> None:
    code, modules, _ = loaded(tmp_path, "check", *ordinary_files(tmp_path), entry="full")
    assert code == 0
    assert among(modules, FAMILIES) == []


def test_check_loads_only_its_own_verb_module(tmp_path: Path) -> None:
    code, modules, _ = loaded(tmp_path, "check", *ordinary_files(tmp_path), entry="full")
    assert code == 0
    verbs = {f"credguard.cli.{m}" for m in cli.VERBS.values()}
    assert sorted(verbs & set(modules)) == ["credguard.cli.scan_cmd"]


def test_a_check_that_finds_a_credential_loads_its_family(tmp_path: Path) -> None:
    """The lazy registry still judges: a publish profile among the files is found."""
    profile = tmp_path / "site.PublishSettings"
    profile.write_bytes(payloads.publish_profile("site").data)
    code, modules, _ = loaded(tmp_path, "check", str(profile), *ordinary_files(tmp_path))
    assert code == 1
    assert "credguard.detect.publishsettings" in modules
    assert among(modules, HEAVY) == []


def test_help_loads_no_heavy_module_and_lists_every_verb_with_its_summary(
    tmp_path: Path,
) -> None:
    code, modules, out = loaded(tmp_path, "--help")
    assert code == 0
    assert among(modules, HEAVY) == []
    (sub,) = (a for a in cli.build_parser()._actions
              if isinstance(a, argparse._SubParsersAction))
    listed = " ".join(out.split())  # argparse wraps long summaries
    for choice in sub._choices_actions:
        assert f"{choice.dest} {' '.join((choice.help or '').split())}" in listed


def _registered(module: str) -> list[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(f"credguard.cli.{module}").register(sub)
    return list(sub.choices)


def test_the_verb_table_names_what_each_module_registers() -> None:
    for module in dict.fromkeys(cli.VERBS.values()):
        assert _registered(module) == [v for v, m in cli.VERBS.items() if m == module], module


def test_the_whole_parser_lists_the_verbs_in_the_table_order() -> None:
    (sub,) = (a for a in cli.build_parser()._actions
              if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(cli.VERBS)


@pytest.mark.parametrize(("argv", "verb"), [
    (["check", "x"], "check"),
    (["--debug", "exec", "ID", "--", "true"], "exec"),
    (["-h", "check"], None),  # the top-level help
    (["--version"], None),
    (["chekc", "x"], None),  # a typo: the whole parser says which verbs there are
    ([], None),
])  # fmt: skip
def test_the_verb_a_command_line_names(argv: list[str], verb: str | None) -> None:
    assert cli.verb_of(argv) == verb


def test_exec_loads_its_verb_alone_and_no_keyring_library(
    secret_service: SecretService, home: Home, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    """``exec`` fetches the key itself (secretstorage), so the Secret Service, cryptography and
    the RAM directory load; the ``keyring`` library, the other verbs, the journal (nothing to
    recover), configparser, datetime and platformdirs do not."""
    profile = home.write("Downloads/site.PublishSettings", payloads.publish_profile("site").data)
    item = json.loads(cli("import", "--json", str(profile)).out)["imported"][0]["id"]
    code, modules, _ = loaded(tmp_path, "exec", item, "--", "true")
    assert code == 0
    assert {"secretstorage", "cryptography", "credguard.handoff.ramdir"} <= set(modules)
    verbs = {f"credguard.cli.{m}" for m in VERBS.values()}
    assert sorted(verbs & set(modules)) == ["credguard.cli.exec_cmd"]
    assert among(modules, ("keyring", "credguard.protect", "configparser", "datetime",
                           "platformdirs", "credguard.config.layers")) == []


def test_protect_through_the_daemon_loads_no_keyring_crypto_config_or_transaction(
        secret_service: SecretService, home: Home, tmp_path: Path) -> None:
    """The daemon holds the key and does the work: the command only talks to it."""
    import os

    from helpers.daemon import DaemonProcess

    work = tmp_path / "work"
    work.mkdir()
    profile = work / "a.PublishSettings"
    profile.write_bytes(payloads.publish_profile("a").data)
    daemon = DaemonProcess(dict(os.environ), tmp_path / "daemon.log").start()
    try:
        code, modules, _ = loaded(tmp_path, "protect", str(profile))
    finally:
        assert daemon.stop() == 0
    assert code == 0 and not profile.exists()
    assert "protect request: 1 of 1" in daemon.stderr()
    assert among(modules, (*HEAVY, "credguard.config", "credguard.protect",
                           "credguard.detect", "credguard.fs.shared")) == []
    # nor what only the daemon's side of the control channel, or Windows', needs: hmac and
    # hashlib's OpenSSL (with struct, logging and threading, 12 ms when they came with it)
    assert among(modules, ("hmac", "_hashlib", "struct")) == []
