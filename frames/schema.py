"""JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) from the TypedDicts that shape the
API's JSON, so each shape is written once: as the type the code returns.

Extra keywords ride on `Annotated`: `Annotated[str, {"format": "date-time"}]`. pydantic's
TypeAdapter does this too, but only for typing_extensions' TypedDict and with its own field
objects in the annotations, which would put pydantic into every worker that imports the model;
the handful of types the API uses need these few lines.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from enum import Enum
from typing import (
    Annotated,
    Any,
    Literal,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}
Refs = Mapping[Any, str]  # types given by reference: type -> "#/components/schemas/Name"


def json_schema(hint: Any, refs: Refs | None = None) -> dict[str, Any]:
    """The schema of values of `hint`; a TypedDict in `refs` nested inside becomes a $ref."""
    refs = refs or {}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        base, *extras = args
        schema = json_schema(base, refs)
        for extra in extras:
            schema.update(extra if isinstance(extra, Mapping) else {})
        return schema
    if origin in (Union, types.UnionType):
        return _union([json_schema(arg, refs) for arg in args])
    if is_typeddict(hint):
        return _object(hint, refs)
    return _plain(hint, origin, args, refs)


def _plain(hint: Any, origin: Any, args: tuple[Any, ...], refs: Refs) -> dict[str, Any]:
    if hint is Any:
        return {}
    if hint in SIMPLE:
        return {"type": SIMPLE[hint]}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"type": "string", "enum": [member.value for member in hint]}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _nested(args[1], refs)}
    if origin is list:
        return {"type": "array", "items": _nested(args[0], refs)}
    if origin is tuple:
        items = [_nested(arg, refs) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "items": False}
    raise TypeError(f"no JSON schema for {hint!r}")


def _nested(hint: Any, refs: Refs) -> dict[str, Any]:
    if is_typeddict(hint) and hint in refs:
        return {"$ref": refs[hint]}
    return json_schema(hint, refs)


def _object(typed_dict: Any, refs: Refs) -> dict[str, Any]:
    # A key the type does not declare is a key the schema does not know: refuse it.
    hints = get_type_hints(typed_dict, include_extras=True)
    return {
        "type": "object",
        "properties": {key: _nested(hint, refs) for key, hint in hints.items()},
        "required": [key for key in hints if key in typed_dict.__required_keys__],
        "additionalProperties": False,
    }


def _union(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """`float | None` -> {"type": ["number", "null"]}; choices of strings -> one enum."""
    if all(part.keys() <= {"type", "enum"} and part.get("type") == "string" for part in parts):
        if all("enum" in part for part in parts):
            return {"type": "string", "enum": [value for part in parts for value in part["enum"]]}
    if all(part.keys() == {"type"} and isinstance(part["type"], str) for part in parts):
        return {"type": [part["type"] for part in parts]}
    nullable = [part for part in parts if part != {"type": "null"}]
    if len(nullable) == 1 and len(parts) == 2 and isinstance(nullable[0].get("type"), str):
        schema = {**nullable[0], "type": [nullable[0]["type"], "null"]}
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": parts}
