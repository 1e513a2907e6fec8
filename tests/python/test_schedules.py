"""Schedules through the official Python SDK client: create (incl. duplicate), describe with
the canonical spec, trigger, backfill, pause and unpause, update, list with a query,
matching times via describe, the previous result handed to the next action, delete."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError
from temporalio.worker import Worker

from schedule_workflows import RunningTotal


async def wait_for(predicate, what: str, timeout_s: float = 20):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_schedule_lifecycle(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    sched_id = f"py-{unique}"
    action = ScheduleActionStartWorkflow(RunningTotal.run, 5, id=f"total-{unique}", task_queue=tq)
    schedule = Schedule(
        action=action,
        spec=ScheduleSpec(cron_expressions=["0 12 * * MON-FRI"], time_zone_name="Europe/Berlin"),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL),
        state=ScheduleState(paused=True, note="created paused"),
    )
    async with Worker(client, task_queue=tq, workflows=[RunningTotal]):
        handle = await client.create_schedule(sched_id, schedule, memo={"team": "billing"})
        with pytest.raises(ScheduleAlreadyRunningError):
            await client.create_schedule(sched_id, schedule)

        desc = await handle.describe()
        assert desc.schedule.state.paused
        assert desc.schedule.state.note == "created paused"
        assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL
        # The cron string comes back compiled into a calendar: noon on Monday to Friday.
        assert list(desc.schedule.spec.cron_expressions) == []
        [cal] = desc.schedule.spec.calendars
        assert list(cal.hour) == [ScheduleRange(12)]
        assert list(cal.day_of_week) == [ScheduleRange(1, 5)]
        assert desc.schedule.spec.time_zone_name == "Europe/Berlin"
        assert await desc.memo_value("team") == "billing"
        # Future times are weekdays at 12:00 Berlin time.
        for t in desc.info.next_action_times[:5]:
            berlin = t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
            assert (berlin.hour, berlin.minute, berlin.weekday() < 5) == (12, 0, True)

        # Trigger twice: the result of one run is the input of the next (last completion result).
        await handle.trigger()
        first = await wait_for(
            lambda: _action_count_at_least(handle, 1), "the first triggered action"
        )
        first_id = first.info.recent_actions[0].action.workflow_id
        assert await client.get_workflow_handle(first_id).result() == 5

        # Backfill one week of weekdays in the past: 5 times, in order.
        await handle.backfill(
            ScheduleBackfill(
                start_at=datetime(2026, 3, 2, tzinfo=timezone.utc),
                end_at=datetime(2026, 3, 8, 23, 59, tzinfo=timezone.utc),
                overlap=ScheduleOverlapPolicy.BUFFER_ALL,
            )
        )
        done = await wait_for(lambda: _action_count_at_least(handle, 6), "five backfilled actions")
        ids = [a.action.workflow_id for a in done.info.recent_actions]
        assert f"total-{unique}-2026-03-02T11:00:00Z" in ids  # 12:00 in Berlin is 11:00 UTC in March
        last = await client.get_workflow_handle(ids[-1]).result()
        assert last == 30, "each run added 5 to the previous result"

        await handle.unpause(note="go")
        desc = await handle.describe()
        assert not desc.schedule.state.paused and desc.schedule.state.note == "go"
        await handle.pause(note="stop")
        assert (await handle.describe()).schedule.state.paused

        def every_minute(input: ScheduleUpdateInput) -> ScheduleUpdate:
            s = input.description.schedule
            s.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(minutes=1))])
            return ScheduleUpdate(schedule=s)

        await handle.update(every_minute)
        desc = await handle.describe()
        assert list(desc.schedule.spec.intervals) == [ScheduleIntervalSpec(every=timedelta(minutes=1))]
        times = desc.info.next_action_times
        assert all((b - a) == timedelta(minutes=1) for a, b in zip(times, times[1:]))

        listed = [s async for s in await client.list_schedules(query="TemporalSchedulePaused = true")]
        assert sched_id in [s.id for s in listed]
        entry = next(s for s in listed if s.id == sched_id)
        assert entry.schedule.state.paused

        await handle.delete()
        with pytest.raises(RPCError):
            await handle.describe()


async def _action_count_at_least(handle, n: int):
    desc = await handle.describe()
    return desc if desc.info.num_actions >= n else None


async def test_calendar_spec_and_bad_input(client: Client, unique: str) -> None:
    calendar = ScheduleCalendarSpec(
        hour=[ScheduleRange(9)], day_of_week=[ScheduleRange(0)], comment="Sunday 9:00"
    )
    handle = await client.create_schedule(
        f"cal-{unique}",
        Schedule(
            action=ScheduleActionStartWorkflow("Anything", id=f"cal-{unique}", task_queue="none"),
            spec=ScheduleSpec(calendars=[calendar], time_zone_name="America/New_York"),
            state=ScheduleState(paused=True),
        ),
    )
    desc = await handle.describe()
    for t in desc.info.next_action_times:
        local = t.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        assert (local.weekday(), local.hour, local.minute) == (6, 9, 0)
    await handle.delete()

    with pytest.raises(RPCError) as err:
        await client.create_schedule(
            f"bad-{unique}",
            Schedule(
                action=ScheduleActionStartWorkflow("Anything", id="x", task_queue="none"),
                spec=ScheduleSpec(cron_expressions=["61 * * * *"]),
            ),
        )
    assert "INVALID_ARGUMENT" in str(err.value.status) or err.value.status.name == "INVALID_ARGUMENT"
