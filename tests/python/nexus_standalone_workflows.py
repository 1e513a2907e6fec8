"""The Nexus service and workflow of test_nexus_standalone.py (a module of their own, so the
workflow sandbox imports nothing of the test harness)."""

from __future__ import annotations

from dataclasses import dataclass

from datetime import timedelta

import nexusrpc
from temporalio import activity, nexus, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError


@dataclass
class Entry:
    entry_id: str
    amount: int = 0


@workflow.defn
class SettlementWorkflow:
    """The handler's workflow: waits until told to settle, then returns (or fails)."""

    def __init__(self) -> None:
        self.settle = False

    @workflow.signal
    def go(self) -> None:
        self.settle = True

    @workflow.run
    async def run(self, entry: Entry) -> str:
        await workflow.wait_condition(lambda: self.settle)
        if entry.amount < 0:
            raise ApplicationError("negative settlement", type="Ledger", non_retryable=True)
        return f"settled {entry.entry_id}"


@activity.defn
async def appraise(entry: Entry) -> str:
    if entry.amount < 0:
        raise ApplicationError("cannot appraise a debt", type="Appraisal", non_retryable=True)
    return f"appraised {entry.entry_id}: {entry.amount}"


@nexusrpc.service
class Ledger:
    post: nexusrpc.Operation[Entry, str]
    settle: nexusrpc.Operation[Entry, str]
    appraise: nexusrpc.Operation[Entry, str]


# The links each `post` was called with, by entry id (what the handler saw of its caller).
inbound_links: dict[str, list[tuple[str, str]]] = {}


@nexusrpc.handler.service_handler(service=Ledger)
class LedgerHandler:
    @nexusrpc.handler.sync_operation
    async def post(self, ctx: nexusrpc.handler.StartOperationContext, entry: Entry) -> str:
        inbound_links[entry.entry_id] = [(link.type, link.url) for link in ctx.inbound_links]
        if entry.amount < 0:
            raise nexusrpc.HandlerError(
                "negative amounts are refused", type=nexusrpc.HandlerErrorType.BAD_REQUEST,
            )
        return f"posted {entry.entry_id}: {entry.amount}"

    @nexus.workflow_run_operation
    async def settle(self, ctx: nexus.WorkflowRunOperationContext, entry: Entry) -> nexus.WorkflowHandle[str]:
        return await ctx.start_workflow(SettlementWorkflow.run, entry, id=f"settle-{entry.entry_id}")

    @nexus.temporal_operation
    async def appraise(
        self, ctx: nexus.TemporalStartOperationContext, client: nexus.TemporalNexusClient, entry: Entry,
    ) -> nexus.TemporalOperationResult[str]:
        # Backed by a standalone activity: its close completes the operation.
        return await client.start_activity(
            appraise, entry, id=f"appraise-{entry.entry_id}",
            start_to_close_timeout=timedelta(seconds=10), retry_policy=RetryPolicy(maximum_attempts=1),
        )


@workflow.defn
class AppraisalCaller:
    @workflow.run
    async def run(self, endpoint: str, entry: Entry) -> str:
        client = workflow.create_nexus_client(service=Ledger, endpoint=endpoint)
        return await client.execute_operation(Ledger.appraise, entry, schedule_to_close_timeout=timedelta(seconds=60))
