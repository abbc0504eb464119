"""`schedule`: each email's stable push slot, and the decisions the leader's loop follows.

Plain functions and a plain object on an explicit clock; the sidecar honouring them over real
stdio is in `test_push_slots.py`, the fleet they make in `benchmarks/fleet.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from dx_lsp_telemetry.push.schedule import PushSchedule, Step, next_slot, slot_offset
from dx_lsp_telemetry.settings.settings import Settings, parse_settings

NOW = datetime(2025, 3, 13, 15, 7, 30, tzinfo=timezone.utc)
HOUR = 3600


def settings(email: str = "dev@example.com", period: int = HOUR) -> Settings:
    parsed = parse_settings(
        {"email": email, "tool": "acme-ai", "flush": {"delaySeconds": period}}, env={}
    )
    assert parsed.problems == []
    return parsed.settings


def backoff(stops: int) -> float:
    return 60.0 * stops


def slot_of(email: str, period: int = HOUR) -> float:
    """Seconds into the period (from the epoch) of `email`'s slot."""
    return slot_offset(email, period)


# -- the slot ----------------------------------------------------------------------------------


def test_the_default_period_is_an_hour() -> None:
    assert parse_settings({}, env={}).settings.flush_delay_seconds == HOUR


@pytest.mark.parametrize("period", [1, 60, 600, HOUR, 86_400, 5000])
def test_the_next_slot_is_within_one_period_at_the_email_offset(period: int) -> None:
    for minutes in range(0, 3 * 24 * 60, 37):
        moment = NOW + timedelta(minutes=minutes, microseconds=minutes * 997)
        slot = next_slot(moment, "dev@example.com", period)
        assert moment <= slot < moment + timedelta(seconds=period)
        phase = slot.timestamp() % period
        assert phase == pytest.approx(slot_of("dev@example.com", period), abs=1e-3)


def test_a_slot_instant_is_its_own_next_slot_and_the_next_one_is_a_period_later() -> None:
    slot = next_slot(NOW, "dev@example.com", HOUR)
    assert next_slot(slot, "dev@example.com", HOUR) == slot
    later = next_slot(slot + timedelta(microseconds=1), "dev@example.com", HOUR)
    assert later - slot == pytest.approx(timedelta(hours=1), abs=timedelta(milliseconds=1))


def test_the_slot_is_the_same_for_every_spelling_of_the_email_and_differs_between_emails() -> None:
    same = {slot_of(e) for e in ("dev@example.com", "Dev@Example.COM", "  dev@example.com ")}
    assert len(same) == 1
    assert slot_of("dev@example.com") != slot_of("dev2@example.com")


def test_a_period_of_0_pushes_at_once() -> None:
    assert next_slot(NOW, "dev@example.com", 0) == NOW


