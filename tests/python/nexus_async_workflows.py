"""Workflows and the Nexus service of test_nexus_async.py (a module of their own, so the
workflow sandbox imports nothing of the test harness)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import nexusrpc
from temporalio import nexus, workflow
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError


@dataclass
class Order:
    order_id: str
    fail: bool = False


@workflow.defn
class FulfilmentWorkflow:
    """The handler's workflow: waits until told to ship, then returns (or fails)."""

    def __init__(self) -> None:
        self.ship = False

    @workflow.signal
    def go(self) -> None:
        self.ship = True

    @workflow.run
    async def run(self, order: Order) -> str:
        await workflow.wait_condition(lambda: self.ship)
        if order.fail:
            raise ApplicationError("out of stock", type="Stock", non_retryable=True)
        return f"shipped {order.order_id}"


@nexusrpc.service
class Fulfilment:
    fulfil: nexusrpc.Operation[Order, str]
    fulfil_shared: nexusrpc.Operation[Order, str]


@nexusrpc.handler.service_handler(service=Fulfilment)
class FulfilmentHandler:
    @nexus.workflow_run_operation
    async def fulfil(self, ctx: nexus.WorkflowRunOperationContext, order: Order) -> nexus.WorkflowHandle[str]:
        return await ctx.start_workflow(FulfilmentWorkflow.run, order, id=f"fulfil-{order.order_id}")

    @nexus.workflow_run_operation
    async def fulfil_shared(
        self, ctx: nexus.WorkflowRunOperationContext, order: Order
    ) -> nexus.WorkflowHandle[str]:
        # Every caller of one order attaches to the same running workflow.
        return await ctx.start_workflow(
            FulfilmentWorkflow.run, order, id=f"fulfil-{order.order_id}",
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


@workflow.defn
class ShopWorkflow:
    @workflow.run
    async def run(self, endpoint: str, operation: str, order: Order) -> str:
        client = workflow.create_nexus_client(service=Fulfilment, endpoint=endpoint)
        return await client.execute_operation(
            operation, order, output_type=str, schedule_to_close_timeout=timedelta(seconds=60),
        )
