"""A VS Code chat session reduced to what usage needs, and its patch log replayed onto it.

VS Code (1.109 and later) stores a chat session as `chatSessions/<id>.jsonl`, an append log of
patches to one JSON document (`ObjectMutationLog` in microsoft/vscode
`src/vs/workbench/contrib/chat/common/model/objectMutationLog.ts`): `{"kind":0,"v":doc}` the whole
document (the first line, and again when the log is compacted), `{"kind":1,"k":path,"v":value}`
sets the value at `path`, `{"kind":2,"k":path,"v":[items],"i":n}` cuts the array at `path` to `n`
items (when `i` is given) and appends `items`, `{"kind":3,"k":path}` deletes the value at `path`.
Earlier versions wrote the same document as one rewritten `chatSessions/<id>.json`.

The document holds the prompts, the answers and the tool output. Only the fields in `SESSION`
are kept, on the way in (a patch touching anything else is dropped without being applied), so the
kept document may go into the checkpoint: the session and request ids are hashed, the rest are
counts, model names and timestamps. A patch that does not fit the document (an index past the
end, a path through a value that is not an object) raises `Misfit`, as VS Code's own reader fails.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Union

#: a kept scalar (counts, timestamps, models); `ID`: a kept id, hashed; a dict: an object with
#: only these keys; a one-item list: an array of that
Spec = Union[None, str, dict[str, Any], list[Any]]
ID = "id"
MAX_TEXT = 200
#: a set or a cut beyond the end of an array by more than this is refused (a corrupt index)
MAX_GAP = 10_000

_USAGE: dict[str, Any] = {
    "promptTokens": None,
    "inputTokens": None,
    "completionTokens": None,
    "outputTokens": None,
}
REQUEST: dict[str, Any] = {
    "requestId": ID,
    "timestamp": None,
    "modelId": None,
    "promptTokens": None,
    "completionTokens": None,
    "usage": _USAGE,
    "result": {
        "metadata": {
            "promptTokens": None,
            "outputTokens": None,
            "resolvedModel": None,
            "usage": _USAGE,
        },
        "usage": _USAGE,
    },
}
SESSION: dict[str, Any] = {"sessionId": ID, "requests": [REQUEST]}

#: the first bytes of every patch line VS Code writes (`JSON.stringify({kind, k, v, i})`)
_PATCH_START = b'{"kind":'


class Misfit(ValueError):
    """A patch that does not apply to the document."""


def hash_id(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def prune(value: Any, spec: Spec) -> Any:
    """`value` with only what `spec` keeps."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return _scalar(value)
        return {k: prune(v, spec[k]) for k, v in value.items() if k in spec}
    if isinstance(spec, list):
        if not isinstance(value, list):
            return _scalar(value)
        return [prune(v, spec[0]) for v in value]
    if spec == ID:
        return hash_id(value) if isinstance(value, str) else _scalar(value)
    return _scalar(value)


def _scalar(value: Any) -> Any:
    """A kept leaf: numbers, booleans and null as they are, text cut short, and an object or an
    array (a wrong type) as its kind only: its contents may be anything."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return f"<{'array' if isinstance(value, list) else 'object'}>"


def apply(doc: dict[str, Any] | None, patch: Any) -> dict[str, Any] | None:
    """The document after `patch` (a decoded line of the log)."""
    if not isinstance(patch, dict):
        raise Misfit("not a JSON object")
    kind = patch.get("kind")
    if kind == 0:
        new = prune(patch.get("v"), SESSION)
        if not isinstance(new, dict):
            raise Misfit("the session is not an object")
        return new
    if type(kind) is not int or kind not in (1, 2, 3):
        raise Misfit(f"unknown patch kind {_show(kind)}")
    path = patch.get("k")
    if not isinstance(path, list) or not all(_is_segment(s) for s in path):
        raise Misfit("its path is not a list of names and indexes")
    if doc is None:
        raise Misfit("a change before the session's first line")
    if kind == 1:
        if path:  # VS Code leaves the root alone when a patch replaces it
            _set(doc, path, patch.get("v"))
    elif kind == 2:
        _push(doc, path, patch.get("v"), patch.get("i"))
    else:
        _set(doc, path, None, delete=True)
    return doc


def wanted(kind: int, path: list[Any]) -> bool:
    """Whether a patch of `kind` at `path` can change what is kept (else it needs no decoding)."""
    if kind == 0:
        return True
    spec: Spec = SESSION
    for segment in path:
        child = _child_spec(spec, segment)
        if child is _NOT_KEPT:
            return False
        spec = child
    return True


def patch_head(line: bytes) -> tuple[int, list[Any]] | None:
    """The kind and path of a patch line, read from its first bytes without decoding the rest
    (a line can be hundreds of megabytes of tool output); None if the line is not in the
    expected shape (it is then decoded whole)."""
    if not line.startswith(_PATCH_START) or len(line) < 12:
        return None
    kind = line[8] - 48
    if not 0 <= kind <= 9 or line[9:10] != b",":
        return None
    if kind == 0:
        return 0, []
    if line[10:15] != b'"k":[':
        return None
    end = line.find(b"]", 15, 4096)
    if end < 0:
        return None
    path: list[Any] = []
    for raw in line[15:end].split(b","):
        raw = raw.strip()
        if not raw:
            continue
        if raw[:1] == b'"' and raw[-1:] == b'"' and len(raw) >= 2 and b"\\" not in raw:
            path.append(raw[1:-1].decode("utf-8", "replace"))
        elif raw.isdigit():
            path.append(int(raw))
        else:
            return None
    return kind, path


def decode_line(line: bytes) -> Any:
    """A patch line; a line torn by a crash and followed, on the same line, by the patches
    written after it loses only the torn part."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        pass
    start = line.find(b'{"kind":', 1)
    while start > 0:
        try:
            return json.loads(line[start:])
        except (ValueError, RecursionError):
            start = line.find(b'{"kind":', start + 1)
    raise Misfit("not JSON")


