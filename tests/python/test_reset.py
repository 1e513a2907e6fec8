"""ResetWorkflowExecution through the official Python SDK's raw WorkflowService, checked
against what Temporal does: the new run shares the history up to the reset point, the
workflow task there fails with cause ResetWorkflow (the SDK reseeds randomness from it),
signals received after the point are received again unless excluded, activities pending
at the point run again, the open run is terminated and linked to the new one, and a point
that is not a workflow task is refused."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from reset_workflows import STAMPS, Child, Parent, Resettable, stamp
from waiting import eventually


async def events(handle: WorkflowHandle, run_id: str | None = None) -> list:
    h = handle._client.get_workflow_handle(handle.id, run_id=run_id)
    return [e async for e in h.fetch_history_events()]


def first_event(history: list, kind: EventType.ValueType):
    return next(e for e in history if e.event_type == kind)


async def reset(client: Client, workflow_id: str, event_id: int, **extra) -> str:
    resp = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason="try again",
            workflow_task_finish_event_id=event_id,
            request_id=str(uuid.uuid4()),
            **extra,
        )
    )
    return resp.run_id


async def describe(client: Client, workflow_id: str, run_id: str):
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id)
        )
    )


async def started_and_waiting(client: Client, tq: str, name: str) -> WorkflowHandle:
    handle = await client.start_workflow(Resettable.run, name, id=f"reset-{name}", task_queue=tq)
    await eventually(lambda: handle.query(Resettable.ready), "the activity to finish")
    return handle


async def test_reset_to_the_first_workflow_task_runs_again_with_the_signals(client: Client, unique: str) -> None:
    tq, name = f"tq-{unique}", f"first-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Resettable], activities=[stamp], max_cached_workflows=0):
        handle = await started_and_waiting(client, tq, name)
        await handle.signal(Resettable.note, "before-reset")
        old = await events(handle)
        first_completed = first_event(old, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)

        new_run = await reset(client, handle.id, first_completed.event_id)
        assert new_run and new_run != handle.result_run_id

        # The old run is terminated with the reason and points at the new one.
        old_desc = await describe(client, handle.id, handle.result_run_id)
        assert old_desc.workflow_execution_info.status == WorkflowExecutionStatus.TERMINATED.value
        assert old_desc.workflow_extended_info.reset_run_id == new_run
        terminated = (await events(handle, handle.result_run_id))[-1]
        assert terminated.workflow_execution_terminated_event_attributes.reason == "try again"

        # The new run: the shared prefix, the task failed by the reset, the signal again.
        new_history = await events(handle, new_run)
        assert [e.event_id for e in new_history[:3]] == [1, 2, 3]
        assert new_history[0].event_time == old[0].event_time
        failed = new_history[3]
        assert failed.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        attrs = failed.workflow_task_failed_event_attributes
        assert attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        assert (attrs.base_run_id, attrs.new_run_id) == (handle.result_run_id, new_run)
        assert attrs.failure.message == "try again"
        signaled = new_history[4]
        assert signaled.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        assert new_history[5].event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED

        new_desc = await describe(client, handle.id, new_run)
        assert new_desc.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING.value
        assert new_desc.workflow_extended_info.HasField("last_reset_time")
        assert new_desc.workflow_extended_info.original_start_time == old[0].event_time

        # The activity was pending at the reset point: it runs again in the new run.
        latest = client.get_workflow_handle(handle.id)
        await latest.signal(Resettable.note, "go")
        result = await latest.result()
        # (The reset came before the workflow registered its reseed callback: no call.)
        assert result == {"ran": 2, "signals": ["before-reset", "go"], "reseeded": 0}
        assert STAMPS[name] == 2


async def test_reset_can_leave_signals_behind(client: Client, unique: str) -> None:
    tq, name = f"tq-{unique}", f"nosignals-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Resettable], activities=[stamp], max_cached_workflows=0):
        handle = await started_and_waiting(client, tq, name)
        await handle.signal(Resettable.note, "dropped")
        history = await events(handle)
        # The workflow task that took in the activity's result: after the activity, before
        # the signal.
        activity_done = first_event(history, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        after = next(
            e
            for e in history
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id > activity_done.event_id
        )
        await reset(
            client,
            handle.id,
            after.event_id,
            reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL],
        )
        latest = client.get_workflow_handle(handle.id)
        await latest.signal(Resettable.note, "go")
        assert await latest.result() == {"ran": 1, "signals": ["go"], "reseeded": 1}


async def test_reset_points_are_described_and_bad_points_refused(client: Client, unique: str) -> None:
    tq, name = f"tq-{unique}", f"refused-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Resettable], activities=[stamp]):
        handle = await started_and_waiting(client, tq, name)
        desc = await describe(client, handle.id, handle.result_run_id)
        points = desc.workflow_execution_info.auto_reset_points.points
        assert len(points) == 1, points
        assert points[0].run_id == handle.result_run_id
        assert points[0].first_workflow_task_completed_id == 4
        assert points[0].resettable
        # An unversioned worker names its build by binary checksum (the SDK's build id).
        assert points[0].binary_checksum or points[0].build_id, points[0]

        history = await events(handle)
        scheduled = first_event(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        for event_id in (1, 0, len(history) + 1, scheduled.event_id + 1):
            with pytest.raises(RPCError) as err:
                await reset(client, handle.id, event_id)
            assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, (event_id, err.value)
        # Nothing happened to the run.
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        await handle.signal(Resettable.note, "go")
        assert (await handle.result())["ran"] == 1


# --- resets of parents with children ------------------------------------------------------

RESULT_TIMEOUT_S = 30.0


async def parent_waiting_on_child(client: Client, tq: str, name: str) -> tuple[WorkflowHandle, WorkflowHandle]:
    handle = await client.start_workflow(Parent.run, f"{name}-child", id=f"parent-{name}", task_queue=tq)
    child = client.get_workflow_handle(f"{name}-child")

    async def child_started():
        history = await events(handle)
        return any(e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED for e in history)

    await eventually(child_started, "the child to start")
    return handle, child


async def result_of(client: Client, workflow_id: str, run_id: str | None = None):
    """The run's result, failing the test (not hanging it) if it never comes."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return await asyncio.wait_for(handle.result(), RESULT_TIMEOUT_S)


