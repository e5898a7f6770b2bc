"""What JSON Schemas allow, as far as wiring steps together needs: local ``$ref`` s, types,
whether one schema's values fit another, a schema at a path, and copying a schema with its
``$defs`` into another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DEFS = "#/$defs/"


def resolve(schema: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` with local ``$ref`` s followed; anything unreadable counts as "any"."""
    for _ in range(32):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        if not ref.startswith(DEFS):
            return {}
        schema = defs.get(ref[len(DEFS) :], {})
    return {}


def branches_of(schema: dict[str, Any]) -> list[Any] | None:
    found = schema.get("anyOf") or schema.get("oneOf")
    return found if isinstance(found, list) else None


def json_type(value: Any) -> str:
    kinds = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "string"),
        (list, "array"),
        (dict, "object"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), "null")


def types_of(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema allows; None when it does not say (any)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    if "const" in schema:
        return {json_type(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {json_type(v) for v in schema["enum"]}
    return None


def all_types(schema: Any, defs: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema allows, its ``anyOf`` branches included (an integer is also a
    number); None when any part does not say."""
    node = resolve(schema, defs)
    if (branches := branches_of(node)) is not None:
        found = [all_types(b, defs) for b in branches]
        return None if None in found else set().union(*found)
    kinds = types_of(node)
    if kinds is not None and "integer" in kinds:
        kinds = kinds | {"number"}
    if kinds is not None and "number" in kinds:
        kinds = kinds | {"integer"}  # 3.0 is a number and, to JSON Schema, an integer
    return kinds


def fits(src: Any, sdefs: Mapping[str, Any], dst: Any, ddefs: Mapping[str, Any]) -> bool:
    """Whether every value ``src`` allows is allowed by ``dst`` (as far as the types tell)."""
    src, dst = resolve(src, sdefs), resolve(dst, ddefs)
    if (branches := branches_of(src)) is not None:
        return all(fits(b, sdefs, dst, ddefs) for b in branches)
    if (branches := branches_of(dst)) is not None:
        return any(fits(src, sdefs, b, ddefs) for b in branches)
    st, dt = types_of(src), types_of(dst)
    if st is None or dt is None:
        return True
    if not all(t in dt or (t == "integer" and "number" in dt) for t in st):
        return False
    if "array" in st and "array" in dt:
        return fits(src.get("items", {}), sdefs, dst.get("items", {}), ddefs)
    if "object" in st and "object" in dt:
        sp, dp = src.get("properties"), dst.get("properties")
        if isinstance(sp, dict) and isinstance(dp, dict):
            if any(name not in sp for name in dst.get("required", ())):
                return False
            return all(fits(sp[k], sdefs, v, ddefs) for k, v in dp.items() if k in sp)
    return True


def describe(schema: Any, defs: Mapping[str, Any]) -> str:
    schema = resolve(schema, defs)
    if (branches := branches_of(schema)) is not None:
        return " or ".join(describe(b, defs) for b in branches)
    kinds = types_of(schema)
    if kinds is None:
        return "any"
    names = []
    for kind in sorted(kinds):
        items = schema.get("items")
        if kind == "array" and isinstance(items, dict) and types_of(resolve(items, defs)):
            names.append(f"array of {describe(items, defs)}")
        else:
            names.append(kind)
    return " or ".join(names)


def schema_at(
    schema: Any, defs: Mapping[str, Any], path: Sequence[str]
) -> tuple[dict[str, Any], str | None]:
    """The schema found at ``path``; or ``({}, None)`` when unknown; or a reason it is missing."""
    for key in path:
        node = resolve(schema, defs)
        branches = branches_of(node)
        if branches is not None:  # Optional[Model]: look inside the non-null branch
            real = [b for b in branches if types_of(resolve(b, defs)) != {"null"}]
            if len(real) != 1:
                return {}, None
            node = resolve(real[0], defs)
        kinds = types_of(node)
        if kinds is None:
            return {}, None
        if "object" in kinds:
            props, extra = node.get("properties"), node.get("additionalProperties")
            if isinstance(props, dict) and key in props:
                schema = props[key]
            elif isinstance(extra, dict):
                schema = extra
            elif isinstance(props, dict) and extra is not True:
                return {}, f"have no field {key!r} (fields: {', '.join(props) or 'none'})"
            else:
                return {}, None
        elif "array" in kinds and key.isdigit():
            schema = node.get("items", {})
        else:
            return {}, f"are {describe(node, defs)}, which has no field {key!r}"
    return resolve(schema, defs) if isinstance(schema, dict) else {}, None


def embed(node: Any, src_defs: Mapping[str, Any], out: dict[str, Any], names: dict[str, str]):
    """Copy ``node`` into another schema, moving the ``$defs`` it uses into ``out``."""
    if isinstance(node, list):
        return [embed(x, src_defs, out, names) for x in node]
    if not isinstance(node, dict):
        return node
    copy = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(DEFS):
            name = value[len(DEFS) :]
            if name not in names:  # a new name, so two job types' "Point"s do not clash
                new, n = name, 1
                while new in out:
                    n += 1
                    new = f"{name}{n}"
                names[name] = new
                out[new] = {}
                out[new] = embed(src_defs.get(name, {}), src_defs, out, names)
            copy[key] = DEFS + names[name]
        else:
            copy[key] = embed(value, src_defs, out, names)
    return copy
