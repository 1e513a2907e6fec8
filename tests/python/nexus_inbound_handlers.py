"""The Nexus service of test_nexus_inbound.py, served by a Python SDK worker and called from
outside Durin over HTTP (a module of its own, so the workflow sandbox imports nothing of the
test harness)."""

from __future__ import annotations

import nexusrpc
from temporalio import nexus, workflow


@workflow.defn
class BrewWorkflow:
    """Brews at once, or (a "slow…" drink) waits until cancelled."""

    @workflow.run
    async def run(self, drink: str) -> str:
        if drink.startswith("slow"):
            await workflow.wait_condition(lambda: False)
        return f"brewed {drink}"


@nexusrpc.service
class Desk:
    greet: nexusrpc.Operation[str, str]
    reject: nexusrpc.Operation[str, str]
    fail: nexusrpc.Operation[str, str]
    brew: nexusrpc.Operation[str, str]


@nexusrpc.handler.service_handler(service=Desk)
class DeskHandler:
    @nexusrpc.handler.sync_operation
    async def greet(self, ctx: nexusrpc.handler.StartOperationContext, name: str) -> str:
        # The caller's own Nexus header reaches the handler.
        return f"hello {name} ({ctx.headers.get('x-team', 'no team')})"

    @nexusrpc.handler.sync_operation
    async def reject(self, ctx: nexusrpc.handler.StartOperationContext, name: str) -> str:
        raise nexusrpc.HandlerError(f"no entry for {name}", type=nexusrpc.HandlerErrorType.BAD_REQUEST)

    @nexusrpc.handler.sync_operation
    async def fail(self, ctx: nexusrpc.handler.StartOperationContext, name: str) -> str:
        raise nexusrpc.OperationError(f"{name} is not on the menu", state=nexusrpc.OperationErrorState.FAILED)

    @nexus.workflow_run_operation
    async def brew(self, ctx: nexus.WorkflowRunOperationContext, drink: str) -> nexus.WorkflowHandle[str]:
        return await ctx.start_workflow(BrewWorkflow.run, drink, id=f"brew-{ctx.request_id}")
