"""Durable timers: `asyncio.sleep` and `workflow.wait_condition(..., timeout=...)` in workflows.

In workflow code `asyncio.sleep` is a durable timer kept by the server (it survives worker
restarts), and `workflow.wait_condition` with a timeout waits for a condition or a timer,
whichever comes first. `ReminderWorkflow`
  1. sleeps 1 s,
  2. waits up to 1 s for an approval signal that does not come (the wait times out),
  3. waits up to 30 s for an approval signal that the script sends (the condition wins).
The history shows the timers the server ran: TIMER_STARTED / TIMER_FIRED / TIMER_CANCELED.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/timers.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import traceback
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class ReminderWorkflow:
    def __init__(self) -> None:
        self.approved = False
        self.phase = "starting"

    @workflow.run
    async def run(self) -> list[str]:
        log = []
        start = workflow.now()  # deterministic workflow time

        self.phase = "sleeping"
        await asyncio.sleep(1)  # a durable timer
        log.append(f"slept {(workflow.now() - start).total_seconds():.0f}s")

        self.phase = "first wait"
        try:
            await workflow.wait_condition(lambda: self.approved, timeout=timedelta(seconds=1))
            log.append("approved during the first wait (unexpected)")
        except asyncio.TimeoutError:
            log.append("no approval within 1s")

        self.phase = "second wait"
        await workflow.wait_condition(lambda: self.approved, timeout=timedelta(seconds=30))
        log.append("approved during the second wait")
        return log

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.query
    def current_phase(self) -> str:
        return self.phase


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"timers-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[ReminderWorkflow]):
        started = time.monotonic()
        handle = await client.start_workflow(
            ReminderWorkflow.run, id=f"reminder-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        # Approve only once the workflow is in its second wait.
        for _ in range(100):
            if await handle.query(ReminderWorkflow.current_phase) == "second wait":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the workflow never reached its second wait")
        await handle.signal(ReminderWorkflow.approve)
        log = await handle.result()
        elapsed = time.monotonic() - started
        for line in log:
            print(line)
        print(f"took {elapsed:.1f}s of wall-clock time")
        assert log == [
            "slept 1s",
            "no approval within 1s",
            "approved during the second wait",
        ], log
        assert elapsed >= 2.0, f"two 1s timers should take at least 2s, took {elapsed:.2f}s"

        history = await handle.fetch_history()
        timer_events = [
            EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
            for e in history.events
            if "TIMER" in EventType.Name(e.event_type)
        ]
        print(f"timer events: {timer_events}")
        assert timer_events == [
            "TIMER_STARTED", "TIMER_FIRED",  # asyncio.sleep(1)
            "TIMER_STARTED", "TIMER_FIRED",  # first wait_condition timed out
            "TIMER_STARTED", "TIMER_CANCELED",  # second wait_condition satisfied first
        ], timer_events
    print("timers: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"timers: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
