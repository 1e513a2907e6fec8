"""Schedules: the server starts workflows on a schedule, managed entirely from client code.

The script creates an hourly schedule that starts `ReportWorkflow`, then goes through the
schedule API: describe it, find it in the schedule list, update its action (a new workflow
argument), pause it, trigger one run right away (paused schedules can still be triggered), backfill
two past hourly slots, and delete it. The triggered and backfilled runs are real workflow
executions, picked up by this script's worker.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/schedules.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import datetime, timedelta, timezone

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class ReportWorkflow:
    @workflow.run
    async def run(self, title: str) -> str:
        return f"{title} generated"


async def poll(fetch, done, what: str, timeout_s: float = 20):
    """Calls `fetch()` until `done(value)` holds, and returns the value."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await fetch()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value: {value!r}")
        await asyncio.sleep(0.2)


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"schedules-{uuid.uuid4().hex[:8]}"
    schedule_id = f"hourly-report-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[ReportWorkflow]):
        # Create: every hour, start ReportWorkflow (its id gets the scheduled time appended).
        handle = await client.create_schedule(
            schedule_id,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    ReportWorkflow.run,
                    "hourly report",
                    id=f"report-{schedule_id}",
                    task_queue=task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(note="created by schedules.py"),
            ),
        )
        print(f"created schedule {schedule_id}")

        # Describe.
        desc = await handle.describe()
        next_runs = ", ".join(t.strftime("%H:%M") for t in desc.info.next_action_times[:3])
        print(f"describe: every {desc.schedule.spec.intervals[0].every}, next runs at {next_runs} UTC")
        assert desc.schedule.spec.intervals[0].every == timedelta(hours=1)
        assert not desc.schedule.state.paused

        # List (visibility may lag a little behind the create).
        async def listed_ids() -> list[str]:
            return [s.id async for s in await client.list_schedules()]

        await poll(listed_ids, lambda ids: schedule_id in ids, "the schedule in the list")
        print("list: the schedule is listed")

        # Update: the update callback gets the current description and returns the new schedule.
        def new_title(input: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = input.description.schedule
            assert isinstance(schedule.action, ScheduleActionStartWorkflow)
            schedule.action.args = ["hourly report v2"]
            return ScheduleUpdate(schedule=schedule)

        await handle.update(new_title)
        desc = await handle.describe()
        assert isinstance(desc.schedule.action, ScheduleActionStartWorkflow)
        # Described actions carry their arguments as raw payloads; decode them to read them.
        args = await client.data_converter.decode(list(desc.schedule.action.args))
        print(f"update: the action's argument is now {args}")
        assert args == ["hourly report v2"], args

        # Pause: no more scheduled runs until unpaused.
        await handle.pause(note="paused by schedules.py")
        desc = await handle.describe()
        print(f"pause: paused={desc.schedule.state.paused}, note={desc.schedule.state.note!r}")
        assert desc.schedule.state.paused

        # Trigger: run the action once, now.
        await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        # Backfill: run the action for the scheduled times in a past window (two hourly slots).
        this_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        await handle.backfill(
            ScheduleBackfill(
                start_at=this_hour - timedelta(hours=2, minutes=30),
                end_at=this_hour - timedelta(minutes=30),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL,
            )
        )
        desc = await poll(
            handle.describe, lambda d: d.info.num_actions >= 3, "the triggered and backfilled runs"
        )
        print(f"trigger + backfill: {desc.info.num_actions} actions taken")
        assert desc.info.num_actions == 3, desc.info.num_actions
        results = []
        for action in desc.info.recent_actions:
            run = client.get_workflow_handle(action.action.workflow_id)
            results.append(await run.result())
            print(f"  {action.action.workflow_id} (scheduled {action.scheduled_at:%H:%M}) -> "
                  f"{results[-1]!r}")
        assert results == ["hourly report v2 generated"] * 3, results

        # Delete: the schedule is gone (the workflows it started are not affected).
        await handle.delete()
        try:
            await handle.describe()
            raise AssertionError("describe after delete should fail")
        except RPCError as err:
            print(f"delete: describe now fails with {err.status.name}")
            assert err.status == RPCStatusCode.NOT_FOUND, err.status
    print("schedules: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"schedules: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
