"""Someone's working files are not leftovers: the ``project`` policy location, finding project
trees on real directories (hostile ones too), and what scan/check and notifications say."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import payloads
from helpers.home import Home, Run

from credguard import config, policy
from credguard.detect import kinds
from credguard.notify import messages
from credguard.notify.desktop import Notifier
from credguard.policy import Action, Location
from credguard.scan import project
from credguard.scan.project import Projects

if TYPE_CHECKING:  # imported by pytest_plugins, for its fixtures
    from helpers.notification_server import RecordingServer

pytestmark = pytest.mark.timeout(60)
Cli = Callable[..., Run]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def git_init(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env, timeout=30)
    return repo


def find(path: Path) -> project.Project | None:
    return Projects().find(str(path))


# -- the policy ---------------------------------------------------------------------------


def test_project_wins_over_every_location_but_the_tools_own(home: Home) -> None:
    for where in (home.downloads / "x", home.desktop / "x", home.documents / "x",
                  home.root / ".local" / "share" / "Trash" / "files" / "x", home.root / "x",
                  home.root / "src" / "x", Path("/srv/x")):
        assert policy.location_of(where) is not Location.PROJECT
        assert policy.location_of(where, in_project=True) is Location.PROJECT
    for where, tool in ((home.azure / "x", Location.AZURE_CLI),
                        (home.root / ".Azure" / "x", Location.AZURE_POWERSHELL),
                        (home.root / ".azd" / "auth" / "x", Location.AZD)):
        assert policy.location_of(where, in_project=True) is tool


def test_default_in_a_project_is_harden_for_every_kind(home: Home) -> None:
    for kind in policy.policy_kinds():
        assert policy.decide({}, kind, home.downloads / "x", in_project=True) is Action.HARDEN
        assert policy.decide({}, kind, home.downloads / "x") is Action.PROTECT


def test_policy_can_opt_a_project_in_to_protect(home: Home) -> None:
    write(home.config_file, f'[policy]\n{kinds.VS_PUBLISH_SECRET} = {{ project = "protect" }}\n'
                            f'{kinds.PUBLISHSETTINGS} = "protect"\n')
    cfg = config.load()
    at = home.documents / "repo" / "x"
    assert policy.decide(cfg.values, kinds.VS_PUBLISH_SECRET, at, in_project=True) == "protect"
    assert policy.decide(cfg.values, kinds.VS_PUBLISH_SECRET, home.root / "x") == "alert"
    # a bare action is every location, the project included
    assert policy.decide(cfg.values, kinds.PUBLISHSETTINGS, at, in_project=True) == "protect"
    assert policy.decide(cfg.values, kinds.PUBLISH_PROFILE, at, in_project=True) == "harden"


def test_managed_policy_floor_holds_in_projects(home: Home) -> None:
    write(home.policy_file, f'[policy]\n{kinds.PUBLISHSETTINGS} = {{ project = "protect" }}\n')
    write(home.config_file, f'[policy]\n{kinds.PUBLISHSETTINGS} = {{ project = "alert" }}\n')
    cfg = config.load()
    assert any("would weaken" in w for w in cfg.warnings)
    assert policy.decide(cfg.values, kinds.PUBLISHSETTINGS, home.root / "p" / "x",
                         in_project=True) == "protect"


# -- finding project trees ----------------------------------------------------------------


@pytest.mark.parametrize("marker", ["App.sln", "App.csproj", "App.vbproj", "App.fsproj",
                                    "LEGACY.CSPROJ"])
def test_visual_studio_project_files_mark_a_project(home: Home, marker: str) -> None:
    top = home.documents / "Contoso"
    write(top / marker, "<Project />")
    profile = home.write("Documents/Contoso/Properties/PublishProfiles/p.pubxml.user", b"")
    assert find(profile) == project.Project(str(top), marker.rsplit(".", 1)[1].lower())


def test_git_directory_file_and_link_mark_a_work_tree(home: Home, tmp_path: Path) -> None:
    repo = git_init(home.documents / "repo")
    assert find(home.write("Documents/repo/a/b/x.pubxml", b"")) == project.Project(
        str(repo), "git", True)
    worktree = home.documents / "wt"
    write(worktree / ".git", f"gitdir: {repo}/.git/worktrees/wt\n")  # a worktree's .git file
    found = find(home.write("Documents/wt/x.pubxml", b""))
    assert found is not None and (found.root, found.marker) == (str(worktree), "git")
    linked = home.documents / "linked"
    linked.mkdir()
    (linked / ".git").symlink_to(tmp_path / "nowhere")  # counted, never followed
    found = find(home.write("Documents/linked/x.pubxml", b""))
    assert found is not None and (found.root, found.marker) == (str(linked), "git")


def test_the_nearest_git_work_tree_wins(home: Home) -> None:
    outer = git_init(home.documents / "outer")
    write(outer / "App.csproj", "<Project />")
    inner = outer / "vendor" / "lib"
    write(inner / ".git", "gitdir: ../../.git/modules/lib\n")  # a submodule
    assert find(home.write("Documents/outer/Properties/p.pubxml", b"")) == project.Project(
        str(outer), "git", True)
    found = find(home.write("Documents/outer/vendor/lib/p.pubxml", b""))
    assert found is not None and found.root == str(inner)


def test_visual_studio_folders(home: Home) -> None:
    repos = home.root / "source" / "repos"
    assert find(home.write("source/repos/App/Properties/p.pubxml.user", b"")) == \
        project.Project(str(repos), "visual-studio-dir")
    studio = home.documents / "Visual Studio 2022"
    assert find(home.write("Documents/Visual Studio 2022/Projects/App/p.pubxml", b"")) == \
        project.Project(str(studio), "visual-studio-dir")
    assert find(home.write("Documents/Visual Studio 2022.publishsettings", b"")) is None


def test_plain_folders_and_markers_above_the_home_are_not_projects(
        home: Home, tmp_path: Path) -> None:
    git_init(tmp_path / "outside-home")
    write(tmp_path / "Big.sln", "")
    assert (tmp_path / "home").is_dir() and not (tmp_path / ".git").exists()
    (tmp_path / ".git").mkdir()  # above the home: not looked at
    assert find(home.write("Downloads/x.publishsettings", b"")) is None
    assert find(home.write("Documents/notes/x.pubxml", b"")) is None
    # outside the home the search goes up to /
    outside = tmp_path / "outside-home" / "deep" / "x.pubxml"
    write(outside, "")
    assert find(outside) == project.Project(str(tmp_path / "outside-home"), "git", True)


def test_links_on_the_way_are_never_followed(home: Home, tmp_path: Path) -> None:
    real = git_init(tmp_path / "real")
    write(real / "App.csproj", "")
    write(real / "sub" / "x.pubxml", "")
    (home.documents / "link").symlink_to(real)
    assert find(home.documents / "link" / "sub" / "x.pubxml") is None


def test_special_files_are_never_opened(home: Home) -> None:
    top = home.documents / "fifo"
    top.mkdir()
    os.mkfifo(top / "App.csproj")  # a name is enough: never opened
    os.mkfifo(top / ".gitignore")
    found = find(home.write("Documents/fifo/p.pubxml", b""))
    assert found == project.Project(str(top), "csproj")
    os.mkfifo(home.documents / ".git")  # neither a directory nor a file: no work tree
    assert find(home.write("Documents/plain.pubxml", b"")) is None


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many entries each directory listing of credguard.scan.project handed out."""
    counts: list[int] = []
    real = os.scandir

    class Counted:
        def __init__(self, where: int | str) -> None:
            self.inner = real(where)
            counts.append(0)

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

        def __iter__(self) -> Iterator[os.DirEntry[str]]:
            for entry in self.inner:
                counts[-1] += 1
                yield entry

    monkeypatch.setattr(os, "scandir", Counted)  # the os module credguard.scan.project uses
    yield counts


