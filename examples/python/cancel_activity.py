"""Cancelling an activity from its workflow.

`DownloadWorkflow` starts a long, heartbeating `download` activity, waits for a "cancel-download"
signal, then cancels the activity's handle. The server records the cancel request and passes it
to the worker in the response to the activity's next heartbeat; the SDK raises
`asyncio.CancelledError` inside the activity, which cleans up and re-raises. Because the
activity was started with `WAIT_CANCELLATION_COMPLETED`, the workflow waits until the activity
has acknowledged the cancellation, then sees an `ActivityError` caused by `CancelledError`.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/cancel_activity.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.worker import Worker
from temporalio.workflow import ActivityCancellationType

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

# What the activity did, for main() to print and check (activities run in this process).
ACTIVITY_LOG: list[str] = []
ACTIVITY_STARTED: asyncio.Event | None = None


@activity.defn
async def download(url: str) -> str:
    assert ACTIVITY_STARTED is not None
    ACTIVITY_STARTED.set()
    chunks = 0
    try:
        while True:  # "downloads" forever; only cancellation ends it
            await asyncio.sleep(0.1)
            chunks += 1
            # Heartbeats carry progress out and bring cancellation requests in.
            activity.heartbeat(chunks)
    except asyncio.CancelledError:
        ACTIVITY_LOG.append(f"cancelled after {chunks} chunks; removed the partial file")
        raise  # re-raise so the activity is reported as cancelled


@workflow.defn
class DownloadWorkflow:
    def __init__(self) -> None:
        self.cancel_requested = False

    @workflow.run
    async def run(self, url: str) -> str:
        handle = workflow.start_activity(
            download,
            url,
            start_to_close_timeout=timedelta(seconds=60),
            heartbeat_timeout=timedelta(seconds=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.wait_condition(lambda: self.cancel_requested)
        handle.cancel()
        try:
            await handle
            return "download finished (unexpected)"
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return "download cancelled"
            raise

    @workflow.signal(name="cancel-download")
    def cancel_download(self) -> None:
        self.cancel_requested = True


async def main() -> None:
    global ACTIVITY_STARTED
    ACTIVITY_STARTED = asyncio.Event()
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"cancel-activity-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client, task_queue=task_queue, workflows=[DownloadWorkflow], activities=[download]
    ):
        handle = await client.start_workflow(
            DownloadWorkflow.run,
            "https://example.com/big.iso",
            id=f"download-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        await asyncio.wait_for(ACTIVITY_STARTED.wait(), timeout=10)
        await asyncio.sleep(0.5)  # let it download (and heartbeat) a little
        print("activity is running; signalling the workflow to cancel it")
        await handle.signal(DownloadWorkflow.cancel_download)
        result = await asyncio.wait_for(handle.result(), timeout=20)
        history = await handle.fetch_history()
    events = [EventType.Name(e.event_type) for e in history.events]
    print(f"activity: {ACTIVITY_LOG}")
    print(f"workflow result: {result!r}")
    assert len(ACTIVITY_LOG) == 1 and ACTIVITY_LOG[0].startswith("cancelled after"), ACTIVITY_LOG
    assert result == "download cancelled", result
    # The server's side of it: the cancel request, then the activity's cancelled report.
    print("history: " + ", ".join(e.removeprefix("EVENT_TYPE_") for e in events if "ACTIVITY" in e))
    assert "EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED" in events, events
    assert "EVENT_TYPE_ACTIVITY_TASK_CANCELED" in events, events
    print("cancel_activity: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"cancel_activity: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
