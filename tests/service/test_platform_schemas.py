"""The service definitions against their platforms' own grammars: the Windows task XML against
Microsoft's Task Scheduler schema (XSD), the launchd plist against Apple's PropertyList DTD.

Neither Task Scheduler nor launchd runs here; what they would refuse at registration (a
misspelt or misplaced element, a malformed duration, a plist element that does not exist) is
refused here first. The schema files are local copies (tests/data/schemas/README.md names
their sources); lxml is told never to use the network, so nothing is fetched.
"""

from __future__ import annotations

import pytest
from helpers.home import REPO
from lxml import etree

from credguard.service.launchd import LaunchdBackend
from credguard.service.windows import WindowsBackend

SCHEMAS = REPO / "tests" / "data" / "schemas"
# no network, no external DTD or entity loading: the documents are checked, never completed
PARSER = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
EXES = [
    ["C:\\Users\\ana\\AppData\\Local\\credguard\\venv\\Scripts\\credguard.exe"],
    ["C:\\Program Files\\a&b <c>\\python.exe", "-m", "credguard"],
    ["C:\\Users\\ana\\pipx\\bin\\credguard.exe", "--debug"],
]


@pytest.fixture(scope="module")
def task_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "TaskSchedulerV2Schema.xsd"), PARSER))


@pytest.fixture(scope="module")
def plist_dtd() -> etree.DTD:
    with (SCHEMAS / "PropertyList-1.0.dtd").open("rb") as dtd:
        return etree.DTD(dtd)


@pytest.fixture
def task_xml(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("USERDOMAIN", "R&D")
    monkeypatch.setenv("USERNAME", "ana")
    return WindowsBackend().render(EXES[0])


def as_written(text: str) -> bytes:
    """The task file's bytes, exactly as ``WindowsBackend.install`` writes them."""
    return text.encode("utf-16")


def task_errors(schema: etree.XMLSchema, data: bytes) -> str:
    """The schema's complaints about the task file ``data``; empty when it is valid."""
    if schema.validate(etree.fromstring(data, PARSER)):
        return ""
    return str(schema.error_log)


@pytest.mark.parametrize("exe", EXES, ids=["venv", "python-m", "pipx-debug"])
def test_task_xml_is_valid(
    task_schema: etree.XMLSchema, exe: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USERDOMAIN", "R&D")
    monkeypatch.setenv("USERNAME", "<ana>")
    assert task_errors(task_schema, as_written(WindowsBackend().render(exe))) == ""


def test_task_file_says_the_encoding_it_is_written_in(task_xml: str) -> None:
    """Task Scheduler reads the file by its declaration: UTF-16, with the BOM Python writes."""
    data = as_written(task_xml)
    assert data[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert data.decode("utf-16").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    assert etree.fromstring(data, PARSER).getroottree().docinfo.encoding == "UTF-16"
    with pytest.raises(etree.XMLSyntaxError):  # the same text in UTF-8 contradicts it
        etree.fromstring(task_xml.encode(), PARSER)


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ("<Hidden>true</Hidden>", "<Hiden>true</Hiden>", "Hiden"),  # misspelt element
    ("<ExecutionTimeLimit>PT0S<", "<ExecutionTimeLimit>0 seconds<", "duration"),
    ("<Interval>PT1M</Interval>\n      </Repetition>",  # the trigger's: at least a minute
     "<Interval>PT30S</Interval>\n      </Repetition>", "PT30S"),
    ("<Priority>7</Priority>", "<Priority>11</Priority>", "Priority"),
    ("<MultipleInstancesPolicy>IgnoreNew<", "<MultipleInstancesPolicy>Ignore<", "Ignore"),
    ('<Actions Context="Author">', '<Actions Context="Nobody">', "Nobody"),  # no such principal
])
def test_task_schema_refuses_a_broken_task(
    task_schema: etree.XMLSchema, task_xml: str, old: str, new: str, complaint: str
) -> None:
    """The check can fail: each change is one Task Scheduler would refuse at /Create."""
    assert task_xml.count(old) == 1, old
    errors = task_errors(task_schema, as_written(task_xml.replace(old, new)))
    assert complaint in errors, errors


def test_task_trigger_elements_are_in_the_schema_order(
    task_schema: etree.XMLSchema, task_xml: str
) -> None:
    """A trigger's children are a sequence (Repetition first): order matters, not just names."""
    moved = task_xml.replace(
        "<Repetition>\n        <Interval>PT1M</Interval>\n      </Repetition>\n"
        "      <Enabled>true</Enabled>",
        "<Enabled>true</Enabled>\n"
        "      <Repetition>\n        <Interval>PT1M</Interval>\n      </Repetition>",
    )
    assert moved != task_xml
    assert "Repetition" in task_errors(task_schema, as_written(moved))


def plist_document(text: str) -> etree._Element:
    return etree.fromstring(text.encode(), PARSER)


def test_launchd_plist_is_valid(plist_dtd: etree.DTD) -> None:
    text = LaunchdBackend().render(["/Users/ana/.local/bin/credguard", "--debug"])
    assert plist_dtd.validate(plist_document(text)), plist_dtd.error_log


@pytest.mark.parametrize(("old", "new", "complaint"), [
    ("<true/>", "<yes/>", "yes"),  # no such plist element
    ("<integer>30</integer>", "<number>30</number>", "number"),
    ("\t<key>RunAtLoad</key>\n", "", "dict"),  # a value without its key
])
def test_plist_dtd_refuses_a_broken_plist(
    plist_dtd: etree.DTD, old: str, new: str, complaint: str
) -> None:
    text = LaunchdBackend().render(["/usr/local/bin/credguard"])
    assert text.count(old) == 1, old
    assert not plist_dtd.validate(plist_document(text.replace(old, new)))
    assert complaint in str(plist_dtd.error_log)
