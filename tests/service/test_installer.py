"""``installers/install.sh`` for real, in the test's throwaway HOME, from a git copy of this
checkout (which must stay clean: pip builds from the installer's own temporary copy).

Kept fast and nearly offline: the installer's venv is made beforehand (it upgrades an existing
one in place) with a ``.pth`` line giving it this project's installed dependencies and pip,
so pip only builds credguard itself; setuptools for the isolated build comes through the
developer's pip cache, and ``--with-tray`` fetches the tray's packages the same way (they are
left out of that ``.pth`` so the test sees them land in the installer's venv).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from helpers import msalcache
from helpers.home import REPO, Home

SCRIPT = REPO / "installers" / "install.sh"
# the real pip cache, looked up before the test HOME replaces it
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"
)
_NOT_SHARED = ("credguard", "__editable__", "setuptools", "_distutils_hack", "distutils-",
               "pystray", "PIL", "pillow", "__pycache__")


def install_sh(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "PIP_CACHE_DIR": PIP_CACHE,
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SHELL": "/bin/bash"}
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True,
                          timeout=240, check=False, env=env, stdin=subprocess.DEVNULL)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          timeout=60, check=True).stdout


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed git copy of this checkout's files (tracked and not ignored)."""
    copy = tmp_path_factory.mktemp("checkout")
    files = git(REPO, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, copy / rel)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    git(copy, "-c", "user.email=t@example.invalid", "-c", "user.name=t", "commit", "-qm", "x")
    return copy


@pytest.fixture(scope="module")
def shared_deps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's installed packages (pip included), but not credguard, the build tools
    or the tray's packages: what the installer's venv may use instead of downloading."""
    deps = tmp_path_factory.mktemp("deps")
    for entry in Path(sysconfig.get_path("purelib")).iterdir():
        if not entry.name.startswith(_NOT_SHARED) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    return deps


def prepared_venv(home: Home, deps: Path) -> Path:
    venv = home.root / ".local" / "share" / "credguard" / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                             text=True, check=True, timeout=30).stdout.strip()
    (Path(purelib) / "shared-deps.pth").write_text(f"{deps}\n")
    return venv


def daemons_under(root: Path) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if str(root) in " ".join(p.info["cmdline"] or []) and "daemon" in p.info["cmdline"]]


@pytest.fixture
def reaper(home: Home) -> Iterator[None]:
    """Whatever still runs from the test HOME is ended when the test ends."""
    yield
    procs = daemons_under(home.root)
    for proc in procs:
        proc.terminate()
    psutil.wait_procs(procs, timeout=10)


@pytest.mark.parametrize("shell", ["sh", "bash", "dash"])
def test_install_sh_syntax(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    proc = subprocess.run([shell, "-n", str(SCRIPT)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("flag", ["--purge-vault", "--purge-config", "--purge-state",
                                  "--unseal"])
def test_uninstall_flags_need_uninstall(flag: str) -> None:
    proc = install_sh(SCRIPT, flag)
    assert proc.returncode == 2 and "--uninstall" in proc.stderr
    assert install_sh(SCRIPT, "--bogus").returncode == 2


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_install_start_and_uninstall_with_a_sealed_cache(
    home: Home, checkout: Path, shared_deps: Path, secret_service: object, reaper: None
) -> None:
    script = checkout / "installers" / "install.sh"
    venv = prepared_venv(home, shared_deps)
    link = home.root / ".local" / "bin" / "credguard"
    unit = home.root / ".config" / "systemd" / "user" / "credguard.service"
    config_dir = home.root / ".config" / "credguard"
    state_dir = home.root / ".local" / "state" / "credguard"
    vault = home.root / ".local" / "share" / "credguard" / "vault"

    quiet = install_sh(script, "--venv", "--no-start")
    out = quiet.stdout + quiet.stderr
    assert quiet.returncode == 0, out
    assert "systemctl --user" not in out and "credguard start" in out
    assert daemons_under(home.root) == [] and unit.is_file()

    proc = install_sh(script, "--venv", "--with-tray")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "error:" not in out and "run:" not in out
    assert "installing credguard with pip" in proc.stderr and "  Successfully installed" in out
    assert f"echo 'export PATH=\"{link.parent}:$PATH\"' >> ~/.bashrc" in proc.stderr
    started = re.search(r"started the daemon \(pid (\d+)\)", proc.stderr)
    assert started, proc.stderr
    pid = int(started.group(1))
    assert [p.pid for p in daemons_under(home.root)] == [pid]
    tray = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import importlib.metadata as m; print(m.distribution('pystray')"
                           ".locate_file(''))"], capture_output=True, text=True, timeout=30)
    assert tray.stdout.strip().startswith(str(venv)), tray.stderr  # in the venv, not shared
    assert git(checkout, "status", "--porcelain", "--ignored") == ""

    # a sealed Azure CLI cache: uninstalling must not strand its tokens in the vault
    cache = home.write(".azure/msal_token_cache.json", msalcache.state_with(msalcache.new_user()))
    sealed = subprocess.run([str(link), "seal", "azure-cli"], capture_output=True, text=True,
                            timeout=60)
    assert sealed.returncode == 0 and not cache.exists(), sealed.stderr
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.toml").write_text("")
    refused = install_sh(script, "--uninstall", "--purge-state")
    assert refused.returncode == 1 and "--unseal" in refused.stderr
    assert "Nothing was removed" in refused.stderr and link.exists() and state_dir.is_dir()
    assert [p.pid for p in daemons_under(home.root)] == [pid]

    gone = install_sh(script, "--uninstall", "--unseal", "--purge-state")
    assert gone.returncode == 0, gone.stderr
    assert cache.exists() and msalcache.accounts(cache.read_bytes())  # unsealed first
    assert f"stopped the daemon (pid {pid}" in gone.stderr and daemons_under(home.root) == []
    assert not venv.exists() and not link.is_symlink() and not unit.exists()
    assert not state_dir.exists() and f"deleted the state: {state_dir}" in gone.stderr
    assert (config_dir / "config.toml").exists() and vault.is_dir()
    assert f"kept the vault:         {vault}" in gone.stderr
    assert f"kept the configuration: {config_dir}" in gone.stderr

    purged = install_sh(script, "--uninstall", "--purge-config")
    assert purged.returncode == 0, purged.stderr
    assert not config_dir.exists() and vault.is_dir()  # the vault needs --purge-vault twice
    assert git(checkout, "status", "--porcelain", "--ignored") == ""


# A stand-in for an installed credguard that keeps its things where macOS does: one folder,
# ~/Library/Application Support/credguard, for the configuration, the state and the vault.
MACOS_CREDGUARD = """#!/bin/sh
lib="$HOME/Library/Application Support/credguard"
case "$*" in
  "service paths") printf 'vault\t%s\nconfig\t%s\nstate\t%s\nlog\t%s\n' \\
    "$lib/vault" "$lib" "$lib" "$lib/daemon.log" ;;
  "status --json") echo '{"version": 1, "running": false, "sealed": []}' ;;
  "vault destroy --yes") rm -rf "$lib/vault"; echo "vault destroyed" ;;
