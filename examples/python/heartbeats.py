"""Activity heartbeats: progress details, resuming after a retry, and heartbeat timeouts.

  1. `process_batch` works through 10 items and heartbeats the index of each finished item.
     Its first attempt fails after item 4 (say, the database connection dropped). The server
     keeps the last heartbeat details, retries the activity, and the second attempt reads them
     from `activity.info().heartbeat_details` and resumes at item 5 instead of starting over.
  2. `stuck_job` heartbeats once and then hangs (as a stuck or crashed worker would), with a
     1 s heartbeat timeout and retries disabled: the server notices the missing heartbeats and
     times the activity out; the workflow gets an `ActivityError` whose cause is a
     `TimeoutError` of type HEARTBEAT, carrying the last heartbeat details.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/heartbeats.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

# Which items each attempt processed (activities run in this process, so main() can read it).
PROCESSED: dict[int, list[int]] = {}


@activity.defn
async def process_batch(total: int) -> str:
    info = activity.info()
    # Heartbeat details of the previous attempt, if any: the index of the last finished item.
    start = info.heartbeat_details[0] + 1 if info.heartbeat_details else 0
    done = PROCESSED.setdefault(info.attempt, [])
    for item in range(start, total):
        await asyncio.sleep(0.05)  # "work" on the item
        done.append(item)
        activity.heartbeat(item)  # record progress (the SDK throttles what it sends)
        if info.attempt == 1 and item == 4:
            # The failure report carries the latest heartbeat details to the server.
            raise RuntimeError("lost the database connection after item 4")
    return f"attempt {info.attempt} started at item {start} and finished the batch"


@activity.defn
async def stuck_job() -> None:
    activity.heartbeat("connected")
    await asyncio.sleep(60)  # hangs without heartbeating; the heartbeat timeout fires after 1s


@workflow.defn
class BatchWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        outcomes = [
            await workflow.execute_activity(
                process_batch,
                10,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=200), maximum_attempts=3
                ),
            )
        ]
        try:
            await workflow.execute_activity(
                stuck_job,
                start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=1),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
            outcomes.append("stuck_job finished")
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, TimeoutError) and cause.type == TimeoutType.HEARTBEAT:
                outcomes.append(
                    f"stuck_job heartbeat timeout, last details {list(cause.last_heartbeat_details)}"
                )
            else:
                outcomes.append(f"stuck_job failed unexpectedly: {cause!r}")
        return outcomes


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"heartbeats-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BatchWorkflow],
        activities=[process_batch, stuck_job],
    ):
        outcomes = await client.execute_workflow(
            BatchWorkflow.run, id=f"batch-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
    for attempt, items in sorted(PROCESSED.items()):
        print(f"process_batch attempt {attempt} processed items {items}")
    for outcome in outcomes:
        print(outcome)
    assert PROCESSED == {1: [0, 1, 2, 3, 4], 2: [5, 6, 7, 8, 9]}, PROCESSED
    assert outcomes == [
        "attempt 2 started at item 5 and finished the batch",
        "stuck_job heartbeat timeout, last details ['connected']",
    ], outcomes
    print("heartbeats: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"heartbeats: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