def test_listing_is_bounded_and_cached(home: Home, listings: list[int],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project, "MAX_ENTRIES", 50)
    crowded = home.documents / "crowded"
    crowded.mkdir()
    for i in range(500):
        (crowded / f"f{i:03}.txt").write_bytes(b"")
    projects = Projects()
    for name in ("a.pubxml", "b.pubxml"):
        projects.find(str(home.write(f"Documents/crowded/{name}", b"")))
    assert len(listings) == 3  # home, Documents, crowded: once each for both files
    assert max(listings) <= 51


# -- what the user is told ----------------------------------------------------------------


def test_scan_and_check_say_git_would_commit_it(home: Home, cli: Cli) -> None:
    repo = git_init(home.documents / "webapp")
    write(repo / ".gitignore", "*.pubxml.user\n")
    committed = home.write("Documents/webapp/Properties/PublishProfiles/prod.pubxml",
                           payloads.pubxml().data)
    ignored = home.write("Documents/webapp/Properties/PublishProfiles/prod.pubxml.user",
                         payloads.pubxml_user().data)
    plain = home.write("Downloads/old.publishsettings", payloads.publishsettings_v1().data)
    run = cli("scan", "--local", str(home.root))
    assert run.code == 1
    assert "project:     inside a git work tree; git would commit it" in run.out
    assert "project:     inside a git work tree; git ignores it" in run.out
    doc = json.loads(cli("scan", "--local", "--json", str(home.root)).out)
    details = {f["path"]: f["details"] for f in doc["findings"]}
    assert details[str(committed)]["project"] == {"root": str(repo), "marker": "git",
                                                 "git_would_commit": True}
    assert details[str(ignored)]["project"]["git_would_commit"] is False
    assert "project" not in details[str(plain)]
    check = cli("check", str(committed))
    assert check.code == 1 and "git would commit it" in check.out


