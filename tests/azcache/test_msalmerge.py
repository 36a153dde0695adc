"""Three-way merge of the Azure CLI's token caches, on caches built and read back by real msal."""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Iterator

import msal
import pytest
from helpers.msalcache import User, login, logout, new_user

from credguard.azcache.msalmerge import MergeError, dumps, is_msal_cache, loads, merge

CT = msal.TokenCache.CredentialType


class Run:
    """One ``credguard az`` run: its own msal cache, loaded from a serialized state."""

    def __init__(self, state: bytes | None = None) -> None:
        self.cache = msal.SerializableTokenCache()
        if state is not None:
            self.cache.deserialize(state.decode())

    @property
    def doc(self) -> object:
        return loads(self.cache.serialize().encode(), "MSAL token cache")


def reload(doc: object) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    cache.deserialize(dumps(doc).decode())
    return cache


def accounts(cache: msal.SerializableTokenCache) -> set[str]:
    return {a["home_account_id"] for a in cache.search(CT.ACCOUNT)}


def secret(cache: msal.SerializableTokenCache, kind: str, user: User) -> str:
    [entry] = cache.search(kind, query={"home_account_id": user.home_account_id})
    return str(entry["secret"])


def strings(doc: object) -> Iterator[str]:
    """Every key and string value in a JSON document: none may appear in a conflict message."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from strings(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from strings(value)
    elif isinstance(doc, str):
        yield doc


def assert_no_leak(conflicts: list[str], *docs: object) -> None:
    harmless = {"Bearer", "MSSTS", "authorization_code", "login.microsoftonline.com", "", *CT_NAMES}
    for doc in docs:
        for value in set(strings(doc)) - harmless:
            for message in conflicts:
                assert value not in message


CT_NAMES = {"AccessToken", "RefreshToken", "IdToken", "Account", "AppMetadata"}


def state_with(*users: User) -> bytes:
    run = Run()
    for user in users:
        login(run.cache, user)
    state: str = run.cache.serialize()
    return state.encode()


def test_two_runs_adding_different_accounts_keeps_both() -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    base = state_with(alice)
    ours, theirs = Run(base), Run(base)
    login(ours.cache, bob)
    login(theirs.cache, carol)

    merged, conflicts = merge(loads(base, "cache"), ours.doc, theirs.doc)

    assert conflicts == []
    cache = reload(merged)
    assert accounts(cache) == {u.home_account_id for u in (alice, bob, carol)}
    assert secret(cache, CT.REFRESH_TOKEN, bob) == secret(ours.cache, CT.REFRESH_TOKEN, bob)
    assert secret(cache, CT.REFRESH_TOKEN, carol) == secret(theirs.cache, CT.REFRESH_TOKEN, carol)


@pytest.mark.parametrize("refresher", ["ours", "theirs"])
def test_refresh_on_one_side_while_the_other_adds_an_account(refresher: str) -> None:
    alice, bob = new_user(), new_user()
    base = state_with(alice)
    refreshing, adding = Run(base), Run(base)
    login(refreshing.cache, alice)
    login(adding.cache, bob)
    ours, theirs = (refreshing, adding) if refresher == "ours" else (adding, refreshing)

    merged, conflicts = merge(loads(base, "cache"), ours.doc, theirs.doc)

    assert conflicts == []
    cache = reload(merged)
    assert accounts(cache) == {alice.home_account_id, bob.home_account_id}
    for kind in (CT.REFRESH_TOKEN, CT.ACCESS_TOKEN, CT.ID_TOKEN):
        assert secret(cache, kind, alice) == secret(refreshing.cache, kind, alice)
        assert secret(cache, kind, alice) != secret(Run(base).cache, kind, alice)
    assert secret(cache, CT.REFRESH_TOKEN, bob) == secret(adding.cache, CT.REFRESH_TOKEN, bob)


def test_logout_on_one_side_while_the_other_refreshes_another_account() -> None:
    alice, bob = new_user(), new_user()
    base = state_with(alice, bob)
    ours, theirs = Run(base), Run(base)
    logout(ours.cache, alice)
    login(theirs.cache, bob)

    merged, conflicts = merge(loads(base, "cache"), ours.doc, theirs.doc)

    assert conflicts == []
    cache = reload(merged)
    assert accounts(cache) == {bob.home_account_id}
    query = {"home_account_id": alice.home_account_id}
    assert not any(list(cache.search(kind, query=query)) for kind in CT_NAMES)
    assert secret(cache, CT.REFRESH_TOKEN, bob) == secret(theirs.cache, CT.REFRESH_TOKEN, bob)


def test_both_refreshing_the_same_token_keeps_ours_and_reports_it_without_secrets() -> None:
    alice = new_user()
    base = state_with(alice)
    ours, theirs = Run(base), Run(base)
    login(ours.cache, alice)
    login(theirs.cache, alice)

    merged, conflicts = merge(loads(base, "cache"), ours.doc, theirs.doc)

    cache = reload(merged)
    for kind in (CT.REFRESH_TOKEN, CT.ACCESS_TOKEN, CT.ID_TOKEN):
        assert secret(cache, kind, alice) == secret(ours.cache, kind, alice)
    assert "RefreshToken entry changed on both sides; kept ours" in conflicts
    assert len(conflicts) == 3  # AccessToken, RefreshToken, IdToken; Account is unchanged
    assert_no_leak(conflicts, loads(base, "cache"), ours.doc, theirs.doc)


def test_logout_while_the_other_refreshes_the_same_account_keeps_the_refreshed_tokens() -> None:
    alice = new_user()
    base = state_with(alice)
    ours, theirs = Run(base), Run(base)
    logout(ours.cache, alice)
    login(theirs.cache, alice)

    merged, conflicts = merge(loads(base, "cache"), ours.doc, theirs.doc)

    cache = reload(merged)
    assert secret(cache, CT.REFRESH_TOKEN, alice) == secret(theirs.cache, CT.REFRESH_TOKEN, alice)
    assert accounts(cache) == set()  # the account entry was unchanged on their side: deleted
    assert "RefreshToken entry deleted by ours but changed by theirs; kept theirs" in conflicts
    assert_no_leak(conflicts, ours.doc, theirs.doc)


def test_first_login_on_both_sides_without_a_base() -> None:
    alice, bob = new_user(), new_user()
    ours, theirs = Run(), Run()
    login(ours.cache, alice)
    login(theirs.cache, bob)

    merged, conflicts = merge(None, ours.doc, theirs.doc)

    assert conflicts == []
    assert accounts(reload(merged)) == {alice.home_account_id, bob.home_account_id}


def test_first_login_into_an_empty_sealed_cache() -> None:
    alice = new_user()
    ours = Run()
    login(ours.cache, alice)

    merged, conflicts = merge(None, ours.doc, {})

    assert (merged, conflicts) == (ours.doc, [])


def test_unchanged_side_yields_the_other_side_exactly() -> None:
    alice = new_user()
    base = loads(state_with(alice), "cache")
    changed = Run(dumps(base))
    login(changed.cache, new_user())
    assert merge(base, base, changed.doc) == (changed.doc, [])
    assert merge(base, changed.doc, base) == (changed.doc, [])


def test_inputs_are_never_mutated_nor_shared_with_the_result() -> None:
    alice, bob, carol = new_user(), new_user(), new_user()
    base_state = state_with(alice, bob)
    ours, theirs = Run(base_state), Run(base_state)
    logout(ours.cache, alice)
    login(ours.cache, carol)
    login(theirs.cache, alice)
    login(theirs.cache, bob)
    docs = (loads(base_state, "cache"), ours.doc, theirs.doc)
    before = copy.deepcopy(docs)

    merged, _ = merge(*docs)
    assert docs == before
    assert isinstance(merged, dict)
    merged["RefreshToken"].clear()
    merged.clear()
    assert docs == before


def test_serialization_matches_msal_byte_for_byte() -> None:
    state = state_with(new_user(), new_user())
    assert dumps(loads(state, "cache")) == state
    assert dumps(loads(state, "cache"), like=state) == state


@pytest.mark.parametrize(
    ("like", "expected"),
    [
        (b'{"a": 1}', b'{"b": [1, 2]}'),
        (b'{\n  "a": 1\n}\n', b'{\n  "b": [\n    1,\n    2\n  ]\n}\n'),
        (
            b'\xef\xbb\xbf{\r\n    "a": 1\r\n}',
            b'\xef\xbb\xbf{\r\n    "b": [\r\n        1,\r\n        2\r\n    ]\r\n}',
        ),
    ],
    ids=["compact", "two-space-newline", "bom-crlf"],
)
def test_dumps_follows_the_file_it_replaces(like: bytes, expected: bytes) -> None:
    assert dumps({"b": [1, 2]}, like=like) == expected
    assert loads(expected, "file") == {"b": [1, 2]}


def test_non_msal_documents_are_written_on_one_line_by_default() -> None:
    assert dumps([{"client_id": "x"}]) == b'[{"client_id": "x"}]'


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, True),
        ({"RefreshToken": {}, "AppMetadata": {}}, True),
        ({"AccessToken": {}, "unknown": 3}, True),
        ({"AccessToken": []}, False),
        ({"subscriptions": []}, False),
        ([], False),
        (None, False),
    ],
)
def test_is_msal_cache(doc: object, expected: bool) -> None:
    assert is_msal_cache(doc) is expected


def test_loads_tolerates_a_bom_and_takes_the_last_duplicate_key() -> None:
    assert loads(b'\xef\xbb\xbf{"a": 1, "a": 2}', "file") == {"a": 2}


@pytest.mark.parametrize(
    "template",
    [
        b'{"secret": "%s"',  # truncated
        b'{"secret": "%s"} trailing',
        b'{"secret": "%s", "n": NaN}',
        b'{"secret": "%s", "n": -Infinity}',
        b"{'secret': '%s'}",
        b'{"secret": "%s\xff"}',  # not UTF-8
        b'{"secret": "%s", "deep": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["truncated", "extra-data", "nan", "infinity", "single-quotes", "not-utf8", "deep"],
)
def test_invalid_json_raises_without_quoting_the_input(template: bytes) -> None:
    token = secrets.token_urlsafe(32)
    data = template.replace(b"%s", token.encode())
    with pytest.raises(MergeError, match=r"^MSAL token cache is not valid JSON: ") as info:
        loads(data, "MSAL token cache")
    message = str(info.value)
    assert token not in message and token[:8] not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def sp(client_id: str, tenant: str) -> dict[str, str]:
    return {"client_id": client_id, "tenant": tenant, "client_secret": secrets.token_urlsafe(30)}


def test_service_principal_entries_merge_by_identity_in_a_stable_order() -> None:
    tenant = str(uuid.uuid4())
    one, two, three = (sp(str(uuid.uuid4()), tenant) for _ in range(3))
    one_rotated = dict(one, client_secret=secrets.token_urlsafe(30))
    base = [one, two]
    ours = [two, three]  # logged `one` out, logged `three` in
    theirs = [two, one_rotated]  # re-logged `one` in with a new secret (az appends it)

    merged, conflicts = merge(base, ours, theirs)

    assert merged == [two, one_rotated, three]
    assert conflicts == ["service principal entry deleted by ours but changed by theirs; "
                         "kept theirs"]
    assert_no_leak(conflicts, base, ours, theirs)


def test_service_principal_changed_on_both_sides_keeps_ours() -> None:
    entry = sp(str(uuid.uuid4()), str(uuid.uuid4()))
    ours = [dict(entry, client_secret=secrets.token_urlsafe(30))]
    theirs = [dict(entry, client_secret=secrets.token_urlsafe(30))]

    merged, conflicts = merge([entry], ours, theirs)

    assert merged == ours
    assert conflicts == ["service principal entry changed on both sides; kept ours"]
    assert_no_leak(conflicts, [entry], ours, theirs)


def test_same_client_in_two_tenants_are_different_entries() -> None:
    client = str(uuid.uuid4())
    home, other = sp(client, str(uuid.uuid4())), sp(client, str(uuid.uuid4()))
    merged, conflicts = merge(None, [home], [other])
    assert (merged, conflicts) == ([other, home], [])


def test_other_documents_merge_as_a_whole() -> None:
    base = {"subscriptions": [{"id": str(uuid.uuid4())}]}
    ours = {"subscriptions": [{"id": str(uuid.uuid4())}]}
    theirs: dict[str, list[object]] = {"subscriptions": []}
    assert merge(base, ours, base) == (ours, [])
    assert merge(base, base, theirs) == (theirs, [])
    merged, conflicts = merge(base, ours, theirs)
    assert (merged, conflicts) == (ours, ["file changed on both sides; kept ours"])
    assert merge(base, ours, copy.deepcopy(ours)) == (ours, [])


def test_json_types_are_not_confused_by_python_equality() -> None:
    assert merge({"x": 1}, {"x": True}, {"x": 2}) == ({"x": True}, [
        "file changed on both sides; kept ours"])
