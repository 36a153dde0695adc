"""The ``exec`` control command's request checks (credguard.control.handover) and the handover's
wire form (credguard.handoff.environment.to_wire/from_wire): what the daemon sends is checked by
the command as if anyone had sent it, since it names files the command writes and variables
its child gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import payloads

from credguard import control
from credguard.control.handover import MAX_ITEM, exec_args
from credguard.control.wire import ProtocolError
from credguard.detect import kinds
from credguard.handoff import environment
from credguard.handoff.environment import plan
from credguard.handoff.handover import Handover, from_wire, to_wire
from credguard.vault.format import Record

CTX = {"key": "0" * 32, "digest": "a" * 64}


def good(**changes: object) -> dict[str, Any]:
    return {"item": "0123456789abcdef", "profile": None, "files": True, "context": CTX,
            **changes}


def test_a_well_formed_request_passes_the_checks_both_ways() -> None:
    line = control.encode({"v": control.PROTOCOL, "cmd": "exec", "args": good(profile="FTP")})
    assert control.parse_request(line.rstrip(b"\n")) == ("exec", good(profile="FTP"))


@pytest.mark.parametrize(("changes", "message"), [
    ({"item": ""}, f"exec item must be an id or prefix of 1 to {MAX_ITEM} characters"),
    ({"item": "a" * (MAX_ITEM + 1)}, "exec item must be an id"),
    ({"item": "abc\0def"}, "exec item must be an id"),
    ({"item": 12345678}, "exec item must be an id"),
    ({"profile": "SFTP"}, "exec profile must be null or one of MSDeploy, FTP, ZipDeploy"),
    ({"profile": 1}, "exec profile must be null"),
    ({"files": 1}, "exec files must be true or false"),
    ({"files": None}, "exec files must be true or false"),
    ({"context": {"key": "0" * 32}}, "exec context must be a key and a digest in hex"),
    ({"context": {"key": "0" * 32, "digest": "A" * 64}}, "exec context must be a key"),
    ({"extra": 1}, "exec takes item, profile, files and context"),
])
def test_malformed_requests_are_refused_with_a_fixed_message(
        changes: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        exec_args(good(**changes))
    assert str(raised.value).startswith(message)


def test_missing_arguments_are_refused() -> None:
    args = good()
    del args["files"]
    with pytest.raises(ProtocolError, match="exec takes item, profile, files and context"):
        exec_args(args)


def profile_record() -> tuple[Record, payloads.Payload]:
    payload = payloads.publish_profile("wired")
    return Record.new(kinds.PUBLISH_PROFILE, "../odd name.PublishSettings", "/x",
                      payload.data), payload


def test_a_plan_survives_the_wire_unchanged() -> None:
    record, payload = profile_record()
    planned = plan(record, "id1", None, files=True)
    back = from_wire(json.loads(json.dumps(to_wire(planned))))
    assert (back.env, back.files, back.warnings) == (planned.env, planned.files,
                                                       planned.warnings)
    assert back.files == [("CREDGUARD_FILE", "_odd_name.PublishSettings", payload.data)]
    settings = plan(Record.new(kinds.PUBLISHSETTINGS, "s.publishsettings", "/x",
                               payloads.publishsettings_v2().data), "id2", None, files=True)
    assert [f[:2] for f in from_wire(to_wire(settings)).files] == [
        ("CREDGUARD_FILE", "s.publishsettings"), ("CREDGUARD_CERT_PEM", environment.PEM_NAME)]


def test_a_plan_is_what_prepare_writes(tmp_path: Path) -> None:
    record, payload = profile_record()
    written = environment.prepare(record, "id1", tmp_path, None)
    (tmp_path / "again").mkdir()
    planned = plan(record, "id1", None, files=True)
    environment.write_files(planned, tmp_path / "again")
    assert planned.env == {**written.env, "CREDGUARD_FILE": str(
        tmp_path / "again" / "_odd_name.PublishSettings")}
    assert (tmp_path / "_odd_name.PublishSettings").read_bytes() == payload.data
    assert (tmp_path / "_odd_name.PublishSettings").stat().st_mode & 0o777 == 0o600
    assert plan(record, "id1", None, files=False).files == []


def wire(**changes: object) -> dict[str, Any]:
    doc: dict[str, Any] = {"env": {"CREDGUARD_KIND": "k"}, "warnings": [],
                           "files": [["CREDGUARD_FILE", "a.PublishSettings", "aGk="]]}
    doc.update(changes)
    return doc


NOT = "not a handover"
VARIABLE = "a variable credguard does not hand over"
NOT_FILE = "not a handover file"
FILE = "a file credguard does not hand over"
BASE64 = "a file that is not base64"


@pytest.mark.parametrize(("doc", "message"), [
    (None, NOT), ([], NOT), ({"env": {}}, NOT), (wire(extra=1), NOT), (wire(env=[]), NOT),
    (wire(warnings=[1]), NOT), (wire(warnings="w"), NOT), (wire(files={}), NOT),
    (wire(env={"PATH": "/evil"}), VARIABLE), (wire(env={"LD_PRELOAD": "/evil.so"}), VARIABLE),
    (wire(env={"CREDGUARD_X": "a\0b"}), VARIABLE), (wire(env={"CREDGUARD_X=Y": "v"}), VARIABLE),
    (wire(env={"CREDGUARD_X\0Y": "v"}), VARIABLE),
    (wire(env={"CREDGUARD_FILE": "/etc/passwd"}), VARIABLE),  # a file variable: written here
    (wire(env={"CREDGUARD_CERT_PEM": "/etc/passwd"}), VARIABLE),
    (wire(env={"CREDGUARD_X": 1}), VARIABLE),
    (wire(files=[["CREDGUARD_FILE", "a"]]), NOT_FILE),
    (wire(files=[["CREDGUARD_FILE", "a", 5]]), NOT_FILE),
    (wire(files=[("CREDGUARD_FILE", "a", "aGk=")]), NOT_FILE),  # not a list: not JSON's
    (wire(files=[["CREDGUARD_FILE", "../escape", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", "dir/name", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", ".hidden", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", ".lock", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", "", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", "credential", "aGk="], ["CREDGUARD_FILE", "b", "aGk="]]),
     FILE),
    (wire(files=[["CREDGUARD_FILE", "a b", "aGk="]]), FILE),
    (wire(files=[["PATH", "a", "aGk="]]), FILE),
    (wire(files=[["CREDGUARD_FILE", "a", "not base64!"]]), BASE64),
    (wire(files=[["CREDGUARD_FILE", "a", "aGk= "]]), BASE64),
    (wire(files=[["CREDGUARD_FILE", "a", "aGk\u00e9"]]), BASE64),
])
def test_a_handover_credguard_would_not_send_is_refused(doc: object, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        from_wire(doc)
    assert str(raised.value) == message  # never a word of the answer itself


@pytest.mark.parametrize(("name", "safe"), [
    ("X.PublishSettings", "X.PublishSettings"), ("..x", "x"), ("...", "credential"),
    ("", "credential"), ("a/b c", "a_b_c"), ("Xx", "Xx"),
])
def test_file_names_are_made_safe_and_never_empty(name: str, safe: str) -> None:
    record = Record.new(kinds.CLI_TOKEN_CACHE, name, "/x", b"{}")
    assert plan(record, "id", None, files=True).files[0][1] == safe


def test_a_certificate_that_cannot_be_opened_is_a_warning_not_a_file() -> None:
    record = Record.new(kinds.PUBLISHSETTINGS, "s.publishsettings", "/x",
                        payloads.publishsettings_v1(cert_ok=False).data)
    planned = plan(record, "id", None, files=True)
    assert [f[0] for f in planned.files] == ["CREDGUARD_FILE"]
    assert planned.warnings == [
        "CREDGUARD_CERT_PEM not set: no management certificate in this publish settings file "
        "could be opened"]


def test_prepare_hands_over_the_profile_asked_for(tmp_path: Path) -> None:
    record, _ = profile_record()
    assert environment.prepare(record, "id", tmp_path, "FTP").env[
        "CREDGUARD_PUBLISH_METHOD"] == "FTP"
    assert environment.prepare(record, "id", None, None).env[
        "CREDGUARD_PUBLISH_METHOD"] == "MSDeploy"


def test_an_empty_handover_has_no_variables() -> None:
    empty = Handover()
    assert (empty.env, empty.files, empty.warnings, empty.names) == ({}, [], [], [])


def test_an_empty_handover_is_one() -> None:
    back = from_wire({"env": {}, "warnings": ["w"], "files": []})
    assert isinstance(back, Handover) and back.warnings == ["w"] and back.files == []


def test_a_certificate_that_is_not_strict_base64_is_not_opened() -> None:
    """A character base64 does not have is not skipped over: the text is not a certificate."""
    import base64

    good_b64 = base64.b64encode(payloads.pkcs12_cert()).decode()
    for text, opened in ((good_b64, True), (good_b64[:40] + "*" + good_b64[40:], False)):
        record = Record.new(kinds.PUBLISHSETTINGS, "s.publishsettings", "/x",
                            payloads.publishsettings_v1(cert_text=text).data)
        planned = plan(record, "id", None, files=True)
        assert ("CREDGUARD_CERT_PEM" in [f[0] for f in planned.files]) is opened


def test_an_opened_request_names_a_directory_not_a_path() -> None:
    from credguard.control.handover import opened_args

    name = "open-1796392200-" + "a" * 32 + "-9c1e0f3a"
    assert opened_args({"name": name, "context": CTX}) == {"name": name, "context": CTX}
    for bad, message in (({"name": "/run/open-1"}, "opened takes name and context"),
                         ({"name": "../x", "context": CTX}, "opened name must be"),
                         ({"name": "open-1/../../x", "context": CTX}, "opened name must be"),
                         ({"name": "session-1", "context": CTX}, "opened name must be"),
                         ({"name": 5, "context": CTX}, "opened name must be"),
                         ({"name": name, "context": {}}, "opened context must be")):
        with pytest.raises(ProtocolError) as raised:
            opened_args(bad)
        assert str(raised.value).startswith(message)


def test_an_opened_name_at_the_length_limit_passes_and_a_nul_does_not() -> None:
    from credguard.control.handover import opened_args

    longest = "open-" + "1" * (MAX_ITEM - 5)
    assert opened_args({"name": longest, "context": CTX})["name"] == longest
    for bad in (longest + "1", "open-1\0x"):
        with pytest.raises(ProtocolError, match="opened name must be"):
            opened_args({"name": bad, "context": CTX})
