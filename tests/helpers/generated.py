"""Every document the payload and look-alike generators (:mod:`helpers.payloads`,
:mod:`helpers.lookalikes`) can make: each generator with its defaults, then with each flag and
choice changed once, and every text document also as Windows tools write text (a UTF-8 BOM,
UTF-16 with and without one). For the tests that must hold for every credential-shaped input
the suite knows: the sniff pre-filter's rewrite, and ``check``'s quick path."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from helpers import lookalikes, payloads

# Arguments beyond the defaults: each variant changes one of them.
CHOICES: dict[str, dict[str, tuple[Any, ...]]] = {
    "xxe": {"target_path": ("/etc/hostname",)},
    "azd_cred": {"kind": ("certificate", "federated-token", "federated-auth")},
    "google_oauth_client": {"flavour": ("web",)},
    "publishsettings_v1": {"n_subs": (3,), "method": (None,)},
    "publishsettings_v2": {"n_subs": (1,), "method": (None,)},
    "msal_cache": {"n_accounts": (3,)},
    "adal_token_cache": {"items": (0, 3), "authority": ("https://accounts.example.com/x/",)},
    "ansible_credentials": {"secret": ("not-a-placeholder-7Qx",)},
}
TEXT_CODECS = ("utf-8-sig", "utf-16", "utf-16-le", "utf-16-be")


def _generators() -> Iterator[tuple[str, Callable[..., Any]]]:
    for module in (payloads, lookalikes):
        for name, function in vars(module).items():
            if (not name.startswith("_") and inspect.isfunction(function)
                    and function.__module__ == module.__name__):
                yield name, function


def _variants(name: str, function: Callable[..., Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The keyword arguments to call ``function`` with: required ones from :data:`CHOICES`,
    then each flag flipped and each listed choice, one at a time."""
    choices = CHOICES.get(name, {})
    base = {param: values[0] for param, values in choices.items()
            if inspect.signature(function).parameters[param].default is inspect.Parameter.empty}
    yield "", base
    for param in inspect.signature(function).parameters.values():
        if isinstance(param.default, bool):
            yield f"-{param.name}={not param.default}", {**base, param.name: not param.default}
        for value in choices.get(param.name, ()) if param.name not in base else ():
            yield f"-{param.name}={value}", {**base, param.name: value}


@functools.cache
def documents() -> dict[str, bytes]:
    """Every document, by a name that says how it was made (``payloads.pubxml-password=False``,
    ``… as utf-16-be``)."""
    made: dict[str, bytes] = {}
    for name, function in _generators():
        for suffix, kwargs in _variants(name, function):
            result = function(**kwargs)
            data = result.data if isinstance(result, payloads.Payload) else result
            made[f"{function.__module__.split('.')[-1]}.{name}{suffix}"] = data
    for name, data in list(made.items()):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary: a PKCS#12 file, ADAL's cache
        for codec in TEXT_CODECS:
            made[f"{name} as {codec}"] = text.encode(codec)
    return made
