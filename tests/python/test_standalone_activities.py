"""Standalone activities (`client.start_activity` and friends) with the official Python SDK.

What the SDK's own suite does not pin down: cancellation of an activity no worker holds,
the schedule-to-close timeout, a heartbeat timeout retried from the last details, start
delay, request-id idempotency, termination and deletion rules, pause and unpause by activity
id, activity ids as a key space of their own (never seen as workflows), and executions read
back from the on-disk archive.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.api.common.v1 import ActivityType, WorkflowExecution
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DeleteActivityExecutionRequest,
    DescribeActivityExecutionRequest,
    DescribeWorkflowExecutionRequest,
    PauseActivityExecutionRequest,
    StartActivityExecutionRequest,
    TerminateActivityExecutionRequest,
    UnpauseActivityExecutionRequest,
)
from temporalio.client import (
    ActivityExecutionStatus,
    ActivityFailureError,
    Client,
    WorkflowExecutionStatus,
)
from temporalio.common import RetryPolicy
from temporalio.exceptions import CancelledError, TimeoutError, TimeoutType
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from conftest import _stop, _wait_until_serving, launch_durin
from durin_workflows import WaitForeverWorkflow
from waiting import eventually


@activity.defn
async def add_one(n: int) -> int:
    return n + 1


@activity.defn
async def resumes_from_heartbeat(steps: int) -> list[int]:
    """Heartbeats each step done; attempt 1 stops heartbeating half way (and times out)."""
    done = list(activity.info().heartbeat_details or [[]])[0]
    for step in range(len(done), steps):
        done = [*done, step]
        activity.heartbeat(done)
        if activity.info().attempt == 1 and step == steps // 2:
            await asyncio.sleep(30)  # past the heartbeat timeout
    return done


def _raw_start(client: Client, activity_id: str, task_queue: str, request_id: str):
    return client.workflow_service.start_activity_execution(
        StartActivityExecutionRequest(
            namespace=client.namespace,
            activity_id=activity_id,
            activity_type=ActivityType(name="add_one"),
            task_queue=TaskQueue(name=task_queue),
            start_to_close_timeout=timedelta(seconds=10),
            request_id=request_id,
        )
    )


async def test_cancel_before_any_worker_cancels_at_once(client: Client, unique: str) -> None:
    handle = await client.start_activity(
        add_one, 1, id=f"cancel-{unique}", task_queue=f"nobody-{unique}",
        start_to_close_timeout=timedelta(seconds=10),
    )
    await handle.cancel(reason="no longer needed")
    with pytest.raises(ActivityFailureError) as err:
        await handle.result()
    assert isinstance(err.value.cause, CancelledError)
    assert list(err.value.cause.details) == ["no longer needed"]
    desc = await handle.describe()
    assert desc.status == ActivityExecutionStatus.CANCELED
    # Cancelling a closed execution again (another request) is refused.
    with pytest.raises(RPCError) as refused:
        await handle.cancel(reason="again")
    assert refused.value.status == RPCStatusCode.FAILED_PRECONDITION


async def test_schedule_to_close_timeout_closes_it_timed_out(client: Client, unique: str) -> None:
    handle = await client.start_activity(
        add_one, 1, id=f"s2c-{unique}", task_queue=f"nobody-{unique}",
        schedule_to_close_timeout=timedelta(seconds=1),
    )
    with pytest.raises(ActivityFailureError) as err:
        await handle.result()
    assert isinstance(err.value.cause, TimeoutError)
    assert err.value.cause.type == TimeoutType.SCHEDULE_TO_CLOSE
    assert (await handle.describe()).status == ActivityExecutionStatus.TIMED_OUT


async def test_heartbeat_timeout_retries_from_the_last_details(client: Client, unique: str) -> None:
    tq = f"hb-{unique}"
    async with Worker(client, task_queue=tq, activities=[resumes_from_heartbeat]):
        handle = await client.start_activity(
            resumes_from_heartbeat, 6, id=f"hb-{unique}", task_queue=tq,
            start_to_close_timeout=timedelta(seconds=20),
            heartbeat_timeout=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        assert await handle.result() == [0, 1, 2, 3, 4, 5]
        desc = await handle.describe()
        assert desc.attempt == 2
        assert desc.status == ActivityExecutionStatus.COMPLETED


async def test_start_delay_holds_the_first_dispatch(client: Client, unique: str) -> None:
    tq = f"delay-{unique}"
    async with Worker(client, task_queue=tq, activities=[add_one]):
        handle = await client.start_activity(
            add_one, 41, id=f"delay-{unique}", task_queue=tq,
            start_to_close_timeout=timedelta(seconds=10),
            start_delay=timedelta(seconds=1.5),
        )
        assert await handle.result() == 42
        info = (await handle.describe()).raw_info
        waited = info.last_started_time.ToDatetime() - info.schedule_time.ToDatetime()
        assert waited >= timedelta(seconds=1.4), waited
        assert info.start_delay.ToTimedelta() == timedelta(seconds=1.5)


async def test_a_retried_start_is_the_same_start(client: Client, unique: str) -> None:
    first = await _raw_start(client, f"idem-{unique}", f"nobody-{unique}", f"req-{unique}")
    again = await _raw_start(client, f"idem-{unique}", f"nobody-{unique}", f"req-{unique}")
    assert first.started and not again.started
    assert again.run_id == first.run_id
    with pytest.raises(RPCError) as other:
        await _raw_start(client, f"idem-{unique}", f"nobody-{unique}", f"other-{unique}")
    assert other.value.status == RPCStatusCode.ALREADY_EXISTS


async def test_terminate_and_delete(client: Client, unique: str) -> None:
    activity_id = f"term-{unique}"
    handle = await client.start_activity(
        add_one, 1, id=activity_id, task_queue=f"nobody-{unique}",
        start_to_close_timeout=timedelta(seconds=10),
    )

    def terminate(request_id: str):
        return client.workflow_service.terminate_activity_execution(
            TerminateActivityExecutionRequest(
                namespace=client.namespace, activity_id=activity_id,
                request_id=request_id, reason="operator said so", identity="test",
            )
        )

    await terminate("t1")
    await terminate("t1")  # the same request again is a no-op
    with pytest.raises(RPCError) as again:
        await terminate("t2")
    assert again.value.status == RPCStatusCode.FAILED_PRECONDITION
    with pytest.raises(ActivityFailureError) as err:
        await handle.result()
    assert str(err.value.cause) == "operator said so"
    assert (await handle.describe()).status == ActivityExecutionStatus.TERMINATED

    await client.workflow_service.delete_activity_execution(
        DeleteActivityExecutionRequest(namespace=client.namespace, activity_id=activity_id)
    )
    with pytest.raises(RPCError) as gone:
        await handle.describe()
    assert gone.value.status == RPCStatusCode.NOT_FOUND


async def test_pause_holds_dispatch_until_unpause(client: Client, unique: str) -> None:
    activity_id, tq = f"pause-{unique}", f"pause-{unique}"
    handle = await client.start_activity(
        add_one, 1, id=activity_id, task_queue=tq, start_to_close_timeout=timedelta(seconds=10),
    )
    # No workflow id: the standalone activity of that id.
    await client.workflow_service.pause_activity_execution(
        PauseActivityExecutionRequest(
            namespace=client.namespace, activity_id=activity_id, reason="hold", identity="test",
        )
    )

    async def run_state() -> int:
        return (await handle.describe()).raw_info.run_state

    async with Worker(client, task_queue=tq, activities=[add_one]):
        await asyncio.sleep(1.0)
        assert await run_state() == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
        await client.workflow_service.unpause_activity_execution(
            UnpauseActivityExecutionRequest(namespace=client.namespace, activity_id=activity_id)
        )
        assert await asyncio.wait_for(handle.result(), 15) == 2


async def test_activity_ids_are_their_own_key_space(client: Client, unique: str) -> None:
    shared_id = f"shared-{unique}"
    tq = f"nobody-{unique}"
    wf = await client.start_workflow(WaitForeverWorkflow.run, id=shared_id, task_queue=tq)
    act = await client.start_activity(
        add_one, 1, id=shared_id, task_queue=tq, start_to_close_timeout=timedelta(seconds=10),
    )
    assert (await wf.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await act.describe()).status == ActivityExecutionStatus.RUNNING

    async def listed() -> tuple[list[str], list[str]]:
        workflows = [w.id async for w in client.list_workflows(f"TaskQueue = '{tq}'")]
        activities = [a.activity_id async for a in client.list_activities(f"TaskQueue = '{tq}'")]
        return workflows, activities

    assert await listed() == ([shared_id], [shared_id])
    # A workflow call cannot reach an activity execution through its stored key.
    with pytest.raises(RPCError) as err:
        await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=f"\0activity:{shared_id}"),
            )
        )
    assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    await wf.terminate()
    await act.terminate()


async def test_closed_executions_are_read_back_from_the_archive(tmp_path, unique: str) -> None:
    server = launch_durin(tmp_path, "--archive-after", "0", "--headless")

    def archive_bytes() -> int:
        return sum(p.stat().st_size for p in (server.data_dir / "archive").glob("*.seg"))

    try:
        await _wait_until_serving(server.address, server.process)
        client = await Client.connect(server.address)
        tq = f"archive-{unique}"
        before = archive_bytes()
        async with Worker(client, task_queue=tq, activities=[add_one]):
            handle = await client.start_activity(
                add_one, 1, id=f"arch-{unique}", task_queue=tq,
                start_to_close_timeout=timedelta(seconds=10),
            )
            assert await handle.result() == 2

        async def archived() -> bool:
            return archive_bytes() > before

        await eventually(archived, "the closed activity execution archived", timeout=20)
        fresh = client.get_activity_handle(f"arch-{unique}", result_type=int)
        assert await fresh.result() == 2
        assert (await fresh.describe()).status == ActivityExecutionStatus.COMPLETED
        listed = [a.activity_id async for a in client.list_activities(f"TaskQueue = '{tq}'")]
        assert listed == [f"arch-{unique}"]
    finally:
        _stop(server.process)
