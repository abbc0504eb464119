"""`DxClient.push` against a real HTTP server on loopback: every outcome of the retry table.

README.md, "Days, pushes and retries" (Retries): the push is not known to be idempotent, so only
outcomes that prove DX did not process the request may be retried by themselves.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import socket
import time
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dx_lsp_telemetry.push.config import blocking_problems
from dx_lsp_telemetry.push.dx import (
    ANSWER_CAP,
    MAX_RETRY_AFTER,
    PUSH_PATH,
    DxClient,
    Outcome,
    PushResult,
)
from dx_lsp_telemetry.settings.instance_url import instance_url_problem
from dx_lsp_telemetry.settings.settings import Settings
from tests.fake_dx import FakeDx, Script
from tests.harness import TEST_TOKEN, date_ago

#: Generous for loopback, short enough that a hang fails fast.
QUICK = httpx.Timeout(5.0)


def a_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "email": "dev@example.com",
        "date": date_ago(2),
        "is_active": True,
        "tool": "acme-ai",
        "metrics": {"events": 3},
        "input_tokens": 1200,
        "output_tokens": 340,
        "cache_write_tokens": 0,
        "cache_read_tokens": 5000,
        "spend_cents": 7,
    }
    record.update(changes)
    return record


@pytest.fixture
def client(dx: FakeDx) -> Iterator[DxClient]:
    with DxClient(dx.url, TEST_TOKEN, timeout=QUICK) as c:
        yield c


def push_once(dx: FakeDx, *scripts: Script, record: dict[str, Any] | None = None) -> PushResult:
    dx.then(*scripts)
    with DxClient(dx.url, TEST_TOKEN, timeout=QUICK) as c:
        return c.push(record or a_record())


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- 200 -------------------------------------------------------------------------------------


def test_200_ok_true_is_success_stores_the_record_and_keeps_the_returned_id(
    dx: FakeDx, client: DxClient
) -> None:
    result = client.push(a_record())
    assert result.outcome is Outcome.SUCCESS
    assert result.error is None
    assert result.dx_id and len(result.dx_id) == 36  # the fake answers a uuid4
    assert dx.stored == [a_record()]


@pytest.mark.parametrize(
    ("body", "expected_id"),
    [
        ({"ok": True, "id": "rec_42"}, "rec_42"),
        ({"ok": True, "id": 42}, "42"),
        ({"ok": True, "data": {"id": "nested-7"}}, "nested-7"),
        ({"ok": True, "record": {"id": "rec-9"}}, "rec-9"),
        ({"ok": True}, None),
    ],
)
def test_200_ok_true_keeps_the_id_wherever_dx_puts_it(
    dx: FakeDx, body: dict[str, Any], expected_id: str | None
) -> None:
    result = push_once(dx, Script(kind="status", status=200, body=body))
    assert result == PushResult(Outcome.SUCCESS, dx_id=expected_id)


def test_200_ok_false_is_rejected_with_dx_error_and_message(dx: FakeDx) -> None:
    body = {"ok": False, "error": "invalid_arguments", "message": "unknown tool acme-ai"}
    result = push_once(dx, Script(kind="ok_false", body=body))
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None
    assert "invalid_arguments" in result.error
    assert "unknown tool acme-ai" in result.error
    assert dx.stored == []


def test_200_with_an_unparseable_body_is_ambiguous(dx: FakeDx) -> None:
    result = push_once(dx, Script(kind="garbage"))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and "200" in result.error
    assert result.dx_id is None


@pytest.mark.parametrize("body", [{"id": "x"}, {"ok": "true"}, {"ok": 1}, [True], "ok"], ids=str)
def test_200_json_without_a_boolean_ok_is_ambiguous(dx: FakeDx, body: Any) -> None:
    result = push_once(dx, Script(kind="status", status=200, body=body))
    assert result.outcome is Outcome.AMBIGUOUS


@pytest.mark.parametrize("status", [201, 202, 204])
def test_other_2xx_answers_are_ambiguous(dx: FakeDx, status: int) -> None:
    result = push_once(dx, Script(kind="status", status=status, body={"ok": True}))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and str(status) in result.error


# -- the request -----------------------------------------------------------------------------


def test_request_is_a_json_post_with_the_bearer_token_to_the_push_path(
    dx: FakeDx, client: DxClient
) -> None:
    client.push(a_record())
    (received,) = dx.requests
    assert received.headers["authorization"] == f"Bearer {TEST_TOKEN}"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["accept"] == "application/json"
    assert received.body == a_record()
    assert received.answered == 200


def test_a_trailing_slash_on_the_instance_url_still_posts_to_the_push_path(dx: FakeDx) -> None:
    with DxClient(dx.url + "/", TEST_TOKEN, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.SUCCESS
    assert dx.stored == [a_record()]


# -- rejected --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_400_and_422_are_rejected_and_keep_dx_error_and_message(dx: FakeDx, status: int) -> None:
    body = {"ok": False, "error": "invalid_arguments", "message": "date is too far in the past"}
    result = push_once(dx, Script(kind="status", status=status, body=body))
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None
    assert f"HTTP {status}" in result.error
    assert "invalid_arguments" in result.error
    assert "date is too far in the past" in result.error


def test_a_record_dx_finds_invalid_is_rejected_with_its_validation_message(
    dx: FakeDx, client: DxClient
) -> None:
    result = client.push(a_record(spend_cents=1.5))
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None
    assert "HTTP 422" in result.error
    assert "spend_cents must be a non-negative integer" in result.error
    assert dx.stored == []


@pytest.mark.parametrize("status", [409, 413])
def test_other_4xx_answers_are_rejected(dx: FakeDx, status: int) -> None:
    result = push_once(dx, Script(kind="status", status=status))
    assert result.outcome is Outcome.REJECTED


def test_a_huge_dx_error_text_is_clipped(dx: FakeDx) -> None:
    body = {"ok": False, "error": "e" * 5000, "message": "m" * 5000}
    result = push_once(dx, Script(kind="status", status=422, body=body))
    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and len(result.error) < 1000


def test_a_token_dx_echoes_is_clipped_only_after_it_is_scrubbed(dx: FakeDx) -> None:
    # the clip at 300 characters falls inside the token: half of it must not survive
    message = "m" * (300 - len(TEST_TOKEN) // 2) + TEST_TOKEN
    body = {"ok": False, "error": "invalid_arguments", "message": message}
    result = push_once(dx, Script(kind="status", status=422, body=body))
    assert result.error is not None
    assert TEST_TOKEN[: len(TEST_TOKEN) // 2] not in result.error


@pytest.mark.parametrize(
    "script",
    [
        Script(
            kind="status",
            status=422,
            body={"ok": False, "error": f"bad token {TEST_TOKEN}", "message": "Bearer other-1"},
        ),
        Script(kind="ok_false", body={"ok": False, "error": f"authorization: bearer {TEST_TOKEN}"}),
        Script(kind="status", status=302, headers={"Location": f"https://x.test/?t={TEST_TOKEN}"}),
    ],
    ids=["422-message", "ok-false-error", "redirect-location"],
)
def test_whatever_dx_says_is_kept_without_the_token_or_any_bearer_value(
    dx: FakeDx, script: Script
) -> None:
    result = push_once(dx, script)
    assert result.error is not None
    assert TEST_TOKEN not in result.error and "other-1" not in result.error, result.error
    assert "[DX token]" in result.error or "[redacted]" in result.error


# -- the answer is read with a cap -----------------------------------------------------------


def test_the_client_asks_for_an_uncompressed_answer(dx: FakeDx, client: DxClient) -> None:
    client.push(a_record())
    assert dx.requests[0].headers["accept-encoding"] == "identity"


def test_a_200_larger_than_the_cap_is_ambiguous_and_not_read_to_its_end(dx: FakeDx) -> None:
    result = push_once(dx, Script(kind="big", size=8 * ANSWER_CAP))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and "1 MiB" in result.error and "may be stored" in result.error


def test_an_error_answer_larger_than_the_cap_keeps_its_class(dx: FakeDx) -> None:
    result = push_once(dx, Script(kind="status", status=422, body=b"x" * (2 * ANSWER_CAP)))
    assert result.outcome is Outcome.REJECTED
    assert result.error and "HTTP 422" in result.error


def test_a_gzip_bomb_is_not_inflated_past_the_cap(dx: FakeDx) -> None:
    # 200 MB of JSON in about 200 kB: decoded whole it would take 200 MB of memory
    bomb = gzip.compress(b'{"ok": true, "pad": "' + b" " * (200 * 1024 * 1024) + b'"}')
    assert len(bomb) < ANSWER_CAP
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    result = push_once(dx, Script(kind="status", status=200, body=bomb, headers=headers))
    assert result.outcome is Outcome.AMBIGUOUS


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_small_compressed_answer_sent_anyway_is_still_read(dx: FakeDx, encoding: str) -> None:
    data = json.dumps({"ok": True, "id": "rec_7"}).encode()
    body = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    result = push_once(dx, Script(kind="status", status=200, body=body, headers=headers))
    assert result == PushResult(Outcome.SUCCESS, dx_id="rec_7")


def test_an_answer_in_an_encoding_not_asked_for_is_unreadable(dx: FakeDx) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "br"}
    result = push_once(dx, Script(kind="status", status=200, body=b"\x8b\x00", headers=headers))
    assert result.outcome is Outcome.AMBIGUOUS


# -- credentials, wrong URL ------------------------------------------------------------------


def test_401_for_a_wrong_token_is_credentials(dx: FakeDx) -> None:
    with DxClient(dx.url, "not-the-token", timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.CREDENTIALS
    assert result.error and "HTTP 401" in result.error and "not_authed" in result.error
    assert "not-the-token" not in result.error
    assert dx.stored == []


def test_403_is_credentials(dx: FakeDx) -> None:
    body = {"ok": False, "error": "forbidden", "message": "token lacks the metrics scope"}
    result = push_once(dx, Script(kind="status", status=403, body=body))
    assert result.outcome is Outcome.CREDENTIALS
    assert result.error and "HTTP 403" in result.error and "metrics scope" in result.error


def test_404_for_a_wrong_instance_url_is_not_found(dx: FakeDx) -> None:
    with DxClient(dx.url + "/not-dx", TEST_TOKEN, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.NOT_FOUND
    assert result.error and "HTTP 404" in result.error
    assert dx.stored == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_is_not_found(dx: FakeDx, status: int) -> None:
    # The redirect points at the real push path: following it would store the record.
    location = dx.url + PUSH_PATH
    result = push_once(dx, Script(kind="status", status=status, headers={"Location": location}))
    assert result.outcome is Outcome.NOT_FOUND
    assert result.error and location in result.error and f"HTTP {status}" in result.error
    assert len(dx.requests) == 1
    assert dx.stored == []


# -- throttled -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_honours_retry_after_in_seconds(dx: FakeDx, status: int) -> None:
    result = push_once(dx, Script(kind="status", status=status, headers={"Retry-After": "120"}))
    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after == 120.0
    assert result.error and f"HTTP {status}" in result.error


@pytest.mark.parametrize("status", [429, 503])
def test_throttled_honours_retry_after_as_an_http_date(dx: FakeDx, status: int) -> None:
    result = push_once(
        dx, Script(kind="status", status=status, headers={"Retry-After": http_date(600)})
    )
    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after is not None
    assert 590.0 <= result.retry_after <= 601.0


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("value", ["86400", "inf", "later"], ids=["seconds", "inf", "date"])
def test_retry_after_is_capped_at_one_hour(dx: FakeDx, status: int, value: str) -> None:
    header = http_date(3 * 86400) if value == "later" else value
    result = push_once(dx, Script(kind="status", status=status, headers={"Retry-After": header}))
    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after == MAX_RETRY_AFTER == 3600.0


@pytest.mark.parametrize("value", ["-30", "past"])
def test_a_retry_after_in_the_past_means_now(dx: FakeDx, value: str) -> None:
    header = http_date(-3600) if value == "past" else value
    result = push_once(dx, Script(kind="status", status=429, headers={"Retry-After": header}))
    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after == 0.0


@pytest.mark.parametrize("value", [None, "soon", "nan", ""])
def test_a_missing_or_unreadable_retry_after_leaves_the_delay_to_the_backoff(
    dx: FakeDx, value: str | None
) -> None:
    headers = {} if value is None else {"Retry-After": value}
    result = push_once(dx, Script(kind="status", status=503, headers=headers))
    assert result.outcome is Outcome.THROTTLED
    assert result.retry_after is None


# -- ambiguous: DX may have stored it --------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_ambiguous(dx: FakeDx, status: int) -> None:
    result = push_once(dx, Script(kind="status", status=status, store=True))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and f"HTTP {status}" in result.error and "may be stored" in result.error
    assert len(dx.stored) == 1  # why it is ambiguous: DX processed it, then failed


def test_a_connection_reset_after_the_request_was_sent_is_ambiguous(dx: FakeDx) -> None:
    result = push_once(dx, Script(kind="reset", store=True))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and "may be stored" in result.error
    assert dx.requests[0].body == a_record()  # DX read the whole request
    assert dx.stored == [a_record()]


def test_an_answer_slower_than_the_timeout_is_ambiguous(dx: FakeDx) -> None:
    dx.then(Script(kind="slow", delay=3.0))
    started = time.monotonic()
    with DxClient(dx.url, TEST_TOKEN, timeout=httpx.Timeout(0.3, connect=5.0)) as c:
        result = c.push(a_record())
    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.error and "Timeout" in result.error and "may be stored" in result.error
    assert elapsed < 2.5  # it gave up at its own timeout, not at DX's answer
    assert dx.requests[0].body == a_record()


# -- never reached DX: safe to retry ---------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound by nobody listening on it: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_connection_refused_is_not_reached(closed_port: int) -> None:
    with DxClient(f"http://127.0.0.1:{closed_port}", TEST_TOKEN, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.NOT_REACHED
    assert result.error and "could not reach DX" in result.error
    assert result.retry_after is None


def test_a_tls_handshake_failure_is_not_reached(dx: FakeDx) -> None:
    """https:// to a server that speaks plain HTTP: the handshake fails, nothing is posted."""
    port = dx.url.rsplit(":", 1)[1]
    with DxClient(f"https://127.0.0.1:{port}", TEST_TOKEN, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.NOT_REACHED
    assert result.error and "could not reach DX" in result.error
    assert dx.requests == [] and dx.stored == []


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A listening port whose accept queue is full, so a new connect never completes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):
            s = socket.socket()
            s.settimeout(0.2)
            fillers.append(s)
            try:
                s.connect(("127.0.0.1", port))
            except socket.timeout:  # TimeoutError itself only from 3.10 on
                break
        else:
            pytest.skip("this kernel never stopped accepting connections")
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


