"""Children, continue-as-new, workflow retries, cron, and workflow-to-workflow signals and
cancellation, through the official Python SDK."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from chain_workflows import (
    RETRY_FAST,
    ChildWorkflow,
    CountingWorkflow,
    CronTick,
    FlakyWorkflow,
    LingeringChild,
    Mailbox,
    Messenger,
    ParentThatLeaves,
    ParentWorkflow,
)

WORKFLOWS = [
    ChildWorkflow,
    ParentWorkflow,
    LingeringChild,
    ParentThatLeaves,
    CountingWorkflow,
    FlakyWorkflow,
    CronTick,
    Mailbox,
    Messenger,
]


def worker(client: Client, tq: str) -> Worker:
    return Worker(client, task_queue=tq, workflows=WORKFLOWS)


async def wait_status(client: Client, wf_id: str, want: WorkflowExecutionStatus, timeout_s: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    status = None
    while asyncio.get_running_loop().time() < deadline:
        status = (await client.get_workflow_handle(wf_id).describe()).status
        if status == want:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{wf_id} status {status}, wanted {want}")


async def test_child_result_and_failure_reach_the_parent(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with worker(client, tq):
        ok = await client.execute_workflow(ParentWorkflow.run, "x", id=f"parent-ok-{unique}", task_queue=tq)
        assert ok == f"parent got child:x:parent-ok-{unique}"
        bad = await client.execute_workflow(ParentWorkflow.run, "fail", id=f"parent-bad-{unique}", task_queue=tq)
        assert bad == "child failed: child refused"
        history = await client.get_workflow_handle(f"parent-ok-{unique}").fetch_history()
        kinds = [e.event_type for e in history.events]
        assert EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED in kinds
        assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED in kinds
        assert EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED in kinds
        child = await client.get_workflow_handle(f"parent-ok-{unique}-child").describe()
        assert child.parent_id == f"parent-ok-{unique}"


@pytest.mark.parametrize(
    "policy,child_status",
    [
        ("TERMINATE", WorkflowExecutionStatus.TERMINATED),
        ("REQUEST_CANCEL", WorkflowExecutionStatus.COMPLETED),
        ("ABANDON", WorkflowExecutionStatus.RUNNING),
    ],
)
async def test_parent_close_policies(client: Client, unique: str, policy: str, child_status) -> None:
    tq = f"tq-{unique}"
    parent_id = f"leaver-{policy.lower()}-{unique}"
    async with worker(client, tq):
        assert await client.execute_workflow(ParentThatLeaves.run, policy, id=parent_id, task_queue=tq) == "parent done"
        await wait_status(client, f"{parent_id}-child", child_status)
        child = client.get_workflow_handle(f"{parent_id}-child")
        if policy == "REQUEST_CANCEL":
            assert await child.result() == "child saw cancel"
        if policy == "ABANDON":
            await child.terminate("test cleanup")


async def test_continue_as_new_chain_is_followed_to_the_end(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with worker(client, tq):
        handle = await client.start_workflow(CountingWorkflow.run, args=[0, 3], id=f"counter-{unique}", task_queue=tq)
        result = await handle.result()
        assert result.startswith("counted to 3 in run ")
        last_run = result.rsplit(" ", 1)[1]
        assert last_run != handle.first_execution_run_id
        first = await client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id).describe()
        assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        latest = await client.get_workflow_handle(handle.id).describe()
        assert latest.run_id == last_run
        assert latest.status == WorkflowExecutionStatus.COMPLETED


async def test_workflow_retry_policy_retries_failed_runs(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with worker(client, tq):
        result = await client.execute_workflow(
            FlakyWorkflow.run, id=f"flaky-{unique}", task_queue=tq, retry_policy=RETRY_FAST
        )
        assert result == "succeeded on attempt 3"
        with pytest.raises(WorkflowFailureError) as err:
            await client.execute_workflow(
                FlakyWorkflow.run,
                id=f"flaky-limited-{unique}",
                task_queue=tq,
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2),
            )
        assert "attempt 2 fails" in str(err.value.cause)


async def test_cron_runs_repeat_and_carry_the_last_result(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    wf_id = f"cron-{unique}"
    async with worker(client, tq):
        handle = await client.start_workflow(CronTick.run, id=wf_id, task_queue=tq, cron_schedule="@every 1s")
        # Each run returns the previous run's result plus one; follow the chain two links.
        runs = [handle.first_execution_run_id]
        deadline = asyncio.get_running_loop().time() + 15
        while len(runs) < 3 and asyncio.get_running_loop().time() < deadline:
            latest = (await client.get_workflow_handle(wf_id).describe()).run_id
            if latest != runs[-1]:
                runs.append(latest)
            await asyncio.sleep(0.1)
        assert len(runs) == 3, f"expected three cron runs, saw {runs}"
        first = await client.get_workflow_handle(wf_id, run_id=runs[0]).fetch_history()
        done = first.events[-1]
        assert done.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        assert done.workflow_execution_completed_event_attributes.new_execution_run_id == runs[1]
        assert done.workflow_execution_completed_event_attributes.result.payloads[0].data == b"1"
        second = await client.get_workflow_handle(wf_id, run_id=runs[1]).fetch_history()
        started = second.events[0].workflow_execution_started_event_attributes
        assert started.continued_execution_run_id == runs[0]
        assert started.last_completion_result.payloads[0].data == b"1"
        assert started.first_workflow_task_backoff.ToMilliseconds() > 0
        await client.get_workflow_handle(wf_id).terminate("enough")
        await wait_status(client, wf_id, WorkflowExecutionStatus.TERMINATED)


async def test_workflows_signal_and_cancel_other_workflows(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with worker(client, tq):
        mailbox = await client.start_workflow(Mailbox.run, id=f"mailbox-{unique}", task_queue=tq)
        victim = await client.start_workflow(LingeringChild.run, id=f"victim-{unique}", task_queue=tq)
        missing = await client.execute_workflow(
            Messenger.run, args=[mailbox.id, victim.id], id=f"messenger-{unique}", task_queue=tq
        )
        assert missing.startswith("missing: ")
        assert await mailbox.result() == "mailbox got from messenger"
        assert await victim.result() == "child saw cancel"
        history = await victim.fetch_history()
        cancel = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED]
        assert cancel[0].workflow_execution_cancel_requested_event_attributes.external_workflow_execution.workflow_id == (
            f"messenger-{unique}"
        )
