"""Cancelling vs terminating a workflow.

- Cancel is a request the workflow sees: `handle.cancel()` makes the server deliver a cancel
  request; the SDK raises `asyncio.CancelledError` in the workflow, which here runs a cleanup
  activity before re-raising. The workflow ends CANCELED, and its result raises with a
  `CancelledError` cause.
- Terminate is immediate and the workflow code does not run again: `handle.terminate(reason)`
  closes it as TERMINATED; its result raises with a `TerminatedError` cause.
Both statuses are read back with `handle.describe()`.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/cancel_terminate_workflow.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError, TerminatedError
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

CLEANUPS: list[str] = []  # what the cleanup activity did (activities run in this process)


@activity.defn
async def release_reservation(order: str) -> None:
    CLEANUPS.append(f"released the reservation for {order}")


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self.waiting = False

    @workflow.run
    async def run(self, order: str) -> str:
        try:
            self.waiting = True
            await asyncio.sleep(3600)  # wait for payment for an hour
            return f"{order} paid"
        except asyncio.CancelledError:
            # Cleanup still runs as workflow code: it can call activities, timers, ...
            await workflow.execute_activity(
                release_reservation, order, start_to_close_timeout=timedelta(seconds=10)
            )
            raise  # re-raise so the workflow is recorded as CANCELED

    @workflow.query
    def is_waiting(self) -> bool:
        return self.waiting


async def wait_until_waiting(handle) -> None:
    for _ in range(100):
        if await handle.query(OrderWorkflow.is_waiting):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} never started waiting")


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"cancel-terminate-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=[release_reservation],
    ):
        to_cancel = await client.start_workflow(
            OrderWorkflow.run, "order-1", id=f"order-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        to_terminate = await client.start_workflow(
            OrderWorkflow.run, "order-2", id=f"order-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await wait_until_waiting(to_cancel)
        await wait_until_waiting(to_terminate)

        # Cancel: the workflow gets to clean up.
        await to_cancel.cancel()
        try:
            await to_cancel.result()
            raise AssertionError("cancelled workflow should not succeed")
        except WorkflowFailureError as err:
            assert isinstance(err.cause, CancelledError), repr(err.cause)
        status = (await to_cancel.describe()).status
        print(f"cancelled {to_cancel.id}: status {status.name}, cleanup: {CLEANUPS}")
        assert status == WorkflowExecutionStatus.CANCELED, status
        assert CLEANUPS == ["released the reservation for order-1"], CLEANUPS

        # Terminate: no workflow code runs, so no cleanup.
        await to_terminate.terminate(reason="customer account closed")
        try:
            await to_terminate.result()
            raise AssertionError("terminated workflow should not succeed")
        except WorkflowFailureError as err:
            assert isinstance(err.cause, TerminatedError), repr(err.cause)
            print(f"terminated {to_terminate.id}: result raised {err.cause!r}")
        desc = await to_terminate.describe()
        print(f"terminated {to_terminate.id}: status {desc.status.name}")
        assert desc.status == WorkflowExecutionStatus.TERMINATED, desc.status
        assert CLEANUPS == ["released the reservation for order-1"], CLEANUPS
    print("cancel_terminate_workflow: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"cancel_terminate_workflow: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
