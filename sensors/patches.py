"""Merging and patching plain JSON documents, as the Kubernetes triggers need them.

* :func:`merge_patch`: JSON Merge Patch (RFC 7386), ``application/merge-patch+json``: objects merge
  recursively, ``null`` deletes a member, anything else replaces.
* :func:`json_patch`: JSON Patch (RFC 6902), ``application/json-patch+json``: ``add``, ``remove``,
  ``replace``, ``move``, ``copy``, ``test``. A patch that does not apply raises :class:`PatchError`.
* :func:`merge_override`: the k8s trigger's ``update``: the new object merged over the live one,
  objects recursively, every other value of the new object (lists included) replacing the live one;
  ``null`` in the new object keeps the live value.

Every function returns a new document and leaves its arguments unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "json_patch", "merge_override", "merge_patch"]


class PatchError(ValueError):
    """A patch is malformed or does not apply to the document."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch to ``target``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_override(live: Any, new: Any) -> Any:
    """``new`` merged over ``live``: dicts recursively, other non-null values of ``new`` replace."""
    if isinstance(live, dict) and isinstance(new, dict):
        result = copy.deepcopy(live)
        for key, value in new.items():
            if value is None:
                continue
            result[key] = merge_override(live.get(key), value)
        return result
    return copy.deepcopy(live if new is None else new)


# --------------------------------------------------------------------------- RFC 6902


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"a JSON patch path must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"a JSON patch path must be empty or start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"path {path!r}: {token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"path {path!r}: index {index} is out of range (length {len(container)})")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {path!r}: member {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, allow_end=False)]
        else:
            raise PatchError(f"path {path!r}: cannot descend into a {type(node).__name__}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r}: member {last!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, allow_end=False)]
    raise PatchError(f"path {path!r}: cannot descend into a {type(parent).__name__}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise PatchError(f"path {path!r}: cannot add to a {type(parent).__name__}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {path!r}: member {last!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise PatchError(f"path {path!r}: cannot remove from a {type(parent).__name__}")


def json_patch(doc: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) to a copy of ``doc``."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    result = copy.deepcopy(doc)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {number}: needs 'op' and 'path', got {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {number} ({kind} {path}): needs 'value'")
        if kind == "add":
            result = _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result, _ = _remove(result, path)
        elif kind == "replace":
            _get(result, path)
            if _pointer(path):
                result, _ = _remove(result, path)
            result = _add(result, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError(f"operation {number} ({kind} {path}): needs 'from'")
            if kind == "move":
                if path != op["from"] and path.startswith(op["from"] + "/"):
                    raise PatchError(f"operation {number}: cannot move {op['from']!r} into itself")
                result, value = _remove(result, op["from"])
            else:
                value = copy.deepcopy(_get(result, op["from"]))
            result = _add(result, path, value)
        elif kind == "test":
            if _get(result, path) != op["value"]:
                raise PatchError(f"operation {number}: test failed at {path!r}")
        else:
            raise PatchError(
                f"operation {number}: unknown op {kind!r}; use add, remove, replace, move, copy or test"
            )
    return result
