"""A path longer than the audit's string cap is recorded with its middle elided, not refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from credguard.audit.log import AuditLog
from credguard.audit.record import elide


def test_a_path_longer_than_the_cap_is_elided_in_the_middle(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit")
    deep = "/home/u/Downloads/" + "/".join(f"{i:02d}" + "d" * 240 for i in range(20))
    path = deep + "/deep.publishsettings"
    log.append("protected", path=path, root=Path(deep), paths=[path], item_id="abc")
    (record,) = log.records()
    for shown in (record["path"], record["root"], record["paths"][0]):  # type: ignore[index]
        assert isinstance(shown, str) and len(shown) <= 4096
        assert "characters elided]" in shown
    assert str(record["path"]).startswith("/home/u/Downloads/00d")
    assert str(record["path"]).endswith("/deep.publishsettings")
    assert log.verify().ok


@pytest.mark.parametrize("size", [0, 10, 4096, 4097, 5000, 123_456])
def test_elide_keeps_both_ends_within_the_limit(size: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(size))
    shown = elide(text)
    assert len(shown) <= 4096
    if size <= 4096:
        assert shown == text
    else:
        head, rest = shown.split("…[", 1)
        count, tail = rest.split(" characters elided]…", 1)
        assert text.startswith(head) and text.endswith(tail)
        assert len(head) + int(count) + len(tail) == size


def test_other_fields_keep_their_cap(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="str is not a small JSON value"):
        AuditLog(tmp_path / "audit").append("failed", detail="x" * 5000)