def last_completed_task(history: list) -> int:
    return [e for e in history if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED][-1].event_id


def count(history: list, kind: EventType.ValueType) -> int:
    return sum(1 for e in history if e.event_type == kind)


async def test_a_reset_after_the_child_started_keeps_the_running_child(client: Client, unique: str) -> None:
    """The child keeps running (not terminated by the parent-close policy) and its result
    reaches the new run, through the old run's reset link."""
    tq, name = f"tq-{unique}", f"keep-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Parent, Child]):
        handle, child = await parent_waiting_on_child(client, tq, name)
        child_run = (await child.describe()).run_id
        new_run = await reset(client, handle.id, last_completed_task(await events(handle)))
        assert (await child.describe()).status == WorkflowExecutionStatus.RUNNING
        assert (await child.describe()).run_id == child_run
        desc = await describe(client, handle.id, new_run)
        assert [c.workflow_id for c in desc.pending_children] == [child.id]
        await child.signal(Child.finish, "kept")
        assert await result_of(client, handle.id, new_run) == "parent got kept"
        history = await events(handle, new_run)
        assert count(history, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 1
        assert count(history, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED) == 1


async def test_a_reset_keeps_what_a_child_that_already_closed_returned(client: Client, unique: str) -> None:
    tq, name = f"tq-{unique}", f"closed-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Parent, Child]):
        handle, child = await parent_waiting_on_child(client, tq, name)
        point = last_completed_task(await events(handle))
        await child.signal(Child.finish, "early")
        assert await result_of(client, handle.id) == "parent got early"
        new_run = await reset(client, handle.id, point)
        assert await result_of(client, handle.id, new_run) == "parent got early"
        history = await events(handle, new_run)
        assert count(history, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 1
        completed = first_event(history, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED)
        started = first_event(history, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)
        assert completed.child_workflow_execution_completed_event_attributes.started_event_id == started.event_id


async def test_a_reset_before_the_child_started_starts_it_again(client: Client, unique: str) -> None:
    """The old run's child was initiated after the reset point: the old run's parent-close
    policy (terminate) ends it and the new run starts the child again under the same id."""
    tq, name = f"tq-{unique}", f"again-{unique}"
    async with Worker(client, task_queue=tq, workflows=[Parent, Child]):
        handle, child = await parent_waiting_on_child(client, tq, name)
        old_child_run = (await child.describe()).run_id
        first_task = first_event(await events(handle), EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED).event_id
        new_run = await reset(client, handle.id, first_task)

        async def restarted():
            d = await child.describe()
            return d.run_id != old_child_run and d.status == WorkflowExecutionStatus.RUNNING

        await eventually(restarted, "the child to start again")
        old = client.get_workflow_handle(child.id, run_id=old_child_run)
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        await child.signal(Child.finish, "second")
        assert await result_of(client, handle.id, new_run) == "parent got second"
