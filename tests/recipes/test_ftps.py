"""docs/recipes.md, "FTPS with lftp": the REAL ``lftp`` (Debian's 4.9) uploads a site with a
vaulted profile's FTP user and password to a REAL FTP server (pyftpdlib) on 127.0.0.1 that
requires TLS on the control and the data connection (explicit FTPS, as App Service offers on
port 21), its self-signed certificate trusted through ``ssl:ca-file`` in the test's
``~/.lftprc``. The profile's URL is ``ftps://127.0.0.1:PORT/site/wwwroot``, shaped like
Azure's; its user has Azure's backslash (``app\\$app``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import payloads
from helpers.home import Home, Run
from helpers.recipe_servers import ftps_server, self_signed
from helpers.recipes import credguard_bin, recipe, run_recipe, sha, vaulted
from helpers.secret_service import SecretService

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("tmpfs_runtime")]
Cli = Callable[..., Run]
TITLE = "FTPS with lftp"
USER = "contoso-app\\$contoso-app"
SITE = {"index.html": b"<h1>contoso</h1>\n", "css/site.css": b"body { margin: 0 }\n"}


def test_lftp_mirrors_the_site_over_ftps(
        secret_service: SecretService, cli: Cli, home: Home, tmp_path: Path) -> None:
    """Every file arrived byte for byte under /site/wwwroot, after one login with the
    profile's user and password (the server takes no other, and no login before TLS); the
    password was in no command line and nothing was printed, not even a plain-FTP warning."""
    tls = self_signed(tmp_path / "tls")
    home.write(".lftprc", f"set ssl:ca-file {tls.cert}\n")
    work = tmp_path / "work"
    for name, data in SITE.items():
        (work / "publish" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "publish" / name).write_bytes(data)
    payload = payloads.publish_profile()
    root = tmp_path / "ftp-root"
    (root / "site" / "wwwroot").mkdir(parents=True)
    with ftps_server(tls, root, USER, payload.secrets[0]) as server:
        moved = payloads.publish_profile(
            password=payload.secrets[0],
            urls={"FTP": f"ftps://127.0.0.1:{server.port}/site/wwwroot"})
        env = {**os.environ,
               "PATH": f"{credguard_bin(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}"}
        ran = run_recipe(recipe(TITLE), vaulted(cli, home, moved), env, work,
                         tmp_path / "trace")
    assert ran.code == 0, ran.err
    assert (ran.out, ran.err) == ("", "")
    arrived = {p.relative_to(root / "site" / "wwwroot").as_posix(): sha(p.read_bytes())
               for p in root.rglob("*") if p.is_file()}
    assert arrived == {name: sha(data) for name, data in SITE.items()}
    assert (server.logins, server.failed) == (1, 0)
    assert ran.leaks(*payload.secrets) == []
    assert ran.argv_words("lftp")[:4] == ["lftp", "--env-password", "-u", USER]
