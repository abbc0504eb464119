"""VS Code chat sessions as VS Code writes them, for the Copilot Chat source's tests.

The log format is VS Code's `ObjectMutationLog` (microsoft/vscode
`src/vs/workbench/contrib/chat/common/model/objectMutationLog.ts`): one `JSON.stringify` of
`{kind, k, v, i}` per line, `kind` 0 the whole session, 1 a set, 2 a push (cut at `i` first),
3 a delete. The session and request fields, and their order (key first, then values, arrays,
objects, as the schema sorts them), follow `chatSessionOperationLog.ts`; where Copilot Chat puts
its counts (`result.metadata.promptTokens` / `outputTokens` / `resolvedModel`, and the request's
own `completionTokens`) follows what the readers of real files use (tokscale
`copilot_vscode.rs`, wakatime `copilot.go`, rajbos/github-copilot-token-usage). A real session
could not be produced here: Copilot Chat needs a GitHub sign-in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMPT = "refactor the secret-payroll module for ACME"
ANSWER = "Here is the refactored secret-payroll code"


def dumps(obj: Any) -> str:
    """`JSON.stringify`: compact, keys in insertion order, non-ASCII as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def session(
    session_id: str, created_ms: int, requests: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "version": 3,
        "creationDate": created_ms,
        "initialLocation": "panel",
        "inputState": {
            "attachments": [],
            "mode": {"id": "agent", "kind": "agent"},
            "selectedModel": {"identifier": "copilot/claude-sonnet-4.5"},
            "inputText": "",
            "selections": [],
            "contrib": {},
        },
        "responderUsername": "GitHub Copilot",
        "sessionId": session_id,
        "requests": requests or [],
        "hasPendingEdits": False,
        "pendingRequests": [],
    }


def request(
    request_id: str,
    ts_ms: int,
    *,
    model_id: str = "copilot/claude-sonnet-4.5",
    prompt: str = PROMPT,
    result: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A request as VS Code pushes it when the prompt is sent (no response, no result yet)."""
    body: dict[str, Any] = {
        "requestId": request_id,
        "timestamp": ts_ms,
        "agent": {
            "extensionId": {"value": "GitHub.copilot-chat", "_lower": "github.copilot-chat"},
            "extensionVersion": "0.36.0",
            "id": "github.copilot.editsAgent",
            "name": "agent",
        },
        "modelId": model_id,
        "modeInfo": {"kind": "agent", "isBuiltin": True, "modeId": "agent"},
        "responseId": "response_" + request_id.removeprefix("request_"),
    }
    if result is not None:
        body["result"] = result
    body.update(extra)
    body["timeSpentWaiting"] = ts_ms
    body["editedFileEvents"] = []
    body["response"] = []
    body["message"] = {
        "text": prompt,
        "parts": [
            {"range": {"start": 0, "endExclusive": len(prompt)}, "text": prompt, "kind": "text"}
        ],
    }
    body["variableData"] = {"variables": []}
    return body


def result(
    prompt_tokens: Any,
    output_tokens: Any,
    *,
    resolved: str | None = "claude-sonnet-4.5",
    elapsed_ms: int = 4200,
) -> dict[str, Any]:
    """`result` as Copilot Chat's agent sets it when the response completes."""
    metadata: dict[str, Any] = {
        "codeBlocks": [],
        "renderedUserMessage": [{"type": 1, "text": PROMPT}],
        "toolCallRounds": [
            {"response": ANSWER, "toolCalls": [], "id": "round-1", "thinking": {"tokens": 12}}
        ],
        "toolCallResults": {},
        "modelMessageId": "f3b1c0de-0000-4000-8000-000000000001",
        "responseId": "8e1f0000-0000-4000-8000-000000000002",
        "sessionId": "4aa0c0de-0000-4000-8000-000000000003",
        "agentId": "github.copilot.editsAgent",
    }
    if resolved is not None:
        metadata["resolvedModel"] = resolved
    if prompt_tokens is not None:
        metadata["promptTokens"] = prompt_tokens
    if output_tokens is not None:
        metadata["outputTokens"] = output_tokens
    return {"timings": {"firstProgress": 900, "totalElapsed": elapsed_ms}, "metadata": metadata}


# -- the patch log ------------------------------------------------------------------------------


def initial(doc: dict[str, Any]) -> str:
    return dumps({"kind": 0, "v": doc}) + "\n"


def set_(path: list[Any], value: Any) -> str:
    return dumps({"kind": 1, "k": path, "v": value}) + "\n"


def push(path: list[Any], values: list[Any] | None, cut: int | None = None) -> str:
    entry: dict[str, Any] = {"kind": 2, "k": path}
    if values is not None:
        entry["v"] = values
    if cut is not None:
        entry["i"] = cut
    return dumps(entry) + "\n"


def delete(path: list[Any]) -> str:
    return dumps({"kind": 3, "k": path}) + "\n"


def answer_parts(text: str = ANSWER) -> list[dict[str, Any]]:
    return [
        {"kind": "thinking", "value": "the user wants " + PROMPT, "id": "t1"},
        {"value": text, "supportThemeIcons": False, "supportHtml": False},
    ]


def turn(index: int, req: dict[str, Any], res: dict[str, Any] | None, completed_ms: int) -> str:
    """The lines one prompt adds: the request, its streamed answer, then its result and state."""
    text = push(["requests"], [req])
    text += push(["requests", index, "response"], answer_parts()[:1])
    text += push(["requests", index, "response"], answer_parts()[1:])
    if res is not None:
        text += set_(["requests", index, "result"], res)
    text += set_(["requests", index, "modelState"], {"value": 1, "completedAt": completed_ms})
    return text


def write(path: Path, text: str, mode: str = "a") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as f:
        f.write(text)
    return path
