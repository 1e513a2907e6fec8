"""Workflows for the Python tests of children, continue-as-new, retries, cron and
workflow-to-workflow signals and cancellation (kept free of pytest for the SDK sandbox)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy


@workflow.defn
class ChildWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        if value == "fail":
            raise ApplicationError("child refused", type="ChildRefused", non_retryable=True)
        return f"child:{value}:{workflow.info().parent.workflow_id}"


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        try:
            result = await workflow.execute_child_workflow(
                ChildWorkflow.run, value, id=f"{workflow.info().workflow_id}-child"
            )
            return f"parent got {result}"
        except ChildWorkflowError as err:
            return f"child failed: {err.cause.message}"


@workflow.defn
class LingeringChild:
    """Waits until cancelled; records how it ended."""

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: False)
        except asyncio.CancelledError:
            return "child saw cancel"
        return "unreachable"


@workflow.defn
class ParentThatLeaves:
    """Starts a lingering child under the given parent-close policy and completes."""

    @workflow.run
    async def run(self, policy: str) -> str:
        await workflow.start_child_workflow(
            LingeringChild.run,
            id=f"{workflow.info().workflow_id}-child",
            parent_close_policy=ParentClosePolicy[policy],
        )
        return "parent done"


@workflow.defn
class CountingWorkflow:
    """Continues as new until the counter reaches the limit."""

    @workflow.run
    async def run(self, count: int, limit: int) -> str:
        if count < limit:
            workflow.continue_as_new(args=[count + 1, limit])
        return f"counted to {count} in run {workflow.info().run_id}"


@workflow.defn
class FlakyWorkflow:
    """Fails until its third attempt."""

    @workflow.run
    async def run(self) -> str:
        attempt = workflow.info().attempt
        if attempt < 3:
            raise ApplicationError(f"attempt {attempt} fails")
        return f"succeeded on attempt {attempt}"


@workflow.defn
class CronTick:
    @workflow.run
    async def run(self) -> str:
        last = workflow.info().cron_schedule
        prev = workflow.get_last_completion_result(type_hint=int) or 0
        return prev + 1 if last else -1


@workflow.defn
class Mailbox:
    def __init__(self) -> None:
        self.got: str | None = None

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.got is not None)
        return f"mailbox got {self.got}"

    @workflow.signal
    def deliver(self, value: str) -> None:
        self.got = value


@workflow.defn
class Messenger:
    """Signals one workflow and cancels another."""

    @workflow.run
    async def run(self, mailbox_id: str, victim_id: str) -> str:
        await workflow.get_external_workflow_handle(mailbox_id).signal(Mailbox.deliver, "from messenger")
        await workflow.get_external_workflow_handle(victim_id).cancel()
        try:
            await workflow.get_external_workflow_handle("no-such-workflow-id").signal(Mailbox.deliver, "x")
            missing = "signal to missing workflow succeeded"
        except ApplicationError as err:
            missing = f"missing: {err.type}"
        except Exception as err:  # the SDK raises its own error type for a failed external signal
            missing = f"missing: {type(err).__name__}"
        return missing


RETRY_FAST = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)


@workflow.defn
class Counter:
    """Adds amounts through an update (negative amounts are rejected by the validator)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.update
    async def add(self, amount: int) -> int:
        await asyncio.sleep(0.05)  # an update handler may wait on timers too
        self.total += amount
        return self.total

    @add.validator
    def check_add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError("amounts must not be negative")

    @workflow.signal
    def finish(self) -> None:
        self.done = True
