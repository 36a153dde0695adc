"""The ``--json`` contract: every document validates against its JSON Schema in
``docs/schemas/<name>.schema.json`` (draft 2020-12), and every schema demands an object with an
integer ``version``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


@cache
def schema(name: str) -> dict[str, Any]:
    path = SCHEMAS / f"{name}.schema.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def validate(document: object, name: str) -> dict[str, Any]:
    """``document`` (parsed, or the command's stdout) checked against schema ``name``;
    returns it parsed."""
    doc = json.loads(document) if isinstance(document, str) else document
    jsonschema.Draft202012Validator(
        schema(name), format_checker=jsonschema.FormatChecker()
    ).validate(doc)
    assert isinstance(doc, dict) and isinstance(doc.get("version"), int), doc
    return doc
