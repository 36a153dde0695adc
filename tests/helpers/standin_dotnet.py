"""A STAND-IN for ``dotnet publish``, for the dotnet recipe of docs/recipes.md
(tests/recipes/test_zipdeploy.py).

Why a stand-in: the .NET SDK cannot be installed on the test machine (it is not a Debian
package, and Microsoft's package feed is out of the machine's reach). So this script, put on
PATH as ``dotnet``, reads what MSBuild would read for the publish targets and does what the
SDK's ZipDeploy publish does, no more:

- properties from ``-p:NAME=VALUE`` / ``/p:NAME=VALUE`` in its command line, and, as MSBuild
  does for any property not given there, from the environment (names are not case sensitive);
- ``WebPublishMethod=ZipDeploy``: like the SDK's ZipDeploy task (Microsoft.NET.Sdk.Publish,
  ``ZipDeploy.cs``), POST a zip (here a fixed one, ``PAYLOAD``) to ``$(PublishUrl)`` +
  ``/api/zipdeploy?isAsync=true`` with HTTP basic authentication as ``$(UserName)`` /
  ``$(Password)``; the server's certificate is checked against the system's CAs
  (``SSL_CERT_FILE``);
- ``WebPublishMethod=MSDeploy``: only records the service URL and site (Web Deploy's protocol is
  not imitated).

It records what it got in the JSON file ``$DOTNET_STANDIN_RECORD`` — the command line's
properties other than the user and password, and of those two only their SHA-256 and whether
they came from the command line — and never prints a secret. Exit 0 on success, 1 with a
message on stderr.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import urllib.error
import urllib.request
import zipfile

SECRET_PROPERTIES = ("username", "password")
PAYLOAD = {"StandIn.dll": b"the site the stand-in dotnet publishes\n"}


def properties(argv: list[str]) -> tuple[dict[str, str], set[str]]:
    """The ``-p:`` properties (lower-case names) and which of them came from the command line;
    a property the command line does not set comes from the environment, as in MSBuild."""
    given: dict[str, str] = {}
    for word in argv:
        if word[:3].lower() in ("-p:", "/p:") and "=" in word:
            name, _, value = word[3:].partition("=")
            given[name.lower()] = value
    props = {name.lower(): value for name, value in os.environ.items()}
    props.update(given)
    return props, set(given)


def payload_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in PAYLOAD.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_deploy(props: dict[str, str]) -> str:
    """Post the zip as the SDK's ZipDeploy task does; "" when the server took it, else why
    not (no secret in it)."""
    url = props.get("publishurl", "")
    if not url.startswith("https://"):
        return "no https:// PublishUrl"
    if not url.endswith("/"):
        url += "/"
    pair = f"{props.get('username', '')}:{props.get('password', '')}".encode()
    request = urllib.request.Request(  # noqa: S310 - https only (above)
        f"{url}api/zipdeploy?isAsync=true", data=payload_zip(), method="POST",
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode(),
                 "Content-Type": "application/zip", "User-Agent": "websdk/standin"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - https only
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"cannot reach {url}: {type(exc).__name__}"
    return "" if status in (200, 202) else f"HTTP {status} from {url}api/zipdeploy"


def main(argv: list[str]) -> int:
    if argv[:1] != ["publish"]:
        print("stand-in dotnet: only `dotnet publish` is imitated", file=sys.stderr)
        return 1
    props, given = properties(argv[1:])
    record: dict[str, object] = {
        "properties": {k: props[k] for k in sorted(given) if k not in SECRET_PROPERTIES},
        "secrets_in_argv": sorted(given & set(SECRET_PROPERTIES)),
        **{f"{name}_sha256": hashlib.sha256(props[name].encode()).hexdigest()
           for name in SECRET_PROPERTIES if props.get(name)},
    }
    method = props.get("webpublishmethod", "")
    problem = ""
    if not props.get("username") or not props.get("password"):
        problem = "no UserName or Password property"
    elif method == "ZipDeploy":
        problem = zip_deploy(props)
    elif method != "MSDeploy":
        problem = f"WebPublishMethod {method!r} is not imitated"
    record["problem"] = problem
    with open(os.environ["DOTNET_STANDIN_RECORD"], "w") as out:
        json.dump(record, out)
    if problem:
        print(f"stand-in dotnet: publish failed: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
