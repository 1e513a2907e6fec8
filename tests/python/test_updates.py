"""Workflow updates through the official Python SDK: accepted and completed, rejected by the
validator, sent before the first workflow task, and update-with-start."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from chain_workflows import Counter


async def test_updates_complete_reject_and_are_recorded(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Counter]):
        handle = await client.start_workflow(Counter.run, id=f"counter-{unique}", task_queue=tq)
        assert await handle.execute_update(Counter.add, 5) == 5
        assert await handle.execute_update(Counter.add, 7, id="second-update") == 12
        # The same update id again is de-duplicated: same result, no second addition.
        assert await handle.execute_update(Counter.add, 7, id="second-update") == 12
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(Counter.add, -1)
        assert "must not be negative" in str(err.value.cause)
        # Accepted now, result later.
        pending = await handle.start_update(Counter.add, 1, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        assert await pending.result() == 13
        await handle.signal(Counter.finish)
        assert await handle.result() == 13
        kinds = [e.event_type for e in (await handle.fetch_history()).events]
        assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED) == 3
        assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED) == 3


async def test_update_with_start(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Counter]):
        start = WithStartWorkflowOperation(
            Counter.run,
            id=f"uws-{unique}",
            task_queue=tq,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert await client.execute_update_with_start_workflow(Counter.add, 3, start_workflow_operation=start) == 3
        handle = await start.workflow_handle()
        # A second update-with-start lands on the same, still running workflow.
        again = WithStartWorkflowOperation(
            Counter.run,
            id=f"uws-{unique}",
            task_queue=tq,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert await client.execute_update_with_start_workflow(Counter.add, 4, start_workflow_operation=again) == 7
        assert (await again.workflow_handle()).result_run_id == handle.result_run_id
        await handle.signal(Counter.finish)
        assert await handle.result() == 7
