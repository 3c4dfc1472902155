"""The three patch formats kube-apiserver accepts, applied to plain JSON values.

* :func:`merge_patch`: JSON Merge Patch, RFC 7386 (``application/merge-patch+json``).
* :func:`json_patch`: JSON Patch, RFC 6902 (``application/json-patch+json``): add, remove, replace, move,
  copy, test. A malformed patch raises :class:`PatchDecodeError` (the server answers 400); an operation that
  does not apply, including a failed ``test``, raises :class:`PatchApplyError` (422).
* :func:`strategic_merge_patch`: an approximation of Kubernetes' strategic merge patch for built-in types.
  The real one reads ``patchMergeKey``/``patchStrategy`` from the Go struct tags; here lists of objects are
  merged by a key chosen by the list's field name (:data:`MERGE_KEYS`: ``containers``/``env``/``volumes``
  by ``name``, ``volumeMounts`` by ``mountPath``, ``ports`` by ``containerPort`` or ``port``,
  ``conditions`` by ``type``, ``ownerReferences`` by ``uid``, ...), ``finalizers`` is merged as a set,
  and every other list is replaced. Directives honoured: ``$patch: replace|delete|merge`` in maps and list
  items, ``$retainKeys``, ``$deleteFromPrimitiveList/<field>``; ``$setElementOrder/<field>`` is dropped.

All functions return new values and never modify their arguments.
"""

from __future__ import annotations

import copy
from typing import Any


class PatchDecodeError(ValueError):
    """The patch document itself is malformed."""


class PatchApplyError(ValueError):
    """The patch is well formed but does not apply to the object."""


# --- RFC 7386 -------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 -------------------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchDecodeError(f"path must be a string, got {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchDecodeError(f"JSON pointer must be empty or start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchApplyError(f"invalid array index {token!r} in {path}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchApplyError(f"array index {idx} out of bounds in {path}")
    return idx


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchApplyError(f"doc is missing path: {path}: missing value")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, for_add=False)]
        else:
            raise PatchApplyError(f"doc is missing path: {path}: missing value")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchApplyError(f"doc is missing key: {path}: missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, path, for_add=False)]
    raise PatchApplyError(f"doc is missing path: {path}: missing value")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, for_add=True), value)
    else:
        raise PatchApplyError(f"add operation does not apply: doc is missing path: {path}: missing value")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchApplyError("remove operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchApplyError(
                f"remove operation does not apply: doc is missing path: {path}: missing value"
            )
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, for_add=False))
    raise PatchApplyError(f"remove operation does not apply: doc is missing path: {path}: missing value")


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch (a list of operations) and return the new document."""
    if not isinstance(operations, list):
        raise PatchDecodeError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchDecodeError(f"invalid JSON patch operation {op!r}: each operation needs an 'op'")
        kind = op["op"]
        if "path" not in op:
            raise PatchDecodeError(f"invalid JSON patch operation {op!r}: missing 'path'")
        path = op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchDecodeError(f"invalid JSON patch operation {op!r}: missing 'value'")
        if kind in ("move", "copy") and "from" not in op:
            raise PatchDecodeError(f"invalid JSON patch operation {op!r}: missing 'from'")
        value = copy.deepcopy(op.get("value"))
        if kind == "add":
            doc = _add(doc, path, value)
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            try:
                _get(doc, path)
            except PatchApplyError as e:
                raise PatchApplyError(f"replace operation does not apply: {e}") from None
            if _pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, value)
        elif kind == "move":
            src = op["from"]
            if path != src and path.startswith(src + "/"):
                raise PatchApplyError(
                    f"move operation does not apply: cannot move {src} into its child {path}"
                )
            doc, moved = _remove(doc, src)
            doc = _add(doc, path, moved)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            try:
                actual = _get(doc, path)
            except PatchApplyError:
                actual = None
            if actual != value:
                raise PatchApplyError(f"testing value {path} failed: test failed")
        else:
            raise PatchDecodeError(f"Unexpected kind: {kind}")
    return doc


# --- strategic merge (approximation) --------------------------------------------------------------------

MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "port"),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
    "topologySpreadConstraints": ("topologyKey",),
    "secrets": ("name",),
}
PRIMITIVE_SET_LISTS = ("finalizers",)


def _merge_key(field: str, items: list[Any]) -> str | None:
    for key in MERGE_KEYS.get(field, ()):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def _merge_list(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if field in PRIMITIVE_SET_LISTS:
        out = list(current)
        out.extend(v for v in patch if v not in out)
        return out
    key = _merge_key(field, [i for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")])
    if key is None or not all(isinstance(i, dict) for i in current):
        return [_strip(i) for i in patch]
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        pos = next((n for n, cur in enumerate(out) if cur.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                out.pop(pos)
        elif pos is None:
            out.append(_strip(item))
        else:
            out[pos] = strategic_merge_patch(out[pos], item)
    return out


def _strip(value: Any) -> Any:
    """Drop patch directives from a value that is inserted as-is."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return copy.deepcopy(value)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch (see the module docstring for what is approximated)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip(patch)
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise PatchDecodeError(f"Unknown patch directive $patch: {directive!r}")
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        else:
            result[key] = _strip(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result
