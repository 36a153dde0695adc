"""The three sealable tools: where each keeps its cache, which files are secret, how to redirect it.

A tool's files are named relative to its *root*: the Azure CLI's config dir
(``$AZURE_CONFIG_DIR`` or ``~/.azure``), azd's (``$AZD_CONFIG_DIR`` or ``~/.azd``), and for Azure
PowerShell the home directory itself, because PowerShell has no variable that moves its
directory: a child sees a private *overlay home* (``HOME`` pointing at a RAM directory whose
other entries link to the real home), in which ``.Azure`` and ``.local/share/.IdentityService``
are private.

Facts: the CLI's secret files are ``msal_token_cache.json``,
``service_principal_entries.json`` (plus a certificate PEM an entry names, when it lives under
the config dir), the legacy ``accessTokens.json``, ``aksServicePrincipal.json`` and
``acsServicePrincipal.json`` (also under ``aks/``); everything else there (``azureProfile.json``,
``config``, ``clouds.config``, logs) is not. PowerShell's are ``AzureRmContext.json``,
``TokenCache.dat``, ``keystore.cache`` and the shared MSAL cache ``msal.cache*`` (paths
``AzureRmContextSettings.json`` may redirect). azd's are everything under ``auth/``.
"""

from __future__ import annotations

import configparser
import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from credguard import paths
from credguard.detect import kinds
from credguard.errors import ConfigError, InputError
from credguard.fs.read import Unreadable, read_path

__all__ = ["TOOLS", "Tool", "by_id"]

_TRUE = ("1", "true", "yes", "on")
LOCK_SUFFIX = ".lockfile"


@dataclass(frozen=True)
class Tool:
    """One sealable tool. Relative names use ``/`` on every platform."""

    id: str
    title: str
    kind: str  # the vault kind of its sealed bundle
    env_var: str  # the variable that points the tool at the private directory
    own_dirs: tuple[str, ...]  # dirs (relative) whose regular files are copied, not linked

    def root(self) -> Path:
        if self.id == "azure-cli":
            return Path(os.path.abspath(paths.azure_cli_dir()))
        if self.id == "azd":
            return Path(os.path.abspath(paths.azd_dir()))
        return Path(os.path.abspath(paths.home()))

    # ---- which files are secret ----

    def is_secret(self, rel: str) -> bool:
        """Whether the file ``rel`` (relative to the root) holds secrets, by name."""
        name = posixpath.basename(rel)
        parent = posixpath.dirname(rel)
        if self.id == "azure-cli":
            return (parent == "" and name in _CLI_SECRETS) or (
                parent == "aks" and name in _CLI_AKS_SECRETS
            )
        if self.id == "azd":
            return rel.startswith("auth/") and not name.endswith(LOCK_SUFFIX)
        msal = name.startswith("msal.cache") and not name.endswith(LOCK_SUFFIX)
        return parent in self.own_dirs and (name in _PS_SECRETS or msal)

    def secret_dirs(self) -> tuple[str, ...]:
        """The directories (relative) where secret files may appear (searched when sealing)."""
        if self.id == "azure-cli":
            return ("", "aks")
        if self.id == "azd":
            return ("auth", "auth/msal")
        return self.own_dirs

    def secret_names(self, root: Path) -> list[str]:
        """The secret names present in ``root``'s secret dirs (anything but a directory: a link
        or special file under a secret name is reported, to be refused, not skipped)."""
        found = []
        for rel_dir in self.secret_dirs():
            try:
                entries = list(os.scandir(root / rel_dir if rel_dir else root))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
                if self.is_secret(rel) and not entry.is_dir(follow_symlinks=False):
                    found.append(rel)
        return sorted(found)

    def is_msal_locked(self, rel: str) -> bool:
        """Whether the tool takes ``<file>.lockfile`` around this file (msal-extensions)."""
        name = posixpath.basename(rel)
        return name in ("msal_token_cache.json", "service_principal_entries.json") or (
            name.startswith("msal.cache")
        )

    def referenced_secrets(self, rel: str, data: bytes, root: Path) -> list[str]:
        """Other secret files ``rel`` names: a service principal's certificate PEM under root."""
        if self.id != "azure-cli" or rel != "service_principal_entries.json":
            return []
        found: list[str] = []
        for path in _certificate_paths(data):
            full = os.path.abspath(path)
            inside = os.path.relpath(full, root)
            if not inside.startswith(".."):
                found.append(inside.replace(os.sep, "/"))
        return found

    def rewrite(self, rel: str, data: bytes, old: Path, new: Path) -> bytes:
        """``data`` with paths under ``old`` pointing under ``new`` instead (certificate paths
        in service principal entries; every other file unchanged)."""
        if self.id != "azure-cli" or rel != "service_principal_entries.json":
            return data
        try:
            entries = json.loads(data)
        except ValueError:
            return data
        if not isinstance(entries, list):
            return data
        prefix = os.fspath(old).rstrip(os.sep) + os.sep
        changed = False
        for entry in entries:
            cert = entry.get("certificate") if isinstance(entry, dict) else None
            if isinstance(cert, str) and cert.startswith(prefix):
                entry["certificate"] = os.path.join(new, cert[len(prefix):])
                changed = True
        return json.dumps(entries).encode() if changed else data

    # ---- refusing what credguard must not seal ----

    def encryption_on(self, root: Path, env: Mapping[str, str]) -> str:
        """Why the tool already encrypts its cache here ("" if it does not)."""
        if self.id != "azure-cli":
            return ""
        if env.get("AZURE_CORE_ENCRYPT_TOKEN_CACHE", "").strip().lower() in _TRUE:
            return "AZURE_CORE_ENCRYPT_TOKEN_CACHE is set"
        parser = configparser.RawConfigParser()
        try:
            parser.read_string(_read_small(root / "config").decode("utf-8-sig"))
            value = parser.get("core", "encrypt_token_cache", fallback="")
        except (UnicodeError, configparser.Error):
            value = ""
        if value.strip().lower() in _TRUE:
            return f"core.encrypt_token_cache = {value.strip()} in {root / 'config'}"
        for name in ("msal_token_cache.bin", "service_principal_entries.bin"):
            if os.path.lexists(root / name):
                return f"{root / name} exists (an encrypted cache)"
        return ""

    def redirected(self, root: Path) -> list[str]:
        """Extra secret files (relative to root) that ``AzureRmContextSettings.json`` points at.

        InputError if it points outside the home directory (the overlay cannot cover that).
        """
        if self.id != "azure-powershell":
            return []
        settings = root / ".Azure" / "AzureRmContextSettings.json"
        try:
            raw = json.loads(_read_small(settings).decode("utf-8-sig"))
        except ValueError:
            return []
        found: list[str] = []
        if not isinstance(raw, dict):
            return []
        for dir_key, file_key in (("ContextDirectory", "ContextFile"),
                                  ("CacheDirectory", "CacheFile")):
            directory, name = raw.get(dir_key), raw.get(file_key)
            if not isinstance(directory, str) or not isinstance(name, str) or not name:
                continue
            full = os.path.abspath(os.path.join(os.path.expanduser(directory), name))
            inside = os.path.relpath(full, root)
            if inside.startswith(".."):
                raise InputError(
                    f"{settings} keeps the Azure PowerShell {file_key} at {full}, outside your "
                    "home directory: credguard can only seal caches under the home directory")
            found.append(inside.replace(os.sep, "/"))
        return found

    def child_env(self, private_root: Path, env: Mapping[str, str]) -> dict[str, str]:
        """The variables that point the tool at ``private_root``."""
        if self.id != "azure-powershell":
            return {self.env_var: os.fspath(private_root)}
        data_home = env.get("XDG_DATA_HOME")  # .NET's LocalApplicationData (.IdentityService)
        default = os.path.join(self.root(), ".local", "share")
        if data_home and os.path.abspath(data_home) != default:
            raise ConfigError(
                f"XDG_DATA_HOME={data_home} would put PowerShell's token cache outside the "
                "private directory; unset it for this command")
        return {"HOME": os.fspath(private_root),
                "XDG_DATA_HOME": os.fspath(private_root / ".local" / "share")}