esac
echo "$*" >>"$HOME/credguard-calls"
"""


def macos_like_install(home: Home) -> Path:
    """The stand-in as the installer's venv's credguard, and what the Linux places would be
    (each holding a file): the installer must leave those alone. Returns the macOS folder."""
    cg = home.root / ".local" / "share" / "credguard" / "venv" / "bin" / "credguard"
    cg.parent.mkdir(parents=True, exist_ok=True)
    cg.write_text(MACOS_CREDGUARD)
    cg.chmod(0o755)
    library = home.root / "Library" / "Application Support" / "credguard"
    for rel in (".config/credguard/config.toml", ".local/state/credguard/audit.log",
                ".local/share/credguard/vault/item", "Library/Application Support/credguard/"
                "config.toml", "Library/Application Support/credguard/vault/item"):
        home.write(rel, "x")
    return library


LINUX_PLACES = (".config/credguard/config.toml", ".local/state/credguard/audit.log",
                ".local/share/credguard/vault/item")


def test_uninstall_purges_the_places_credguard_names_never_the_linux_ones(home: Home) -> None:
    """macOS keeps the configuration, the state and the vault in one folder, which no variable
    moves here: a stand-in credguard (a fake, as no Mac runs these tests) names those places
    as the real one does there. The installer asks it; a folder that also holds the vault is
    deleted only once the vault is destroyed (asked twice)."""
    library = macos_like_install(home)
    kept = install_sh(SCRIPT, "--uninstall", "--purge-config", "--purge-state")
    assert kept.returncode == 0, kept.stderr
    assert (library / "vault" / "item").exists() and (library / "config.toml").exists()
    assert (f"not deleting the configuration in {library}: it also holds the vault "
            "(--purge-vault twice), which is kept") in kept.stderr
    assert f"kept the vault:         {library / 'vault'}" in kept.stderr
    assert all((home.root / rel).exists() for rel in LINUX_PLACES), kept.stderr

    macos_like_install(home)  # the uninstall removed the venv, and the stand-in with it
    gone = install_sh(SCRIPT, "--uninstall", "--purge-vault", "--purge-vault",
                      "--purge-config", "--purge-state")  # fmt: skip
    assert gone.returncode == 0, gone.stderr
    assert "vault destroy --yes" in (home.root / "credguard-calls").read_text()
    assert not library.exists() and f"deleted the configuration: {library}" in gone.stderr
    assert f"destroyed the vault:    {library / 'vault'}" in gone.stderr
    assert all((home.root / rel).exists() for rel in LINUX_PLACES), gone.stderr


def test_uninstalled_credguard_places_come_from_the_checkout(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no credguard installed, this checkout's credguard.paths names the places: it
    follows CREDGUARD_CONFIG, which the shell knows nothing of."""
    config = home.write("elsewhere/credguard/config.toml", "").parent
    linux = home.write(".config/credguard/config.toml", "").parent
    monkeypatch.setenv("CREDGUARD_CONFIG", str(config / "config.toml"))
    proc = install_sh(SCRIPT, "--uninstall", "--purge-config")
    assert proc.returncode == 0, proc.stderr
    assert not config.exists() and f"deleted the configuration: {config}" in proc.stderr
    assert linux.is_dir()


