"""The project-tree default in the real daemon: someone's working files are hardened and
alerted, never deleted, never vaulted; a plain download is still protected; a policy can opt a
project in to protection.

The daemon watches ``~/Documents`` recursively (``paths.default_roots``: the documents root is
recursive and matches by name), so the files are dropped there, into a real git repository and a
real Visual Studio project folder, while the daemon runs on real inotify, the real Secret Service
and a notification server on the private bus.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.daemon import DaemonProcess, audit_events, running_daemon, wait_for
from helpers.home import Home, sha, vault_shas
from helpers.secret_service import SecretService

from credguard.detect import kinds

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import NotifyCall, RecordingServer

pytestmark = pytest.mark.timeout(180)
PROFILES = Path("Properties") / "PublishProfiles"


def git_init(repo: Path) -> Path:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env, timeout=30)
    return repo


def drop(path: Path, data: bytes) -> Path:
    """Write a new file readable by everyone, as tools do (0644 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.fchmod(fd, 0o644)
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def audited(home: Home, event: str, path: Path) -> list[dict[str, object]]:
    return [e for e in audit_events(home.root / ".local" / "state")
            if e["event"] == event and e.get("path") == str(path)]


def private(path: Path) -> bool:
    return path.stat().st_mode & 0o777 == 0o600


def notice_for(server: RecordingServer, name: str) -> NotifyCall:
    return wait_for(lambda: next((c for c in server.calls if name in c.body), None), timeout=15)


@pytest.fixture
def daemon(notification_server: RecordingServer, secret_service: SecretService,
           tmp_path: Path) -> Iterator[DaemonProcess]:
    yield from running_daemon(dict(os.environ), tmp_path)


@pytest.fixture
def trees(home: Home) -> tuple[Path, Path, Path]:
    """Made before the daemon starts: a git repository and a VS project under ~/Documents,
    and a git clone in ~/Downloads; each with its PublishProfiles folder."""
    repo = git_init(home.documents / "webapp")
    vs = home.documents / "Contoso"
    (vs / PROFILES).mkdir(parents=True)
    (vs / "Contoso.csproj").write_text('<Project Sdk="Microsoft.NET.Sdk.Web" />\n')
    (repo / PROFILES).mkdir(parents=True)
    clone = git_init(home.downloads / "clone")
    return repo, vs, clone


def test_project_files_are_hardened_and_alerted_never_deleted(
    trees: tuple[Path, Path, Path], daemon: DaemonProcess, notification_server: RecordingServer,
    home: Home,
) -> None:
    repo, vs, clone = trees
    in_repo, in_vs = payloads.pubxml_user(), payloads.pubxml_user(connection_strings=True)
    cloned, download = payloads.publishsettings_v1(), payloads.publishsettings_v2()

    git_file = drop(repo / PROFILES / "prod.pubxml.user", in_repo.data)
    wait_for(lambda: private(git_file) and audited(home, "alerted", git_file), timeout=20)
    call = notice_for(notification_server, "prod.pubxml.user")
    assert call.summary == "Credential file in a project, not protected"
    assert "prod.pubxml.user (in ~/Documents/webapp/Properties/PublishProfiles)" in call.body
    assert "Inside a git work tree; git would commit it." in call.body
    assert call.urgency == 2 and set(call.buttons) == {"protect", "ignore"}

    vs_file = drop(vs / PROFILES / "site.pubxml.user", in_vs.data)
    wait_for(lambda: private(vs_file) and audited(home, "alerted", vs_file), timeout=20)
    call = notice_for(notification_server, "site.pubxml.user")
    assert "Inside a project folder (.csproj)." in call.body

    clone_file = drop(clone / "old.publishsettings", cloned.data)  # project beats downloads
    plain = drop(home.downloads / "contoso.publishsettings", download.data)
    wait_for(lambda: not plain.exists(), timeout=20)
    wait_for(lambda: private(clone_file) and audited(home, "alerted", clone_file), timeout=20)

    for path, payload in ((git_file, in_repo), (vs_file, in_vs), (clone_file, cloned)):
        assert path.read_bytes() == payload.data and private(path)
        (alert,) = audited(home, "alerted", path)
        assert alert["action"] == "harden" and audited(home, "hardened", path)
        assert not audited(home, "protected", path)
    assert audited(home, "alerted", git_file)[0]["kind"] == kinds.VS_PUBLISH_SECRET
    assert vault_shas(daemon.env) == [sha(download.data)]  # only the plain download
    assert audited(home, "protected", plain)
    seen = (repr(notification_server.calls) + daemon.stderr()
            + (home.root / ".local" / "state" / "credguard" / "audit" / "audit.jsonl").read_text())
    for payload in (in_repo, in_vs, cloned, download):
        assert not [s for s in payload.secrets if s in seen]


@pytest.fixture
def opted_in(trees: tuple[Path, Path, Path], home: Home, secret_service: SecretService,
             tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon whose policy protects VS publish-profile secrets inside projects too."""
    home.config_file.parent.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(
        f'[policy]\n{kinds.VS_PUBLISH_SECRET} = {{ project = "protect" }}\n')
    yield from running_daemon(dict(os.environ), tmp_path)


def test_policy_can_opt_projects_in_to_protection(
    trees: tuple[Path, Path, Path], opted_in: DaemonProcess, home: Home,
) -> None:
    repo = trees[0]
    payload = payloads.pubxml_user()
    path = drop(repo / PROFILES / "prod.pubxml.user", payload.data)
    wait_for(lambda: not path.exists(), timeout=20)
    assert vault_shas(opted_in.env) == [sha(payload.data)]
    assert audited(home, "protected", path)
