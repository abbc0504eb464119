"""End to end: a real sidecar over stdio pushes to a real HTTP server that plays DX."""

from __future__ import annotations

from pathlib import Path

from tests.fake_dx import FakeDx
from tests.harness import BASE_SETTINGS, date_ago, days_ago, sidecar, state_of, until, until_async


async def test_a_complete_day_is_pushed_once_with_exact_totals(home: Path, dx: FakeDx) -> None:
    settings = {
        **BASE_SETTINGS,
        "instanceUrl": dx.url,
        "flush": {"enabled": False, "delaySeconds": 0},
    }
    async with sidecar(home, settings) as client:
        await client.record(
            event_id="a",
            timestamp=days_ago(2, 9),
            input_tokens=100,
            output_tokens=5,
            spend_cents=0.25,
        )
        await client.record(
            event_id="b", timestamp=days_ago(2, 10), cache_read_tokens=7, spend_cents=0.25
        )
        await client.record(event_id="c", timestamp=days_ago(0, 0), input_tokens=1)
        result = await client.command("dxTelemetry.flushNow")
        assert result == {
            "pushed": [{"date": date_ago(2), "tool": "acme-ai", "destination": "dx"}],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
        assert dx.stored == [
            {
                "email": "dev@example.com",
                "date": date_ago(2),
                "is_active": True,
                "tool": "acme-ai",
                "metrics": {"events": 2},
                "input_tokens": 100,
                "output_tokens": 5,
                "cache_write_tokens": 0,
                "cache_read_tokens": 7,
                "spend_cents": 1,
            }
        ]
        again = await client.command("dxTelemetry.flushNow")
        assert again == {
            "pushed": [],
            "failed": [],
            "pending": [],
            "unconfirmed": [],
            "expired": [],
        }
        status = await client.status()
        assert state_of(status, date_ago(2)) == "pushed"
        await until(
            lambda: client.statuses and state_of(client.statuses[-1], date_ago(2)) == "pushed"
        )
    assert len(dx.requests) == 1


async def test_an_event_for_a_complete_day_recorded_after_start_up_is_pushed_by_itself(
    home: Path, dx: FakeDx
) -> None:
    settings = {**BASE_SETTINGS, "instanceUrl": dx.url}
    async with sidecar(home, settings) as client:
        await until(lambda: client.statuses and client.statuses[-1]["leader"], what="leadership")
        await client.record(event_id="late-backfill", timestamp=days_ago(3), input_tokens=9)
        await until(lambda: dx.stored, what="the background push")

        async def pushed() -> bool:  # DX stores it before the journal says so
            return state_of(await client.status(), date_ago(3)) == "pushed"

        await until_async(pushed, what="the day's state to become pushed")
    assert [(r["date"], r["input_tokens"]) for r in dx.stored] == [(date_ago(3), 9)]
