"""``credguard check``'s quick path (issue 16) answers only what the full check answers: for every
kind of input the output and exit code of ``main`` are the full path's, byte for byte, and the
quick path answers alone exactly for the ordinary files, never for a candidate, a credential, a
link, a special file, a missing path, an option, or leftovers of a crash. Real files in the
test's home, the CLI in-process (``main`` against :func:`credguard.cli.full`)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import payloads
from helpers.generated import documents
from helpers.home import Home, Run
from helpers.quickcheck import Capsys, compare, run

from credguard import paths
from credguard.cli import full, main, quick
from credguard.detect import candidates

pytestmark = pytest.mark.timeout(120)


def ordinary(home: Home) -> dict[str, Path]:
    """Files a commit holds that are no credential, of every shape the quick path reads."""
    text = "import os\nprint(os.getcwd())\n"
    made = {
        "source": home.write("repo/app.py", text),
        "markdown": home.write("repo/README.md", "# a project\n"),
        "json": home.write("repo/package.json", '{"name": "app", "version": "1.0.0"}\n'),
        "toml": home.write("repo/pyproject.toml", '[project]\nname = "app"\n'),
        "empty": home.write("repo/empty.txt", b""),
        "large": home.write("repo/data.csv", b"a,b,c\n" * (1 << 20)),  # past every size cap
        "binary": home.write("repo/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40),
        "utf-16": home.write("repo/notes.txt", "Notes\r\nhello\r\n".encode("utf-16")),
        "utf-16-be": home.write("repo/be.txt", "hello there".encode("utf-16-be")),
        "utf-8-bom": home.write("repo/bom.json", '\ufeff{"a": 1}'.encode()),
        "a mention": home.write("repo/doc.md", "Keep accessTokens.json out of git.\n"),
        "short": home.write("repo/x", "x"),
        "no dot": home.write("repo/Makefile", "all:\n\ttrue\n"),
    }
    odd = os.fsencode(home.root / "repo") + b"/caf\xe9.txt"  # a name that is not UTF-8
    with open(odd, "wb") as f:
        f.write(b"plain\n")
    made["non-UTF-8 name"] = Path(os.fsdecode(odd))
    return made


def test_ordinary_files_take_the_quick_path(capsys: Capsys, home: Home) -> None:
    files = ordinary(home)
    for name, path in files.items():
        assert compare(capsys, path)[0], name
    taken, run = compare(capsys, *files.values())
    assert taken and run == Run(0, "", "")


def test_relative_names_and_names_through_dot_dot(capsys: Capsys, home: Home,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ordinary(home)
    monkeypatch.chdir(home.root / "repo")
    assert compare(capsys, "app.py", "./README.md", "../repo/empty.txt", "x")[0]


def test_every_generated_document_gives_the_full_answer(capsys: Capsys, home: Home) -> None:
    """Each document the suite can generate, under a neutral name: the quick path answers only
    for those the full check passes in silence (found, malformed or skipped: the full path)."""
    found = 0
    for i, (name, data) in enumerate(documents().items()):
        path = home.write(f"repo/doc-{i}.txt", data)
        taken, run = compare(capsys, path)
        found += run.code == 1
        assert taken is (run == Run(0, "", "") and not candidates.sniff_matches(data[:4096])), name
        path.unlink()
    assert found > 100


CANDIDATES = {
    "site.PublishSettings": payloads.publish_profile().data,
    "old.publishsettings": payloads.publishsettings_v1().data,
    "Properties/PublishProfiles/prod.pubxml": payloads.pubxml().data,
    "prod.pubxml.user": payloads.pubxml_user().data,
    "accessTokens.json": payloads.access_tokens().data,
    "msal_token_cache.json": payloads.msal_cache().data,
    "TokenCache.dat": b"",
    ".azure/credentials": b"[default]\nsubscription_id=x\n",
    ".Azure/keystore.cache": b"",
    ".IdentityService/msal.cache": payloads.ps_msal_cache().data,
    ".azd/auth/msal/cache.json": payloads.azd_msal_cache().data,
    ".azd/auth/cred1.2.json": b"{}",
}


@pytest.mark.parametrize("name", CANDIDATES)
@pytest.mark.parametrize("content", ["credential", "empty", "text"])
def test_a_candidate_by_name_is_the_full_paths(capsys: Capsys, home: Home, name: str,
                                              content: str) -> None:
    data = {"credential": CANDIDATES[name], "empty": b"", "text": b"hello\n"}[content]
    path = home.write(f"repo/{name}", data)
    taken, _ = compare(capsys, path)
    assert not taken


def test_a_marker_that_is_no_credential_is_the_full_paths(capsys: Capsys, home: Home) -> None:
    """The prefix could start a credential document: only the full check can say it is not."""
    path = home.write("repo/settings.json", '{"client_id": "not a secret", "debug": true}\n')
    taken, run = compare(capsys, path)
    assert not taken and run == Run(0, "", "")


def test_links_special_files_and_missing_paths_are_the_full_paths(capsys: Capsys,
                                                                  home: Home) -> None:
    files = ordinary(home)
    repo = home.root / "repo"
    (repo / "link.py").symlink_to(files["source"])
    (home.root / "linked-repo").symlink_to(repo, target_is_directory=True)
    os.mkfifo(repo / "fifo")
    cases = {"link": repo / "link.py", "through a linked directory": home.root / "linked-repo"
             / "app.py", "directory": repo, "missing": repo / "gone.txt", "fifo": repo / "fifo",
             "a file as a directory": files["source"] / "x"}
    for name, path in cases.items():  # a FIFO opened for reading would wait for a writer
        taken, run = compare(capsys, files["markdown"], path)
        assert not taken and run.err, name  # each says something: a note or an error


def test_a_fifo_is_never_opened(capsys: Capsys, home: Home) -> None:
    """A writer waits in open() until a reader opens the FIFO: after the check it still waits,
    so the check never opened it (an open for reading without O_NONBLOCK would have blocked)."""
    fifo = home.root / "repo" / "fifo"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        with open(fifo, "wb"):
            opened.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        taken, result = compare(capsys, fifo)
        assert not taken and result.code == 4 and not opened.is_set()
    finally:  # let the writer go (a reader that never blocks, whether it still waits or not)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        thread.join(10)
        os.close(reader)
    assert opened.is_set()


@pytest.mark.parametrize(("options", "code"), [
    (["--json"], 0), (["--sarif"], 0), (["--debug"], 2), (["--"], 2), (["-h"], 0), (["-"], 4),
])  # fmt: skip
def test_an_option_is_the_full_paths(capsys: Capsys, home: Home, options: list[str],
                                     code: int) -> None:
    """Even where the full path only says how to use it (``--`` ends check's options)."""
    taken, run = compare(capsys, ordinary(home)["source"], options=options)
    assert not taken and run.code == code and run.out + run.err


def test_an_option_before_the_verb_is_the_full_paths(capsys: Capsys, home: Home) -> None:
    words = ["--debug", "check", str(ordinary(home)["source"])]
    assert not quick.clean(words)
    assert run(capsys, main, words) == run(capsys, full, words) == Run(0, "", "")


def test_a_check_without_files_is_the_full_paths(capsys: Capsys) -> None:
    assert not quick.clean(["check"])
    got = run(capsys, main, ["check"])
    assert got.code == 2 and "FILE" in got.err


def test_an_interrupted_transaction_is_the_full_paths(capsys: Capsys, home: Home) -> None:
    """The full path says it waits (check never deletes a file): the note is still printed."""
    files = ordinary(home)
    journal = paths.journal_dir()
    journal.mkdir(parents=True)
    (journal / "0123456789abcdef.lock").write_text("")  # a running transaction: nothing waits
    assert compare(capsys, files["source"])[0]
    (journal / "0123456789abcdef.json").write_text("{}")
    taken, run = compare(capsys, files["source"])
    assert not taken and "waits for recovery" in run.err and run.code == 0


@pytest.mark.parametrize("where", ["runtime", "shared", "shared, recorded name"])
def test_a_session_left_in_ram_is_the_full_paths(capsys: Capsys, home: Home, where: str,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared tmpfs (/dev/shm) repointed for both paths: no other process's listing of
    the real one ever sees this test's session."""
    files = ordinary(home)
    shm = tmp_path / "shm"
    shm.mkdir()
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    monkeypatch.setattr(quick, "SHM", str(shm))
    monkeypatch.setattr(paths, "ram_dir_candidates", lambda: [runtime, shm])
    name = {"runtime": runtime / "credguard", "shared": shm / f"credguard-{os.getuid()}",
            "shared, recorded name": shm / f"credguard-{os.getuid()}-0123abcd"}[where]
    name.mkdir(mode=0o700)
    assert compare(capsys, files["source"])[0]
    (name / "session-123").mkdir()
    assert not compare(capsys, files["source"])[0]


@pytest.mark.parametrize(("variable", "value"), [
    ("CREDGUARD_PLATFORM", "linux"), ("ANDROID_DATA", "/data"),
])  # fmt: skip
def test_an_environment_only_the_full_path_knows(capsys: Capsys, home: Home,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 variable: str, value: str) -> None:
    path = ordinary(home)["source"]
    monkeypatch.setenv(variable, value)
    if variable == "ANDROID_DATA":
        monkeypatch.setenv("ANDROID_ROOT", "/system")
    assert not compare(capsys, path)[0]


@pytest.mark.parametrize(("name", "waits"), [
    ("session-1234", True),
    (f"open-{int(time.time()) - 5}-{'a' * 32}-1234abcd", True),  # an open copy's time is up
    (f"open-{int(time.time()) + 600}-{'a' * 32}-1234abcd", False),
    ("open-soon-aaaa-1234abcd", False),
    (f"OPEN-{int(time.time()) - 5}-{'a' * 32}-1234abcd", False),
    (f"{os.getpid()}-1234abcd", False),  # exec's own directory: the full path's sweep, not this
    ("", False),
], ids=["session", "open-due", "open-later", "open-malformed", "open-upper-case", "exec-own",
        "nothing"])  # names of their own: the values hold times and a pid
def test_which_ram_entries_send_check_down_the_full_path(name: str, waits: bool) -> None:
    from credguard.cli.quick import _waits

    assert _waits(name) is waits
