"""Child workflows and parent-close policies.

  1. `FanOutWorkflow` runs three `SquareWorkflow` children in parallel and sums their results.
  2. `ShortLivedParent` starts two long-running `WaitForeverWorkflow` children and then
     completes. What happens to a child when its parent closes is its parent-close policy:
     the ABANDON child keeps running, the TERMINATE child is terminated by the server.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/child_workflows.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid

from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker
from temporalio.workflow import ParentClosePolicy

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class SquareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * n


@workflow.defn
class FanOutWorkflow:
    @workflow.run
    async def run(self, numbers: list[int]) -> int:
        parent_id = workflow.info().workflow_id
        results = await asyncio.gather(
            *(
                workflow.execute_child_workflow(SquareWorkflow.run, n, id=f"{parent_id}-square-{n}")
                for n in numbers
            )
        )
        return sum(results)


@workflow.defn
class WaitForeverWorkflow:
    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.released)
        return "released"

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn
class ShortLivedParent:
    @workflow.run
    async def run(self, child_ids: list[str]) -> str:
        abandon_id, terminate_id = child_ids
        # start_child_workflow returns once the child has started.
        await workflow.start_child_workflow(
            WaitForeverWorkflow.run, id=abandon_id, parent_close_policy=ParentClosePolicy.ABANDON
        )
        await workflow.start_child_workflow(
            WaitForeverWorkflow.run,
            id=terminate_id,
            parent_close_policy=ParentClosePolicy.TERMINATE,  # the default
        )
        return "parent done"


async def wait_for_status(client: Client, workflow_id: str, want: WorkflowExecutionStatus):
    status = None
    for _ in range(100):
        status = (await client.get_workflow_handle(workflow_id).describe()).status
        if status == want:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id}: expected {want.name}, still {status}")


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"children-{uuid.uuid4().hex[:8]}"
    suffix = uuid.uuid4().hex[:8]

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[SquareWorkflow, FanOutWorkflow, WaitForeverWorkflow, ShortLivedParent],
    ):
        # 1. Fan out to children.
        total = await client.execute_workflow(
            FanOutWorkflow.run, [1, 2, 3], id=f"fan-out-{suffix}", task_queue=task_queue
        )
        print(f"FanOutWorkflow: 1^2 + 2^2 + 3^2 = {total}")
        assert total == 14, total
        child = await client.get_workflow_handle(f"fan-out-{suffix}-square-2").describe()
        print(f"child {child.id} has parent {child.parent_id}")
        assert child.parent_id == f"fan-out-{suffix}", child.parent_id

        # 2. Parent-close policies.
        abandon_id, terminate_id = f"abandoned-{suffix}", f"terminated-{suffix}"
        result = await client.execute_workflow(
            ShortLivedParent.run,
            [abandon_id, terminate_id],
            id=f"parent-{suffix}",
            task_queue=task_queue,
        )
        print(f"ShortLivedParent: {result}")
        # Applying the policy happens right after the parent closes; poll briefly.
        terminated = await wait_for_status(
            client, terminate_id, WorkflowExecutionStatus.TERMINATED
        )
        abandoned = (await client.get_workflow_handle(abandon_id).describe()).status
        print(f"child with ABANDON:   {abandoned.name}")
        print(f"child with TERMINATE: {terminated.name}")
        assert abandoned == WorkflowExecutionStatus.RUNNING, abandoned

        # The abandoned child lives on independently; finish it.
        abandoned_handle = client.get_workflow_handle(abandon_id)
        await abandoned_handle.signal(WaitForeverWorkflow.release)
        assert await abandoned_handle.result() == "released"
        print("the abandoned child was released and completed on its own")
    print("child_workflows: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"child_workflows: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