def _read_small(path: Path) -> bytes:
    """A small non-secret settings file, read without following a link; b"" if unreadable."""
    try:
        return read_path(path, 1 << 20).data
    except Unreadable:
        return b""


def _certificate_paths(data: bytes) -> list[str]:
    try:
        entries = json.loads(data)
    except ValueError:
        return []
    if not isinstance(entries, list):
        return []
    return [e["certificate"] for e in entries
            if isinstance(e, dict) and isinstance(e.get("certificate"), str)]


_CLI_SECRETS = frozenset({
    "msal_token_cache.json", "service_principal_entries.json", "accessTokens.json",
    "aksServicePrincipal.json", "acsServicePrincipal.json",
})
_CLI_AKS_SECRETS = frozenset({"acsServicePrincipal.json", "aksServicePrincipal.json"})
_PS_SECRETS = frozenset({"AzureRmContext.json", "TokenCache.dat", "keystore.cache"})

TOOLS: dict[str, Tool] = {
    t.id: t for t in (
        Tool("azure-cli", "Azure CLI", kinds.CLI_TOKEN_CACHE, "AZURE_CONFIG_DIR", ("",)),
        Tool("azure-powershell", "Azure PowerShell", kinds.POWERSHELL_CACHE, "HOME",
             (".Azure", ".IdentityService", ".local/share/.IdentityService")),
        Tool("azd", "Azure Developer CLI", kinds.AZD_CACHE, "AZD_CONFIG_DIR",
             ("", "auth", "auth/msal")),
    )
}


def by_id(tool_id: str) -> Tool:
    try:
        return TOOLS[tool_id]
    except KeyError:
        raise InputError(f"unknown tool {tool_id!r} (known: {', '.join(TOOLS)})") from None
