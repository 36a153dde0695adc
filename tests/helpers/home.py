"""The test's world: its private home, how a CLI run is recorded, running credguard as a real
process, and small checks several test packages share."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
HELPERS = TESTS / "helpers"
# keep the real az offline: no telemetry (it would spawn a detached uploader that outlives the
# command and writes telemetry/, logs/ and telemetry.txt into the config dir), no survey prompt
AZ_OFFLINE_ENV = {"AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false"}


@dataclass
class Home:
    """A private home directory laid out like a Linux desktop user's."""

    root: Path

    @property
    def downloads(self) -> Path:
        return self.root / "Downloads"

    @property
    def desktop(self) -> Path:
        return self.root / "Desktop"

    @property
    def documents(self) -> Path:
        return self.root / "Documents"

    @property
    def azure(self) -> Path:
        return self.root / ".azure"

    @property
    def config_file(self) -> Path:
        return self.root / ".config" / "credguard" / "config.toml"

    @property
    def policy_file(self) -> Path:
        return self.root / "etc-xdg" / "credguard" / "policy.toml"

    def write(self, rel: str, data: bytes | str, mode: int = 0o600) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        path.chmod(mode)
        return path


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_subprocess(*args: str, timeout: float = 60, **kwargs: object) -> Run:
    """Run ``python -m credguard`` as a real process with the test's environment."""
    proc = subprocess.run(
        [sys.executable, "-m", "credguard", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def vault_shas(env: dict[str, str]) -> list[str]:
    """The sha256 of every vault item, after ``credguard recover`` (listing the vault is
    read-only: it never finishes an interrupted deletion)."""
    recovered = run_subprocess("recover", env=env)
    assert recovered.code == 0, recovered.err
    run = run_subprocess("vault", "list", "--json", env=env)
    assert run.code == 0, run.err
    return sorted(i["sha256"] for i in json.loads(run.out)["items"])


def systemd_verify(unit: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze --user verify`` with a throwaway runtime dir (no user manager needed)."""
    with tempfile.TemporaryDirectory(prefix="cg-verify-") as runtime:
        return subprocess.run(
            ["systemd-analyze", "--user", "verify", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "XDG_RUNTIME_DIR": runtime},
        )
