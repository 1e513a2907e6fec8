"""Asynchronous activity completion: an activity hands its task token to an outside system and
returns without a result; something else completes it later, by token, through the client.

`request_approval` puts its task token where the "approver" (here: `main()`) can find it, then
calls `activity.raise_complete_async()`. The approver heartbeats the pending activity, then
completes it with a result through `client.get_async_activity_handle(task_token=...)`. A second
request is failed the same way, and the workflow sees that as an `ActivityError`.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/async_activity_completion.py
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
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

# Stands in for an external system (a ticket queue, an email, ...): the activity drops its
# (request, task token) here; main() picks them up. Activities run in this process's event loop.
PENDING: asyncio.Queue[tuple[str, bytes]] | None = None


@activity.defn
async def request_approval(request: str) -> str:
    assert PENDING is not None
    await PENDING.put((request, activity.info().task_token))
    # Returns right away; the activity stays open on the server until completed by token.
    activity.raise_complete_async()


@workflow.defn
class ApprovalWorkflow:
    @workflow.run
    async def run(self, request: str) -> str:
        try:
            return await workflow.execute_activity(
                request_approval,
                request,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        except ActivityError as err:
            return f"{request}: not approved ({err.cause})"


async def main() -> None:
    global PENDING
    PENDING = asyncio.Queue()
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"async-complete-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client, task_queue=task_queue, workflows=[ApprovalWorkflow], activities=[request_approval]
    ):
        approved = await client.start_workflow(
            ApprovalWorkflow.run,
            "expense #1",
            id=f"approval-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        request, token = await asyncio.wait_for(PENDING.get(), timeout=10)
        print(f"activity for {request!r} returned without a result; got its task token")
        pending = client.get_async_activity_handle(task_token=token)
        await pending.heartbeat("reviewing")  # keeps it alive; would report cancellation
        await pending.complete(f"{request}: approved by alice")
        result = await approved.result()
        print(f"completed by token -> workflow result {result!r}")
        assert result == "expense #1: approved by alice", result

        rejected = await client.start_workflow(
            ApprovalWorkflow.run,
            "expense #2",
            id=f"approval-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        request, token = await asyncio.wait_for(PENDING.get(), timeout=10)
        await client.get_async_activity_handle(task_token=token).fail(
            ApplicationError("over budget", non_retryable=True)
        )
        result = await rejected.result()
        print(f"failed by token -> workflow result {result!r}")
        assert result == "expense #2: not approved (over budget)", result
    print("async_activity_completion: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"async_activity_completion: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