def test_the_windows_installer_refuses_before_it_changes_anything() -> None:
    """credguard has never run on Windows (issue 19; README "Platforms"), so install.ps1
    installs only with -Experimental and otherwise stops first (uninstalling needs no flag).
    Read as text: no PowerShell installs here (Debian has none), so this checks that the
    refusal is the script's first statement after its helper functions."""
    script = (REPO / "installers" / "install.ps1").read_text()
    refusal = script.index("if (-not (($args -contains '-Experimental') -or "
                           "($args -contains '-Uninstall'))) {")
    body = script[script.index("$ErrorActionPreference"):]
    first = next(line for line in body.splitlines()[1:]
                 if line.strip() and not line.startswith(("#", " ", "}", "$Src", "$Data",
                                                          "$Venv", "$Vault", "function")))
    assert first.startswith("if (-not (($args -contains '-Experimental')"), first
    assert refusal < script.index("foreach ($arg in $args)")
    block = script[refusal:script.index("\n}\n", refusal)]
    assert "Fail (" in block and "Nothing was installed." in block and "-Experimental" in block
    assert "'-Experimental' { }" in script  # accepted by the option loop
    assert "-Experimental" in script[:script.index("#Requires")]  # and in the usage text


# -- install.ps1, read as text ----------------------------------------------------------------
# PowerShell cannot be installed here (Debian has no package for it; PyPI and npm only wrap an
# installed pwsh), so install.ps1 is never executed by these tests: they check that its steps
# exist and come in the right order.

PS1 = REPO / "installers" / "install.ps1"


def ps1_function(script: str, name: str) -> str:
    """The text of ``function NAME`` in ``script``, up to its closing brace at column 0."""
    start = script.index(f"\nfunction {name}")
    return script[start:script.index("\n}\n", start) + 3]


def test_install_ps1_says_how_to_run_it() -> None:
    """The default execution policy refuses scripts: the header gives the command that works,
    and ``-Help`` prints the header through its list of options."""
    script = PS1.read_text()
    header = script[:script.index("#Requires")]
    assert "powershell -ExecutionPolicy Bypass -File installers\\install.ps1" in header
    help_lines = re.search(r"-TotalCount (\d+)", script)
    assert help_lines is not None
    count = int(help_lines.group(1))
    shown = script.splitlines()[:count]
    assert all(line.startswith("#") for line in shown)
    assert "-ExecutionPolicy Bypass" in "\n".join(shown) and "'destroy'" in shown[-1]


def test_install_ps1_checks_that_the_daemon_started() -> None:
    script = PS1.read_text()
    start = ps1_function(script, "Start-Daemon")
    restart, wait = start.index("& $Cg restart"), start.index("Wait-Daemon $Cg")
    failure = start.index("Fail (", wait)
    assert restart < wait < failure
    assert "Get-Place $Cg 'log'" in start[wait:failure] and "$log" in start[failure:]
    assert "did not start" in start[failure:]
    poll = ps1_function(script, "Wait-Daemon")
    assert "& $Cg status" in poll and "$LASTEXITCODE -eq 0" in poll
    assert "$ReadySeconds" in poll and "$ReadySeconds = 10" in script
    assert "'log' { return (Join-Path $Data 'daemon.log') }" in ps1_function(script, "Get-Place")


def test_install_ps1_puts_credguard_on_the_user_path_and_uninstall_takes_it_off() -> None:
    script = PS1.read_text()
    add = ps1_function(script, "Add-UserPath")
    assert add.index("if (Test-UserPath $Dir)") < add.index("} else {") < add.index("Set-UserPath")
    assert "$PathMarker" in add.split("} else {")[1]  # remembered only when this script added it
    write = ps1_function(script, "Set-UserPath")
    assert "ExpandString" in write and "SetEnvironmentVariable(" in write and "'User'" in write
    body = script[script.index("\nif ($Uninstall) {"):]
    assert body.index("$cg = Install-") < body.index("Add-UserPath (Split-Path -Parent $cg)")
    assert body.index("Add-UserPath") < body.index("Start-Daemon $cg")
    assert "Remove-UserPath" in ps1_function(script, "Uninstall-Credguard")
    remove = ps1_function(script, "Remove-UserPath")
    assert remove.index("Test-Path -LiteralPath $PathMarker") < remove.index("Set-UserPath")


def test_install_ps1_defines_each_function_before_the_script_calls_it() -> None:
    """PowerShell runs a script top to bottom: a function is known only once its definition
    has run, so a top-level call above it fails."""
    lines = PS1.read_text().splitlines()
    defined = {m.group(1): i for i, line in enumerate(lines)
               if (m := re.match(r"function ([\w-]+)", line))}
    for i, line in enumerate(lines):
        if not line or line[0] in "#} \t" or line.startswith("function "):
            continue
        for name, at in defined.items():
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", line):
                assert at < i, f"line {i + 1} calls {name}, defined on line {at + 1}"
