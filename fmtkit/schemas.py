"""The JSON Schemas in ``schemas/``: where they live and which one checks which form.

The schema files ship inside the installed package (``fmtkit/schemas``); in a
source checkout they are read from the repository's ``schemas/`` folder.

>>> schema_for_form("sharegpt")
'sharegpt-sft.schema.json'
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

INFO_SCHEMA = "dataset_info.schema.json"


def schema_dir() -> Path:
    """The folder holding the schema files (installed package first, then the source tree)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / INFO_SCHEMA).is_file():
            return candidate
    return here.parent / "schemas"


def schema_for_form(form: str) -> str | None:
    """The schema file of a form (each :class:`~fmtkit.forms.Form` names its own)."""
    from fmtkit.forms import FORMS

    f = FORMS.get(form)
    return f.schema if f is not None else None


@functools.cache
def load_schema(name: str) -> dict[str, Any] | None:
    path = schema_dir() / name
    if not path.is_file():
        return None
    return orjson.loads(path.read_bytes())


def _registry():
    """Every schema by ``$id``, so cross-file ``$ref`` resolve offline."""
    out = {}
    for path in schema_dir().glob("*.schema.json"):
        doc = orjson.loads(path.read_bytes())
        if "$id" in doc:
            out[doc["$id"]] = doc
    return out


@functools.cache
def fast_validator(name: str):
    """A compiled ``jsonschema_rs`` validator for one schema file (None when the file is absent)."""
    schema = load_schema(name)
    if schema is None:
        return None
    import jsonschema_rs

    resources = list(_registry().items())
    registry = jsonschema_rs.Registry(resources) if resources else None
    return jsonschema_rs.validator_for(schema, registry=registry, offline=True)


@functools.cache
def reference_validator(name: str):
    """The pure-Python ``jsonschema`` validator: the reference, used for small documents."""
    schema = load_schema(name)
    if schema is None:
        return None
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources((uri, Resource.from_contents(doc)) for uri, doc in _registry().items())
    return Draft202012Validator(schema, registry=registry)


def explain_error(error, limit: int = 160) -> tuple[str, str]:
    """(JSON path, message) for a ``jsonschema`` error, as specific and short as it can be.

    A failed ``oneOf`` / ``anyOf`` is explained by the branch the instance came
    closest to (the one with the fewest errors), so users read "label: 'True' is
    not of type 'boolean'" rather than "is not valid under any of the given schemas".
    """
    while error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        error = min(branches.values(), key=len)[0]
    text = error.message
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return "/".join(str(p) for p in error.absolute_path), text
