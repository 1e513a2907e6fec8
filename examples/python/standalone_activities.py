"""Standalone activities: activities started, watched and managed by a client, no workflow.

A client starts `resize_image` on its own with `client.start_activity` (an id, a task queue,
timeouts and a retry policy): the server keeps it durably, hands it to any worker polling the
queue, retries its failures, and keeps the outcome. The script then

1. waits for the result through the handle (the first attempt fails, the retry succeeds) and
   describes the closed execution (status, attempts);
2. starts the same activity id again with the `FAIL` conflict policy while one is running, and
   is refused with `ActivityAlreadyStartedError`;
3. cancels a long, heartbeating activity: the worker sees `CancelledError` at its next
   heartbeat, and the outcome is a cancellation;
4. lists and counts the activities it started with a visibility query (`GROUP BY
   ExecutionStatus`).

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/standalone_activities.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import ActivityExecutionStatus, ActivityFailureError, Client
from temporalio.common import ActivityIDConflictPolicy, RetryPolicy
from temporalio.exceptions import ActivityAlreadyStartedError, ApplicationError, CancelledError
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

TRANSCODE_STARTED: asyncio.Event | None = None


@activity.defn
async def resize_image(name: str) -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("image store busy, try again")
    return f"{name} resized on attempt {activity.info().attempt}"


@activity.defn
async def transcode_video(name: str) -> str:
    assert TRANSCODE_STARTED is not None
    TRANSCODE_STARTED.set()
    frames = 0
    try:
        while True:  # only a cancellation ends it
            await asyncio.sleep(0.1)
            frames += 1
            activity.heartbeat(frames)  # brings the cancellation request in
    except asyncio.CancelledError:
        print(f"transcode_video: cancelled after {frames} frames")
        raise


async def main() -> None:
    global TRANSCODE_STARTED
    TRANSCODE_STARTED = asyncio.Event()
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"standalone-{uuid.uuid4()}"
    prefix = f"job-{uuid.uuid4()}"

    async with Worker(client, task_queue=task_queue, activities=[resize_image, transcode_video]):
        # 1. Start, wait for the result, describe.
        handle = await client.start_activity(
            resize_image,
            "cat.png",
            id=f"{prefix}-resize",
            task_queue=task_queue,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        result = await handle.result()
        print(f"result: {result}")
        assert result == "cat.png resized on attempt 2", result
        desc = await handle.describe()
        print(f"described: status {desc.status.name}, attempt {desc.attempt}")
        assert desc.status == ActivityExecutionStatus.COMPLETED

        # 2. One running activity per id: a second start with FAIL is refused.
        long_id = f"{prefix}-transcode"
        transcode = await client.start_activity(
            transcode_video,
            "talk.mp4",
            id=long_id,
            task_queue=task_queue,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=5),
        )
        try:
            await client.start_activity(
                transcode_video,
                "talk.mp4",
                id=long_id,
                task_queue=task_queue,
                start_to_close_timeout=timedelta(seconds=60),
                id_conflict_policy=ActivityIDConflictPolicy.FAIL,
            )
            raise AssertionError("a second start of a running activity id was accepted")
        except ActivityAlreadyStartedError:
            print("second start refused: activity already started")

        # 3. Cancel the running one; the worker sees it at its next heartbeat.
        await TRANSCODE_STARTED.wait()
        await transcode.cancel(reason="user gave up")
        try:
            await transcode.result()
            raise AssertionError("a cancelled activity returned a result")
        except ActivityFailureError as err:
            assert isinstance(err.cause, CancelledError), err.cause
        desc = await transcode.describe()
        print(f"transcode status {desc.status.name}")
        assert desc.status == ActivityExecutionStatus.CANCELED

    # 4. Visibility: list and count what this script started.
    query = f'ActivityId STARTS_WITH "{prefix}"'
    listed = sorted([f"{a.activity_id.removeprefix(prefix + '-')}:{a.status.name}"
                     async for a in client.list_activities(query)])
    print(f"listed: {listed}")
    assert listed == ["resize:COMPLETED", "transcode:CANCELED"], listed
    count = await client.count_activities(f"{query} GROUP BY ExecutionStatus")
    groups = sorted((g.group_values[0], g.count) for g in count.groups)
    print(f"count {count.count}, by status {groups}")
    assert count.count == 2 and groups == [("Canceled", 1), ("Completed", 1)], groups
    print("standalone_activities: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"standalone_activities: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
