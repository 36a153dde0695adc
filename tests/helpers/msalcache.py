"""Real MSAL token caches for tests: built by the ``msal`` library's own ``SerializableTokenCache``
from token responses whose tokens are generated at run time (nothing credential-shaped is
committed)."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass

import msal

CLIENT_ID = str(uuid.uuid4())
SCOPE = ["https://management.core.windows.net//.default"]
CT = msal.TokenCache.CredentialType


def _b64(claims: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


@dataclass(frozen=True)
class User:
    uid: str
    tenant: str
    username: str

    @property
    def home_account_id(self) -> str:
        return f"{self.uid}.{self.tenant}"


def new_user() -> User:
    uid, tenant = str(uuid.uuid4()), str(uuid.uuid4())
    return User(uid, tenant, f"user-{secrets.token_hex(4)}@example.com")


def login(cache: msal.SerializableTokenCache, user: User) -> None:
    """Feed msal the token response of an interactive login (also what a refresh looks like)."""
    now = int(time.time())
    claims = {
        "iss": f"https://login.microsoftonline.com/{user.tenant}/v2.0", "aud": CLIENT_ID,
        "sub": secrets.token_urlsafe(16), "oid": user.uid, "tid": user.tenant,
        "preferred_username": user.username, "iat": now, "exp": now + 3600,
    }
    cache.add({
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "token_endpoint": f"https://login.microsoftonline.com/{user.tenant}/oauth2/v2.0/token",
        "grant_type": "authorization_code",
        "response": {
            "token_type": "Bearer",
            "scope": " ".join(SCOPE),
            "expires_in": 3600,
            "access_token": secrets.token_urlsafe(48),
            "refresh_token": secrets.token_urlsafe(48),
            "id_token": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
            "client_info": _b64({"uid": user.uid, "utid": user.tenant}),
        },
    })


def logout(cache: msal.SerializableTokenCache, user: User) -> None:
    """Remove everything of ``user`` the way msal's remove_account does."""
    query = {"home_account_id": user.home_account_id}
    for rt in list(cache.search(CT.REFRESH_TOKEN, query=query)):
        cache.remove_rt(rt)
    for at in list(cache.search(CT.ACCESS_TOKEN, query=query)):
        cache.remove_at(at)
    for idt in list(cache.search(CT.ID_TOKEN, query=query)):
        cache.remove_idt(idt)
    for account in list(cache.search(CT.ACCOUNT, query=query)):
        cache.remove_account(account)


def cache_of(data: bytes | str | None) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    if data:
        cache.deserialize(data.decode() if isinstance(data, bytes) else data)
    return cache


def accounts(data: bytes | str | msal.SerializableTokenCache) -> set[str]:
    cache = data if isinstance(data, msal.SerializableTokenCache) else cache_of(data)
    return {a["home_account_id"] for a in cache.search(CT.ACCOUNT)}


def secrets_of(data: bytes | str | msal.SerializableTokenCache) -> set[str]:
    """Every token secret (access, refresh, id) in a cache."""
    cache = data if isinstance(data, msal.SerializableTokenCache) else cache_of(data)
    return {str(e["secret"]) for kind in (CT.ACCESS_TOKEN, CT.REFRESH_TOKEN, CT.ID_TOKEN)
            for e in cache.search(kind)}


def state_with(*users: User) -> bytes:
    cache = msal.SerializableTokenCache()
    for user in users:
        login(cache, user)
    return cache.serialize().encode()
