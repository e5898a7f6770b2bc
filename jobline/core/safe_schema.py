"""JSON Schemas that come from users (templates, import files, pipeline definitions): checked
once when saved and validated without reaching outside the document or backtracking.

Two dangers, both closed here so that every caller gets the same answer:

* ``$ref``: jsonschema would retrieve any URI it cannot find in the document (``http://``
  with no timeout and no address guard, ``file://`` whose content shows up in errors). Here
  the registry retrieves nothing, and a schema whose ``$ref`` or ``$dynamicRef`` points
  anywhere but inside itself (``#...``) is refused when it is saved.
* ``pattern`` and ``patternProperties``: Python's ``re`` backtracks, so ``^(a+)+$`` takes
  exponential time on a crafted string. Here patterns run on RE2 (linear time), and one that
  RE2 cannot compile (backreferences, lookaround) is refused. jsonschema's
  ``unevaluatedProperties`` matches ``patternProperties`` with ``re`` internally, so the two
  cannot be combined in one schema.

No I/O, no Django: the core's pipelines use it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema
import re2
from jsonschema import validators
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

#: Retrieves nothing: a URI that is not in the document itself stays unresolved.
EMPTY_REGISTRY: Registry[Any] = Registry()

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to the user, not to stderr
_RE2_OPTIONS.max_mem = 8 << 20  # a pattern whose automaton needs more is refused


class UnsafeSchema(ValueError):
    """A JSON Schema that is invalid or would reach outside itself or backtrack."""


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> Any:
    """``pattern`` compiled by RE2; raises :class:`UnsafeSchema` when RE2 cannot."""
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise UnsafeSchema(
            f"pattern {pattern!r} is not supported ({reason}); patterns run on RE2:"
            " no backreferences or lookaround"
        ) from None


def _search(pattern: str, text: str) -> bool:
    return compiled(pattern).search(text) is not None


def _unsupported(patterns: Any) -> Iterator[jsonschema.ValidationError]:
    """An error for each pattern RE2 refuses (in a schema that skipped :func:`check`)."""
    for pattern in patterns:
        try:
            compiled(pattern)
        except UnsafeSchema as exc:
            yield jsonschema.ValidationError(str(exc), validator="schema")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    if refused := list(_unsupported([pattern])):
        yield from refused
    elif not _search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator:
    if not validator.is_type(instance, "object"):
        return
    if refused := list(_unsupported(patterns)):
        yield from refused
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator:
    # jsonschema's own version matches patternProperties with ``re``.
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    if refused := list(_unsupported(patterns)):
        yield from refused  # reported once more by patternProperties: better than a crash
        return
    extras = [
        key
        for key in instance
        if key not in known and not any(_search(pattern, key) for pattern in patterns)
    ]
    if extra is False and extras:
        names = ", ".join(repr(key) for key in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        yield jsonschema.ValidationError(
            f"Additional properties are not allowed ({names} {verb} unexpected)"
        )
    elif validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)


SafeValidator = validators.extend(
    jsonschema.Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def check(schema: Any) -> None:
    """Raise :class:`UnsafeSchema` unless ``schema`` is a valid draft 2020-12 JSON Schema that
    refers only inside itself and whose patterns RE2 compiles. Run it when a schema is saved."""
    if not isinstance(schema, dict):
        raise UnsafeSchema("a JSON Schema must be an object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise UnsafeSchema(f"not a valid JSON Schema: {exc.message}") from None
    root = DRAFT202012.create_resource(schema)
    resolver = EMPTY_REGISTRY.resolver_with_root(root)
    keywords: set[str] = set()
    for where, node in _subschemas(resolver, root):
        _check_node(where, node.contents)
        keywords.update(node.contents if isinstance(node.contents, dict) else ())
    if {"patternProperties", "unevaluatedProperties"} <= keywords:
        raise UnsafeSchema("patternProperties cannot be combined with unevaluatedProperties")


def _subschemas(resolver: Any, resource: Resource[Any]) -> Iterator[tuple[Any, Resource[Any]]]:
    """Every schema inside ``resource`` (not values in ``const``, ``enum``, ``default``)."""
    yield resolver, resource
    for sub in resource.subresources():
        yield from _subschemas(resolver.in_subresource(sub), sub)


def _check_node(resolver: Any, node: Any) -> None:
    if not isinstance(node, dict):
        return
    for keyword in ("$ref", "$dynamicRef"):
        ref = node.get(keyword)
        if not isinstance(ref, str):
            continue
        if not ref.startswith("#"):
            raise UnsafeSchema(
                f"{keyword} {ref!r} is not allowed: a schema may only refer inside itself"
                " (such as '#/$defs/name')"
            )
        try:
            resolver.lookup(ref)
        except Unresolvable:
            raise UnsafeSchema(f"{keyword} {ref!r} does not point into this schema") from None
    patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    if isinstance(node.get("patternProperties"), dict):
        patterns += list(node["patternProperties"])
    for pattern in patterns:
        compiled(pattern)


def validator(schema: dict[str, Any]) -> Any:
    """A validator for ``schema`` that resolves references only inside it and matches
    patterns with RE2. The schema should have passed :func:`check` when it was saved."""
    return SafeValidator(schema, registry=EMPTY_REGISTRY)


def errors(schema: Any, data: Any) -> Iterator[jsonschema.ValidationError]:
    """Every way ``data`` fails ``schema``. A schema stored before these checks existed that
    fails :func:`check` yields one error at its root instead of being used."""
    try:
        check(schema)
    except UnsafeSchema as exc:
        yield jsonschema.ValidationError(f"the schema is refused: {exc}", validator="schema")
        return
    yield from validator(schema).iter_errors(data)
