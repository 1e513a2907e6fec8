"""Updates: a synchronous, validated request/response call into a running workflow.

A `CounterWorkflow` exposes an update `add(amount)` that returns the new total; its validator
rejects non-positive amounts before anything is written to history. The script
  1. uses update-with-start to create the workflow and apply the first update in one call,
     then update-with-start again on the same id (the running workflow is reused),
  2. executes an accepted update and a rejected one (the validator raises),
  3. starts an update, waits only until it is accepted, then collects its result,
  4. checks that history records only the accepted updates.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/updates.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class CounterWorkflow:
    def __init__(self) -> None:
        self.total = 0
        self.closed = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.closed)
        # Let in-flight update handlers finish before completing.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.total

    @workflow.update
    async def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    @add.validator
    def validate_add(self, amount: int) -> None:
        # Runs before the update is accepted; raising rejects it (nothing goes to history).
        if amount <= 0:
            raise ValueError(f"amount must be positive, got {amount}")

    @workflow.update
    def close(self) -> int:
        self.closed = True
        return self.total


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"updates-{uuid.uuid4().hex[:8]}"
    workflow_id = f"counter-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[CounterWorkflow]):
        # 1. Update-with-start: start the workflow (if not running) and send it an update.
        def start_op() -> WithStartWorkflowOperation:
            return WithStartWorkflowOperation(
                CounterWorkflow.run,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )

        first_op = start_op()
        total = await client.execute_update_with_start_workflow(
            CounterWorkflow.add, 5, start_workflow_operation=first_op
        )
        handle = await first_op.workflow_handle()
        print(f"update-with-start add(5) started {workflow_id} -> total {total}")
        assert total == 5, total

        second_op = start_op()
        total = await client.execute_update_with_start_workflow(
            CounterWorkflow.add, 7, start_workflow_operation=second_op
        )
        second_handle = await second_op.workflow_handle()
        print(f"update-with-start add(7) on the running workflow -> total {total}")
        assert total == 12, total
        assert second_handle.first_execution_run_id == handle.first_execution_run_id, (
            "USE_EXISTING should reuse the running workflow"
        )

        # 2. A plain update, accepted, and one the validator rejects.
        total = await handle.execute_update(CounterWorkflow.add, 3)
        print(f"update add(3) -> total {total}")
        assert total == 15, total
        try:
            await handle.execute_update(CounterWorkflow.add, -1)
            raise AssertionError("update add(-1) should have been rejected")
        except WorkflowUpdateFailedError as err:
            print(f"update add(-1) rejected: {err.cause}")
            assert "amount must be positive" in str(err.cause), err.cause

        # 3. Start an update, wait only for acceptance, then fetch its result.
        update_handle = await handle.start_update(
            CounterWorkflow.add, 10, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        total = await update_handle.result()
        print(f"update add(10) accepted (id {update_handle.id}) -> total {total}")
        assert total == 25, total

        final = await handle.execute_update(CounterWorkflow.close)
        result = await handle.result()
        print(f"closed; workflow result {result}")
        assert final == result == 25, (final, result)

        # 4. History: one accepted+completed pair per accepted update, nothing for the rejected.
        history = await handle.fetch_history()
        accepted = [
            e for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        completed = [
            e for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
        ]
        print(f"history: {len(accepted)} updates accepted, {len(completed)} completed")
        assert len(accepted) == len(completed) == 5, (len(accepted), len(completed))
    print("updates: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"updates: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