def test_a_connect_timeout_is_not_reached(unanswered_port: int) -> None:
    timeout = httpx.Timeout(5.0, connect=0.3)
    with DxClient(f"http://127.0.0.1:{unanswered_port}", TEST_TOKEN, timeout=timeout) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.NOT_REACHED
    assert result.error and "ConnectTimeout" in result.error


@pytest.mark.parametrize(
    "token", [TEST_TOKEN + "\n", TEST_TOKEN + " ", TEST_TOKEN + "\r\nX-Injected: 1"], ids=repr
)
def test_a_token_that_cannot_travel_in_a_header_is_not_reached_and_never_echoed(
    dx: FakeDx, token: str
) -> None:
    with DxClient(dx.url, token, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.NOT_REACHED
    assert dx.requests == []
    assert result.error is not None
    assert TEST_TOKEN not in result.error


# -- plain http only for loopback ------------------------------------------------------------


def test_a_loopback_http_instance_url_by_name_is_pushed_to(dx: FakeDx) -> None:
    port = dx.url.rsplit(":", 1)[1]
    with DxClient(f"http://localhost:{port}", TEST_TOKEN, timeout=QUICK) as c:
        result = c.push(a_record())
    assert result.outcome is Outcome.SUCCESS
    assert dx.stored == [a_record()]


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.getdx.net",
        "https://acme.getdx.net:8443",
        "http://127.0.0.1:8080",
        "http://127.0.0.7",
        "http://localhost:9999",
        "http://LOCALHOST",
        "http://[::1]:8080",
    ],
)
def test_https_and_loopback_http_instance_urls_are_accepted(url: str) -> None:
    assert instance_url_problem(url) is None
    settings = Settings(email="dev@example.com", tool="acme-ai", instance_url=url)
    assert blocking_problems(settings, TEST_TOKEN) == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://acme.getdx.net", "plain http"),
        ("http://10.0.0.5:8080", "plain http"),
        ("http://192.168.1.1", "plain http"),
        ("http://localhost.example.com", "plain http"),
        ("http://127.0.0.1.nip.io", "plain http"),
        ("ftp://acme.getdx.net", "https://"),
        ("acme.getdx.net", "https://"),
        ("https://", "https://"),
        ("https://user:pw@acme.getdx.net", "credentials"),
        ("https://acme.getdx.net?x=1", "query"),
        ("https://acme.getdx.net#frag", "fragment"),
    ],
)
def test_other_instance_urls_are_a_blocking_problem(url: str, why: str) -> None:
    problem = instance_url_problem(url)
    assert problem is not None and why in problem and "instanceUrl" in problem
    settings = Settings(email="dev@example.com", tool="acme-ai", instance_url=url)
    assert problem in blocking_problems(settings, TEST_TOKEN)


def test_the_client_itself_refuses_plain_http_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="plain http"):
        DxClient("http://acme.getdx.net", TEST_TOKEN)


def test_a_dx_instance_url_without_a_token_is_a_blocking_problem() -> None:
    settings = Settings(email="dev@example.com", tool="acme-ai", instance_url="https://a.getdx.net")
    (problem,) = blocking_problems(settings, None)
    assert "DX_DATA_CLOUD_TOKEN is not set" in problem
    # the local outbox needs no token
    assert blocking_problems(Settings(email="dev@example.com", tool="acme-ai"), None) == []


@pytest.mark.parametrize(
    "token", [TEST_TOKEN + "\n", f" {TEST_TOKEN}", "tok en", "tök", "a\u200bb"], ids=repr
)
def test_a_token_with_whitespace_or_non_ascii_is_a_blocking_problem_that_hides_it(
    token: str,
) -> None:
    settings = Settings(email="dev@example.com", tool="acme-ai", instance_url="https://a.getdx.net")
    (problem,) = blocking_problems(settings, token)
    assert "DX_DATA_CLOUD_TOKEN" in problem
    assert token.strip() not in problem