def test_a_fleet_of_emails_spreads_evenly_over_the_period() -> None:
    """10,000 emails over an hour: every minute holds about 1/60 of them, none twice that."""
    minutes = Counter(int(slot_of(f"dev{n:05d}@fleet.example") // 60) for n in range(10_000))
    assert sorted(minutes) == list(range(60))
    mean = 10_000 / 60
    assert max(minutes.values()) < 1.3 * mean
    assert min(minutes.values()) > 0.7 * mean


# -- the schedule ------------------------------------------------------------------------------


def test_start_up_plans_a_cycle_at_the_slot_and_runs_it_then() -> None:
    s = settings()
    schedule = PushSchedule(NOW, s, backoff=backoff)
    slot = next_slot(NOW, s.email, HOUR)
    schedule.note_retry(None, NOW, s)
    assert schedule.wake(s) == slot
    just_before = slot - timedelta(milliseconds=1)
    assert schedule.woke(just_before, s, replan=False, cycle_soon=False) is Step.WAIT
    assert schedule.woke(slot, s, replan=False, cycle_soon=False) is Step.CYCLE
    schedule.cycled(stopped_early=False)
    assert schedule.wake(s) == schedule.completion  # nothing else is due


def test_a_completed_day_is_pushed_at_the_first_slot_after_it_completes() -> None:
    s = settings()
    schedule = PushSchedule(NOW, s, backoff=backoff)
    schedule.woke(next_slot(NOW, s.email, HOUR), s, replan=False, cycle_soon=False)
    schedule.cycled(stopped_early=False)
    completion = datetime(2025, 3, 14, 0, 10, tzinfo=timezone.utc)
    assert schedule.wake(s) == completion
    assert schedule.woke(completion, s, replan=False, cycle_soon=False) is Step.PRUNE
    slot = next_slot(completion, s.email, HOUR)
    assert schedule.wake(s) == slot
    assert schedule.woke(slot, s, replan=False, cycle_soon=False) is Step.CYCLE


def test_requests_for_a_cycle_before_the_slot_do_not_bring_it_earlier() -> None:
    """An event recorded while a complete day waits asks for a cycle (and does so again and
    again while the user works): a random delay drawn each time kept the earliest draw, so an
    active machine pushed at once. Every request lands on the same slot."""
    s = settings()
    schedule = PushSchedule(NOW, s, backoff=backoff)
    slot = next_slot(NOW, s.email, HOUR)
    moment = NOW
    while moment < slot - timedelta(seconds=30):
        assert schedule.woke(moment, s, replan=True, cycle_soon=True) is Step.WAIT
        assert schedule.wake(s) == slot
        moment += timedelta(seconds=30)


def test_a_retry_time_wakes_the_schedule_and_an_earlier_cycle_waits_for_it() -> None:
    s = settings()
    schedule = PushSchedule(NOW, s, backoff=backoff)
    slot = next_slot(NOW, s.email, HOUR)
    retry = slot + timedelta(minutes=5)
    schedule.note_retry(retry, NOW, s)
    # a background cycle before retryAt would find nothing due: it is not run
    assert schedule.wake(s) == retry
    assert schedule.woke(slot, s, replan=False, cycle_soon=False) is Step.WAIT
    assert schedule.woke(retry, s, replan=False, cycle_soon=False) is Step.CYCLE
    assert schedule.tried_until == retry


def test_a_retry_time_that_passed_unseen_waits_for_the_slot() -> None:
    """After a sleep or a restart, every machine's overdue retry would fire at once."""
    s = settings()
    schedule = PushSchedule(NOW, s, backoff=backoff)
    schedule.note_retry(NOW - timedelta(hours=30), NOW, s)
    slot = next_slot(NOW, s.email, HOUR)
    assert schedule.wake(s) == slot
    assert schedule.woke(NOW, s, replan=False, cycle_soon=False) is Step.WAIT
    assert schedule.woke(slot, s, replan=False, cycle_soon=False) is Step.CYCLE


def test_a_retry_time_already_tried_is_ignored() -> None:
    s = settings(period=0)
    schedule = PushSchedule(NOW, s, backoff=backoff)
    assert schedule.woke(NOW, s, replan=False, cycle_soon=False) is Step.CYCLE
    schedule.cycled(stopped_early=False)
    schedule.note_retry(NOW - timedelta(seconds=1), NOW + timedelta(seconds=5), s)
    assert schedule.wake(s) == schedule.completion


def test_a_cycle_that_stops_early_backs_off_and_calms_new_requests() -> None:
    s = settings(period=0)
    schedule = PushSchedule(NOW, s, backoff=backoff)
    for stops in (1, 2, 3):
        moment = schedule.wake(s)
        assert moment is not None
        assert schedule.woke(moment, s, replan=False, cycle_soon=False) is Step.CYCLE
        schedule.cycled(stopped_early=True)
        assert schedule.cycle_at == moment + timedelta(seconds=60 * stops)
        assert schedule.backing_off(moment + timedelta(seconds=1))
    moment = schedule.wake(s)
    assert moment is not None
    schedule.woke(moment, s, replan=False, cycle_soon=False)
    schedule.cycled(stopped_early=False)
    assert not schedule.backing_off(moment)


def test_background_pushes_off_wake_only_when_asked() -> None:
    s = replace(settings(), flush_enabled=False)
    assert PushSchedule(NOW, s, backoff=backoff).wake(s) is None
