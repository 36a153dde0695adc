"""A sign-in for the real Azure CLI without the network: what ``az login`` leaves in msal's
caches, made with the test extra's msal (the version az 2.91.0 pins: the http cache's pickle
names msal's classes, so the two must match).

* :func:`sign_in` adds a token response to an msal token cache, as az's interactive login
  would store it (az's client id, the tenant's authority, the scopes asked for).
* :func:`msal_http_cache` is the ``msal_http_cache.bin`` az writes after its discovery calls to
  Entra (the tenant's and "organizations"' metadata): with it, az uses a cached token without
  asking login.microsoftonline.com anything. msal's own client fills it, fed by a stand-in for
  Entra's public discovery answers (no network here).
"""

from __future__ import annotations

import base64
import json
import pickle
import secrets
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import msal

    from helpers.msalcache import User

AZ_CLIENT_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"  # azure/cli/core/auth/constants.py
HOST = "https://login.microsoftonline.com"


def _b64(claims: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def sign_in(cache: msal.SerializableTokenCache, user: User, scopes: list[str]
            ) -> tuple[str, str]:
    """Store the token response az's own login would get for ``user`` and ``scopes``; the new
    (access, refresh) tokens."""
    now = int(time.time())
    access, refresh = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    claims = {"iss": f"{HOST}/{user.tenant}/v2.0", "aud": AZ_CLIENT_ID, "oid": user.uid,
              "sub": secrets.token_urlsafe(16), "tid": user.tenant,
              "preferred_username": user.username, "iat": now, "exp": now + 3600}
    cache.add({
        "client_id": AZ_CLIENT_ID,
        "scope": scopes,
        "token_endpoint": f"{HOST}/{user.tenant}/oauth2/v2.0/token",
        "grant_type": "authorization_code",
        "response": {
            "token_type": "Bearer", "scope": " ".join(scopes), "expires_in": 3600,
            "access_token": access, "refresh_token": refresh,
            "id_token": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
            "client_info": _b64({"uid": user.uid, "utid": user.tenant}),
        },
    })
    return access, refresh


class _Reply:
    def __init__(self, body: dict[str, object]) -> None:
        self.status_code, self.text = 200, json.dumps(body)
        self.headers: dict[str, str] = {}

    def raise_for_status(self) -> None:
        pass


class _Entra:
    """Stand-in for login.microsoftonline.com's public discovery GETs (there is no network)."""

    def get(self, url: str, **_: object) -> _Reply:
        if url.endswith("/common/discovery/instance"):
            aliases = ["login.microsoftonline.com", "login.windows.net", "login.microsoft.com",
                       "sts.windows.net"]
            return _Reply({"api-version": "1.1", "metadata": [{
                "preferred_network": aliases[0], "preferred_cache": aliases[1],
                "aliases": aliases}]})
        tenant = url.removeprefix(f"{HOST}/").split("/")[0]
        assert url == f"{HOST}/{tenant}/v2.0/.well-known/openid-configuration", url
        return _Reply({"issuer": f"{HOST}/{tenant}/v2.0",
                       "authorization_endpoint": f"{HOST}/{tenant}/oauth2/v2.0/authorize",
                       "token_endpoint": f"{HOST}/{tenant}/oauth2/v2.0/token",
                       "device_authorization_endpoint": f"{HOST}/{tenant}/oauth2/v2.0/devicecode"})

    def post(self, *_: object, **__: object) -> _Reply:
        raise AssertionError("msal posted while seeding the discovery cache")

    def close(self) -> None:
        pass


def msal_http_cache(tenant: str) -> bytes:
    """The ``msal_http_cache.bin`` az would have written after talking to Entra: msal's own
    throttled client fills the dict, az's BinaryCache stores it pickled. If this msal and az's
    drift apart, az drops the file and asks the network (which the tests refuse)."""
    import msal

    cache: dict[str, object] = {}
    for authority in (tenant, "organizations"):  # tenant discovery runs in the constructor
        app = msal.PublicClientApplication(AZ_CLIENT_ID, authority=f"{HOST}/{authority}",
                                           http_client=_Entra(), http_cache=cache)
        app.get_accounts()  # an empty cache: msal fetches the instance metadata for aliases
    return pickle.dumps(cache)