def test_scan_protect_hardens_inside_a_project_and_never_deletes(home: Home, cli: Cli) -> None:
    git_init(home.documents / "webapp")
    data = payloads.pubxml_user().data
    path = home.write("Documents/webapp/Properties/PublishProfiles/p.pubxml.user", data, 0o644)
    run = cli("scan", "--protect", "--json", str(path))
    (action,) = json.loads(run.out)["actions"]
    assert action["action"] == "harden" and path.read_bytes() == data
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_notification_says_so() -> None:
    note = messages.Note("alerted", kinds.VS_PUBLISH_SECRET, "/h/Documents/w/p.pubxml.user",
                         "sha256:" + "ab" * 32, Action.HARDEN,
                         project="inside a git work tree; git would commit it")
    message = messages.single_message(note)
    assert message.title == "Credential file in a project, not protected"
    assert "Inside a git work tree; git would commit it.\n" in message.body
    assert "Left in place (it is part of your work) and made readable only by you" in message.body
    assert message.urgency == "critical" and dict(message.buttons) == {
        "protect": "Protect now", "ignore": "Ignore"}
    ignored = messages.single_message(messages.Note(
        "alerted", kinds.VS_PUBLISH_SECRET, "/h/x", "", Action.HARDEN,
        project="inside a git work tree; git ignores it"))
    assert ignored.urgency == "normal" and "Inside a git work tree; git ignores it." in ignored.body


def test_project_alerts_are_shown_but_not_for_the_tools_own_caches(
        notification_server: RecordingServer, home: Home) -> None:
    """A home that is a git work tree holds the live caches too: they stay quiet."""
    said = {"action": "harden", "project": "inside a git work tree; git would commit it"}
    fp = "sha256:" + "cd" * 32
    notifier = Notifier(True, lambda *args: None)
    try:
        notifier.event("alerted", kinds.CLI_TOKEN_CACHE, str(home.azure / "msal_token_cache.json"),
                       fp, said)
        notifier.event("alerted", kinds.VS_PUBLISH_SECRET, str(home.documents / "p.pubxml.user"),
                       fp, said)
        (call,) = notification_server.wait_calls(1)
        time.sleep(messages.MIN_GAP + 0.5)
        assert len(notification_server.calls) == 1 and "p.pubxml.user" in call.body
    finally:
        notifier.close()


def test_a_dotfiles_repository_in_the_home_makes_no_download_a_project_file(home: Home) -> None:
    """``git init ~`` is common; every download would otherwise stay in plaintext for good."""
    (home.root / ".git").mkdir()
    (home.root / "MyApp.sln").write_text("")
    path = home.write("Downloads/a.publishsettings", payloads.publish_profile().data)
    assert Projects().find(str(path)) is None
    cfg = config.load()
    assert policy.decide(cfg.values, kinds.PUBLISHSETTINGS, path,
                         Projects().find(str(path)) is not None) == "protect"
    inner = home.write("Downloads/clone/x.publishsettings", payloads.publish_profile().data)
    (home.downloads / "clone" / ".git").mkdir()
    found = Projects().find(str(inner))
    assert found is not None and found.root == str(home.downloads / "clone")
