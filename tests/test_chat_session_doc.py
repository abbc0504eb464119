"""The kept part of a VS Code chat session, replayed from its patch log, equals the kept part of
the whole session replayed the way VS Code's own reader does (`ObjectMutationLog.read`), over
thousands of random patch sequences; and the lines it skips undecoded change nothing kept."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from dx_lsp_telemetry.sources import chat_session_doc as sdoc
from tests.copilot_chat_logs import answer_parts, dumps, request, result, session


def vscode_apply(state: Any, entry: dict[str, Any]) -> Any:
    """What `ObjectMutationLog.read` does with one entry (holes as None)."""
    entry = json.loads(dumps(entry))  # as read from the file: no shared objects
    kind = entry["kind"]
    if kind == 0:
        return entry["v"]
    path = entry["k"]
    if kind in (1, 3):
        if not path:
            return state
        node = state
        for segment in path[:-1]:
            node = node[segment]
        value = None if kind == 3 else entry["v"]
        last = path[-1]
        if isinstance(node, list):
            node.extend([None] * (last + 1 - len(node)))
            node[last] = value
        elif kind == 3:
            node.pop(last, None)
        else:
            node[last] = value
        return state
    node = state
    for segment in path[:-1]:
        node = node[segment]
    items = node.get(path[-1]) if isinstance(node, dict) else node[path[-1]]
    if items is None:
        items = []
    if "i" in entry:
        del items[entry["i"] :]
        items.extend([None] * (entry["i"] - len(items)))
    items.extend(entry.get("v") or [])
    node[path[-1]] = items
    return state


def random_entry(rng: random.Random, state: dict[str, Any], n: int) -> dict[str, Any]:
    requests = state["requests"]
    count = len(requests)
    live = [i for i, r in enumerate(requests) if isinstance(r, dict)]
    choice = rng.randrange(11)
    new = request(f"request_{n}", 1_790_000_000_000 + n, model_id=rng.choice(["copilot/a", "b"]))
    if choice == 0 or not live:
        cut = rng.randrange(count + 2) if count and rng.random() < 0.3 else None
        return {
            "kind": 2,
            "k": ["requests"],
            "v": [new] * rng.randrange(1, 3),
            **({"i": cut} if cut is not None else {}),
        }
    index = rng.choice(live)
    if choice == 1:
        res = result(rng.randrange(5000), rng.randrange(500), resolved=rng.choice([None, "m1"]))
        return {"kind": 1, "k": ["requests", index, "result"], "v": res}
    if choice == 2:
        return {"kind": 2, "k": ["requests", index, "response"], "v": answer_parts()}
    if choice == 3:
        return {"kind": 1, "k": ["requests", index, "modelId"], "v": rng.choice(["copilot/x", "y"])}
    if choice == 4:
        return {"kind": 3, "k": ["requests", index, rng.choice(["result", "modelId", "response"])]}
    if choice == 5:
        return {"kind": 1, "k": ["requests", index], "v": new}
    if choice == 6:
        return {"kind": 1, "k": ["inputState", "inputText"], "v": "draft"}
    if choice == 7 and isinstance(requests[index].get("result"), dict):
        meta = requests[index]["result"].get("metadata")
        if isinstance(meta, dict):
            return {
                "kind": 1,
                "k": ["requests", index, "result", "metadata", "outputTokens"],
                "v": rng.randrange(900),
            }
    if choice == 8:
        return {"kind": 1, "k": ["requests", index, "completionTokens"], "v": rng.randrange(900)}
    if choice == 9:
        return {"kind": 3, "k": ["requests", index]}
    if choice == 10 and rng.random() < 0.2:
        return {"kind": 0, "v": copy.deepcopy(state)}  # a compaction
    return {"kind": 1, "k": ["sessionId"], "v": f"s{rng.randrange(3)}"}


@pytest.mark.parametrize("seed", range(40))
def test_random_patch_logs_keep_what_vscode_would_read(seed: int) -> None:
    rng = random.Random(seed)
    full: Any = session("s0", 1_790_000_000_000)
    kept = sdoc.apply(None, {"kind": 0, "v": copy.deepcopy(full)})
    for n in range(120):
        entry = random_entry(rng, full, n)
        line = dumps(entry).encode()
        head = sdoc.patch_head(line)
        assert head is None or head == (entry["kind"], entry.get("k", []))
        before = sdoc.prune(full, sdoc.SESSION)
        full = vscode_apply(full, entry)
        if head is not None and not sdoc.wanted(*head):
            assert sdoc.prune(full, sdoc.SESSION) == before, entry  # skipping it loses nothing
            continue
        kept = sdoc.apply(kept, json.loads(line))
        assert kept == sdoc.prune(full, sdoc.SESSION), (seed, n, entry)
    assert json.loads(json.dumps(kept)) == kept  # it goes into the checkpoint as JSON


def test_ids_are_hashed_and_text_never_kept() -> None:
    full = session("sess-1", 1, [request("request_1", 2, result=result(1, 2))])
    kept = sdoc.prune(full, sdoc.SESSION)
    text = json.dumps(kept)
    assert "sess-1" not in text and "request_1" not in text and "secret" not in text
    assert kept["sessionId"] == sdoc.hash_id("sess-1")
    assert kept["requests"][0]["requestId"] == sdoc.hash_id("request_1")
    odd = sdoc.prune(
        {"requests": [{"promptTokens": {"text": "a prompt"}, "modelId": ["x"]}]}, sdoc.SESSION
    )
    assert odd == {"requests": [{"promptTokens": "<object>", "modelId": "<array>"}]}


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"kind": 1, "k": ["requests", 3, "result"], "v": {}}, "no requests.3 in the session"),
        ({"kind": 2, "k": ["requests"], "v": {"a": 1}}, "pushed values that are not a list"),
        ({"kind": 2, "k": ["requests"], "v": [], "i": -2}, "a cut at -2"),
        ({"kind": 2, "k": ["requests"], "v": [], "i": 10**9}, "far past the end"),
        ({"kind": 1, "k": ["requests", 10**9], "v": {}}, "far past the end"),
        ({"kind": 7, "k": []}, "unknown patch kind 7"),
        ({"kind": 1, "k": "requests", "v": 1}, "not a list of names and indexes"),
        ({"kind": 2, "k": ["sessionId"], "v": []}, "sessionId is not a list"),
        ({"kind": 1, "k": ["requests", 0, "result", "metadata"], "v": 1}, "no requests.0 in"),
    ],
)
def test_patches_that_do_not_fit_are_refused(patch: dict[str, Any], message: str) -> None:
    doc = sdoc.apply(None, {"kind": 0, "v": session("s", 1)})
    with pytest.raises(sdoc.Misfit, match=message.replace(".", r"\.")):
        sdoc.apply(doc, patch)
    with pytest.raises(sdoc.Misfit, match="before the session's first line"):
        sdoc.apply(None, {"kind": 1, "k": ["sessionId"], "v": "x"})