_NOT_KEPT: Any = object()


def _child_spec(spec: Spec, segment: Any) -> Any:
    if isinstance(spec, dict):
        return spec[segment] if isinstance(segment, str) and segment in spec else _NOT_KEPT
    if isinstance(spec, list):
        return spec[0] if type(segment) is int else _NOT_KEPT
    return _NOT_KEPT  # below a kept scalar


def _is_segment(value: Any) -> bool:
    return isinstance(value, str) or (type(value) is int and value >= 0)


def _walk(doc: dict[str, Any], path: list[Any]) -> tuple[Any, Spec] | None:
    """The kept node at `path` and its spec; None if `path` leaves what is kept."""
    node: Any = doc
    spec: Spec = SESSION
    for depth, segment in enumerate(path):
        child = _child_spec(spec, segment)
        if child is _NOT_KEPT:
            return None
        if isinstance(node, dict) and isinstance(segment, str):
            node = node.get(segment)
        elif isinstance(node, list) and type(segment) is int and segment < len(node):
            node = node[segment]
        else:
            where = ".".join(str(s) for s in path[: depth + 1])
            raise Misfit(f"no {where} in the session")
        spec = child
    return node, spec


def _set(doc: dict[str, Any], path: list[Any], value: Any, *, delete: bool = False) -> None:
    found = _walk(doc, path[:-1])
    if found is None:
        return
    parent, spec = found
    last = path[-1]
    child = _child_spec(spec, last)
    if child is _NOT_KEPT:
        return
    if isinstance(parent, dict) and isinstance(last, str):
        if delete:
            parent.pop(last, None)
        else:
            parent[last] = prune(value, child)
    elif isinstance(parent, list) and type(last) is int:
        if last >= len(parent) + MAX_GAP:
            raise Misfit(f"index {last} is far past the end of {len(parent)} items")
        while len(parent) <= last:
            parent.append(None)  # JavaScript's holes
        parent[last] = None if delete else prune(value, child)
    else:
        raise Misfit(f"no {'.'.join(str(s) for s in path)} in the session")


def _push(doc: dict[str, Any], path: list[Any], values: Any, cut: Any) -> None:
    if not path:
        raise Misfit("a push without a path")
    found = _walk(doc, path[:-1])
    if found is None:
        return
    parent, spec = found
    child = _child_spec(spec, path[-1])
    if child is _NOT_KEPT:
        return
    if not isinstance(child, list):
        raise Misfit(f"{'.'.join(str(s) for s in path)} is not a list")
    if values is not None and not isinstance(values, list):
        raise Misfit("pushed values that are not a list")
    if cut is not None and (type(cut) is not int or cut < 0):
        raise Misfit(f"a cut at {_show(cut)}")
    if isinstance(parent, dict) and isinstance(path[-1], str):
        items = parent.get(path[-1])
        if items is None:
            items = parent[path[-1]] = []
    elif isinstance(parent, list) and type(path[-1]) is int and path[-1] < len(parent):
        items = parent[path[-1]]
    else:
        raise Misfit(f"no {'.'.join(str(s) for s in path)} in the session")
    if not isinstance(items, list):
        raise Misfit(f"{'.'.join(str(s) for s in path)} is not a list in the session")
    if cut is not None:
        if cut >= len(items) + MAX_GAP:
            raise Misfit(f"a cut at {cut}, far past the end of {len(items)} items")
        del items[cut:]
        items.extend([None] * (cut - len(items)))
    items.extend(prune(v, child[0]) for v in values or ())


def _show(value: Any) -> str:
    """An int as it is, anything else by its type: file content never goes into a message."""
    return str(value) if type(value) is int else f"a {type(value).__name__}"
