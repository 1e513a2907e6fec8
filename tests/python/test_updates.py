"""Workflow updates through the official Python SDK: accepted and completed, rejected by the
validator, sent before the first workflow task, update-with-start and what it attaches to, and
an update that a continue-as-new carries to the next run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.command.v1 import Command, ContinueAsNewWorkflowExecutionCommandAttributes
from temporalio.api.common.v1 import WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Worker

from chain_workflows import Counter
from more_workflows import Carrier, Quitter


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


async def test_update_with_start_attaches_by_update_id(client: Client, unique: str) -> None:
    """An update id the workflow already has is attached to, whatever the policies say: after
    the update completed (also once the workflow closed), or while the workflow runs. A closed
    workflow's unfinished update is not: then the id reuse policy decides."""
    tq = f"tq-{unique}"
    wid = f"uws-attach-{unique}"

    def start(conflict=WorkflowIDConflictPolicy.FAIL, reuse=WorkflowIDReusePolicy.REJECT_DUPLICATE):
        return WithStartWorkflowOperation(
            Counter.run, id=wid, task_queue=tq, id_conflict_policy=conflict, id_reuse_policy=reuse
        )

    async with Worker(client, task_queue=tq, workflows=[Counter]):
        first = start(conflict=WorkflowIDConflictPolicy.USE_EXISTING)
        assert await client.execute_update_with_start_workflow(
            Counter.add, 5, id="add-5", start_workflow_operation=first
        ) == 5
        handle = await first.workflow_handle()
        # Conflict policy FAIL, the workflow running: the same update id attaches, no error.
        again = start()
        assert await client.execute_update_with_start_workflow(
            Counter.add, 5, id="add-5", start_workflow_operation=again
        ) == 5
        assert (await again.workflow_handle()).first_execution_run_id == handle.first_execution_run_id
        await handle.signal(Counter.finish)
        assert await handle.result() == 5
        # Closed, and reuse is REJECT_DUPLICATE: the completed update is still attached to.
        closed = start()
        assert await client.execute_update_with_start_workflow(
            Counter.add, 5, id="add-5", start_workflow_operation=closed
        ) == 5
        # A new update id on the closed workflow: the reuse policy refuses the start.
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.execute_update_with_start_workflow(
                Counter.add, 1, id="add-1", start_workflow_operation=start()
            )
        # ALLOW_DUPLICATE: a new run, with the update on it.
        fresh = start(reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        assert await client.execute_update_with_start_workflow(
            Counter.add, 1, id="add-1", start_workflow_operation=fresh
        ) == 1
        fresh_handle = await fresh.workflow_handle()
        assert fresh_handle.first_execution_run_id != handle.first_execution_run_id
        await fresh_handle.signal(Counter.finish)


async def test_an_update_not_yet_accepted_goes_on_to_the_run_that_continues(client: Client, unique: str) -> None:
    """Continue-as-new while an update waits for its workflow task: Temporal retries the
    update on the new run, and its caller gets the new run's answer (an accepted update would
    fail instead: the worker promised an outcome the closing run can no longer give)."""
    tq, wid = f"tq-{unique}", f"carrier-{unique}"
    svc = client.workflow_service
    first = await svc.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace="default",
            workflow_id=wid,
            workflow_type=WorkflowType(name="Carrier"),
            task_queue=TaskQueue(name=tq),
            request_id=f"{wid}-start",
        ),
        timeout=timedelta(seconds=15),
    )
    # The first task, taken by hand: the update arrives while it runs, so it is not on it.
    task = await svc.poll_workflow_task_queue(
        PollWorkflowTaskQueueRequest(namespace="default", task_queue=TaskQueue(name=tq), identity="by-hand"),
        timeout=timedelta(seconds=70),
    )
    update = asyncio.create_task(client.get_workflow_handle(wid).execute_update(Carrier.ping))
    await asyncio.sleep(0.5)
    assert not update.done()
    await svc.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(
            namespace="default",
            task_token=task.task_token,
            identity="by-hand",
            commands=[
                Command(
                    command_type=CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
                    continue_as_new_workflow_execution_command_attributes=ContinueAsNewWorkflowExecutionCommandAttributes(
                        workflow_type=WorkflowType(name="Carrier"), task_queue=TaskQueue(name=tq)
                    ),
                )
            ],
        ),
        timeout=timedelta(seconds=15),
    )
    async with Worker(client, task_queue=tq, workflows=[Carrier]):
        answer = await asyncio.wait_for(update, 30)
    new_run = (await client.get_workflow_handle(wid).describe()).run_id
    assert new_run != first.run_id
    assert answer == f"answered by {new_run}"
    await client.get_workflow_handle(wid).terminate("checked")


async def test_update_with_start_does_not_attach_to_an_update_the_close_ended(client: Client, unique: str) -> None:
    """An accepted update that the workflow's completion failed was never completed: an
    update-with-start with its id is a new start, which the id reuse policy decides."""
    tq, wid = f"tq-{unique}", f"quitter-{unique}"

    def start(reuse):
        return WithStartWorkflowOperation(
            Quitter.run,
            id=wid,
            task_queue=tq,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
        )

    async with Worker(client, task_queue=tq, workflows=[Quitter]):
        first = start(WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        update = await client.start_update_with_start_workflow(
            Quitter.hang, id="hang", start_workflow_operation=first, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await update.result()
        assert err.value.cause.type == "AcceptedUpdateCompletedWorkflow"
        first_handle = await first.workflow_handle()
        assert await first_handle.result() == "quit"
        with pytest.raises(WorkflowAlreadyStartedError):
            await client.start_update_with_start_workflow(
                Quitter.hang,
                id="hang",
                start_workflow_operation=start(WorkflowIDReusePolicy.REJECT_DUPLICATE),
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            )
        again = start(WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        await client.start_update_with_start_workflow(
            Quitter.hang, id="hang", start_workflow_operation=again, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        assert (await again.workflow_handle()).first_execution_run_id != first_handle.first_execution_run_id
