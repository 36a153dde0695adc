"""The freedesktop Secret Service, reached through ``secretstorage`` directly.

On Linux this is what the ``keyring`` library's own ``SecretService`` backend does, item for
item: the same attributes (``application`` = "Python keyring library", ``service``,
``username``), the same label, the default collection, unlock-then-check. A vault key stored by
one is found by the other, so a vault created through ``keyring`` keeps working and the user can
still inspect the item with any keyring tool.

Why not just use ``keyring``: importing it pulls in ``importlib_metadata`` and
``jaraco.context``, which import ``urllib.request``, ``ssl``, ``email`` and ``http`` — about
8 MB of resident memory in a background daemon that needs none of it.
:mod:`credguard.vault.keyring_backends` still resolves every explicit choice
(``PYTHON_KEYRING_BACKEND``, ``keyringrc.cfg``) and every other platform through ``keyring``.

Errors are this module's own (:class:`Locked`, :class:`Unavailable`, :class:`NotFound`) or
secretstorage's and jeepney's, which the keystore maps to :class:`~credguard.errors.KeystoreError`.
Every call here may block on D-Bus: callers run it under a timeout.
"""

from __future__ import annotations

import threading
from contextlib import closing, suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secretstorage import Collection, Item

__all__ = ["APPLICATION", "Locked", "NotFound", "SecretServiceKeyring", "Unavailable", "available"]

APPLICATION = "Python keyring library"  # keyring's appid: the same items, found either way


class Locked(Exception):
    """The collection or item stayed locked (the unlock prompt was dismissed or failed)."""


class Unavailable(Exception):
    """The default collection could not be opened (no Secret Service, or it went away)."""


class NotFound(Exception):
    """Nothing to delete under that service and username."""


def available() -> str:
    """"" if a Secret Service is running or D-Bus-activatable on the session bus, else why not.

    Never raises for a missing bus or service (that is an answer, not an error).
    """
    import secretstorage

    try:
        with closing(secretstorage.dbus_init()) as connection:
            if secretstorage.check_service_availability(connection):
                return ""
            return "the Secret Service daemon is neither running nor activatable through D-Bus"
    except Exception as exc:  # SecretServiceNotAvailableException, OSError, D-Bus errors
        return f"unable to initialize SecretService: {exc}"


class SecretServiceKeyring:
    """``get_password``/``set_password``/``delete_password`` as ``keyring`` spells them."""

    priority = 5.0  # as keyring's SecretService backend: a recommended OS keyring

    def __init__(self) -> None:
        self._asking = threading.Lock()
        self._watched: Collection | None = None  # the default collection, for unlocked_now

    def get_password(self, service: str, username: str) -> str | None:
        collection = self._collection()
        with closing(collection.connection):
            for item in collection.search_items(_query(service, username)):
                _unlock(item)
                value: str = item.get_secret().decode("utf-8")
                return value
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        collection = self._collection()
        attributes = {"application": APPLICATION, **_query(service, username)}
        label = f"Password for '{username}' on '{service}'"
        with closing(collection.connection):
            collection.create_item(label, attributes, password.encode("utf-8"), replace=True)

    def delete_password(self, service: str, username: str) -> None:
        collection = self._collection()
        with closing(collection.connection):
            for item in collection.search_items(_query(service, username)):
                item.delete()
                return
        raise NotFound("no such password")

    def unlocked_now(self) -> bool:
        """Whether the default collection is unlocked right now, asked without any prompt over
        a connection kept for the question (a round trip once connected). False for every
        failure, and when another thread's question has not been answered within a second:
        the caller treats that as locked. The daemon asks before it hands out a credential for
        ``credguard exec``, which in its own process would meet the keyring's lock (and its
        prompt) itself."""
        if not self._asking.acquire(timeout=1.0):  # one connection, one question at a time
            return False
        try:
            return self._unlocked_now()
        except Exception:  # D-Bus, secretstorage, jeepney: unknown, so locked
            self._forget()
            return False
        finally:
            self._asking.release()

    def _unlocked_now(self) -> bool:
        import secretstorage

        if self._watched is None:
            connection = secretstorage.dbus_init()
            try:
                self._watched = secretstorage.get_default_collection(connection)
            except BaseException:
                connection.close()
                raise
        return not self._watched.is_locked()

    def close(self) -> None:
        """Close the connection kept for :meth:`unlocked_now` (asking again opens a new one)."""
        with self._asking:
            self._forget()

    def _forget(self) -> None:
        watched, self._watched = self._watched, None
        if watched is not None:
            with suppress(Exception):
                watched.connection.close()

    @staticmethod
    def _collection() -> Collection:
        """The default collection, unlocked (which may show a prompt), on a new connection."""
        import secretstorage

        connection = secretstorage.dbus_init()
        try:
            collection = secretstorage.get_default_collection(connection)
        except secretstorage.SecretStorageException as exc:
            connection.close()
            raise Unavailable(f"Failed to create the collection: {exc}.") from exc
        try:
            if collection.is_locked():
                collection.unlock()
                if collection.is_locked():  # the prompt was dismissed
                    raise Locked("Failed to unlock the collection!")
        except BaseException:
            connection.close()
            raise
        return collection


def _query(service: str, username: str) -> dict[str, str]:
    return {"username": username, "service": service}


def _unlock(item: Item) -> None:
    item.unlock()
    if item.is_locked():  # the prompt was dismissed
        raise Locked("Failed to unlock the item!")
