"""Pausing, unpausing, resetting and changing a running workflow's activity (PauseActivity,
UnpauseActivity, ResetActivity, UpdateActivityOptions and the `temporal activity` commands),
checked through the official Python SDK against what Temporal does: a heartbeat tells the
running attempt it was paused or reset, a paused activity is not dispatched and has no
timeouts, a failure while paused waits for the unpause, and new options take effect."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    PauseActivityRequest,
    ResetActivityRequest,
    UnpauseActivityRequest,
    UpdateActivityOptionsRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activity_workflows import OneActivity, heartbeat_until_told, quick
from waiting import eventually

ACTIVITY_ID = "the-activity"


async def pending(handle: WorkflowHandle):
    desc = await handle.describe()
    found = [a for a in desc.raw_description.pending_activities if a.activity_id == ACTIVITY_ID]
    return found[0] if found else None


def execution(handle: WorkflowHandle) -> WorkflowExecution:
    return WorkflowExecution(workflow_id=handle.id)


async def pause(client: Client, handle: WorkflowHandle, **extra) -> None:
    await client.workflow_service.pause_activity(
        PauseActivityRequest(
            namespace=client.namespace, execution=execution(handle), id=ACTIVITY_ID, identity="ops", **extra
        )
    )


async def unpause(client: Client, handle: WorkflowHandle) -> None:
    await client.workflow_service.unpause_activity(
        UnpauseActivityRequest(namespace=client.namespace, execution=execution(handle), id=ACTIVITY_ID)
    )


async def test_pause_reaches_the_running_attempt_which_may_still_complete(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity], activities=[heartbeat_until_told]):
        handle = await client.start_workflow(
            OneActivity.run,
            {"activity": "heartbeat_until_told", "arg": True, "heartbeat_s": 2, "max_attempts": 1},
            id=f"pause-catch-{unique}",
            task_queue=tq,
        )
        started = await eventually(
            lambda: _started(handle), "the activity to start"
        )
        assert not started.paused
        await pause(client, handle, reason="looking into it")
        info = await pending(handle)
        if info is not None:
            assert info.paused
            assert info.pause_info.manual.identity == "ops"
            assert info.pause_info.manual.reason == "looking into it"
            assert info.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSE_REQUESTED
        # Heartbeats answer "paused" (not cancelled); the activity catches it and completes.
        assert await handle.result() == "paused=True reset=False cancel=False"


async def _started(handle: WorkflowHandle):
    info = await pending(handle)
    return info if info is not None and info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED else None


async def test_a_failure_while_paused_waits_for_the_unpause(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity], activities=[heartbeat_until_told]):
        handle = await client.start_workflow(
            OneActivity.run,
            {"activity": "heartbeat_until_told", "arg": False, "heartbeat_s": 1, "max_attempts": 2},
            id=f"pause-fail-{unique}",
            task_queue=tq,
        )
        await eventually(lambda: _started(handle), "the activity to start")
        await pause(client, handle)

        # The attempt fails on the pause; the activity holds at attempt 2, paused, with the
        # failed attempt's heartbeat, and stays so (no retry, no heartbeat timeout).
        async def held():
            info = await pending(handle)
            return info if info and info.attempt == 2 and info.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED else None

        info = await eventually(held, "the failed attempt to be held")
        assert "ActivityPause" in info.last_failure.application_failure_info.type
        await asyncio.sleep(1.5)
        info = await pending(handle)
        assert info is not None and info.paused and info.attempt == 2

        await unpause(client, handle)
        result = await handle.result()
        assert result.startswith("attempt 2 saw "), result


async def test_a_paused_activity_is_not_dispatched_until_unpaused(client: Client, unique: str) -> None:
    tq, activity_tq = f"tq-{unique}", f"acts-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity]):
        handle = await client.start_workflow(
            OneActivity.run,
            {"activity": "quick", "arg": "x", "task_queue": activity_tq},
            id=f"pause-waiting-{unique}",
            task_queue=tq,
        )
        await eventually(lambda: pending(handle), "the activity to be scheduled")
        await pause(client, handle, request_id="pause-1")
        # The same pause again is a no-op; another one is refused.
        await pause(client, handle, request_id="pause-1")
        with pytest.raises(RPCError) as err:
            await pause(client, handle, request_id="pause-2")
        assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
        info = await pending(handle)
        assert info.state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED

        async with Worker(client, task_queue=activity_tq, activities=[quick]):
            await asyncio.sleep(1.0)
            info = await pending(handle)
            assert info is not None and info.paused, "a paused activity was dispatched"
            await unpause(client, handle)
            assert await handle.result() == "done x on attempt 1"


async def test_reset_reaches_the_running_attempt(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity], activities=[heartbeat_until_told]):
        handle = await client.start_workflow(
            OneActivity.run,
            {"activity": "heartbeat_until_told", "arg": True, "heartbeat_s": 1, "max_attempts": 1},
            id=f"reset-{unique}",
            task_queue=tq,
        )
        await eventually(lambda: _started(handle), "the activity to start")
        await client.workflow_service.reset_activity(
            ResetActivityRequest(namespace=client.namespace, execution=execution(handle), id=ACTIVITY_ID)
        )
        assert await handle.result() == "paused=False reset=True cancel=False"


async def test_new_options_move_a_waiting_activity_to_another_queue(client: Client, unique: str) -> None:
    tq, old_tq, new_tq = f"tq-{unique}", f"old-{unique}", f"new-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity]):
        handle = await client.start_workflow(
            OneActivity.run,
            {"activity": "quick", "arg": "moved", "task_queue": old_tq},
            id=f"options-{unique}",
            task_queue=tq,
        )
        await eventually(lambda: pending(handle), "the activity to be scheduled")

        def request(**kw) -> UpdateActivityOptionsRequest:
            return UpdateActivityOptionsRequest(
                namespace=client.namespace, execution=execution(handle), id=ACTIVITY_ID, **kw
            )

        for bad in (
            request(activity_options=ActivityOptions()),
            request(update_mask=FieldMask(paths=["start_to_close_timeout"]), restore_original=True),
            request(
                activity_options=ActivityOptions(), update_mask=FieldMask(paths=["retry_policy.maximum_attempts"])
            ),
        ):
            with pytest.raises(RPCError) as err:
                await client.workflow_service.update_activity_options(bad)
            assert err.value.status == RPCStatusCode.INVALID_ARGUMENT, bad

        resp = await client.workflow_service.update_activity_options(
            request(
                activity_options=ActivityOptions(
                    task_queue=TaskQueue(name=new_tq), start_to_close_timeout=Duration(seconds=7)
                ),
                update_mask=FieldMask(paths=["taskQueue.name", "start_to_close_timeout"]),
            )
        )
        assert resp.activity_options.task_queue.name == new_tq
        assert resp.activity_options.start_to_close_timeout.seconds == 7
        info = await pending(handle)
        assert info.activity_options.task_queue.name == new_tq
        # A worker on the old queue gets nothing; one on the new queue runs it.
        async with Worker(client, task_queue=old_tq, activities=[quick]):
            await asyncio.sleep(0.5)
            assert await pending(handle) is not None
        async with Worker(client, task_queue=new_tq, activities=[quick]):
            assert await handle.result() == "done moved on attempt 1"


async def test_operations_on_missing_activities_are_refused(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[OneActivity], activities=[quick]):
        handle = await client.start_workflow(
            OneActivity.run, {"activity": "quick", "arg": "x"}, id=f"missing-{unique}", task_queue=tq
        )
        await handle.result()
    with pytest.raises(RPCError) as err:
        await pause(client, handle)
    assert err.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(RPCError) as err:
        await client.workflow_service.pause_activity(
            PauseActivityRequest(namespace=client.namespace, execution=execution(handle))
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
