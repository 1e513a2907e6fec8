"""Workflows and the Nexus service of test_nexus_async.py (a module of their own, so the
workflow sandbox imports nothing of the test harness)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import nexusrpc
from temporalio import nexus, workflow
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, NexusOperationError


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
    stubborn: nexusrpc.Operation[Order, str]
    handed_over: nexusrpc.Operation[Order, str]


# The callback each `handed_over` operation got, by order id: a test completes it by hand.
handed_over_callbacks: dict[str, tuple[str, dict[str, str], str]] = {}


class HandedOverOperation(nexusrpc.handler.OperationHandler[Order, str]):
    """Starts asynchronously and keeps the callback it was given, for someone else to use."""

    async def start(
        self, ctx: nexusrpc.handler.StartOperationContext, input: Order
    ) -> nexusrpc.handler.StartOperationResultAsync:
        token = f"handed-over-{input.order_id}"
        handed_over_callbacks[input.order_id] = (ctx.callback_url or "", dict(ctx.callback_headers), token)
        return nexusrpc.handler.StartOperationResultAsync(token)

    async def cancel(self, ctx: nexusrpc.handler.CancelOperationContext, token: str) -> None:
        pass


class StubbornOperation(nexusrpc.handler.OperationHandler[Order, str]):
    """Starts asynchronously (no workflow) and refuses to be cancelled."""

    async def start(
        self, ctx: nexusrpc.handler.StartOperationContext, input: Order
    ) -> nexusrpc.handler.StartOperationResultAsync:
        return nexusrpc.handler.StartOperationResultAsync(f"stubborn-{input.order_id}")

    async def cancel(self, ctx: nexusrpc.handler.CancelOperationContext, token: str) -> None:
        raise nexusrpc.HandlerError(f"{token} cannot be cancelled", type=nexusrpc.HandlerErrorType.BAD_REQUEST)


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

    @nexusrpc.handler.operation_handler
    def stubborn(self) -> nexusrpc.handler.OperationHandler[Order, str]:
        return StubbornOperation()

    @nexusrpc.handler.operation_handler
    def handed_over(self) -> nexusrpc.handler.OperationHandler[Order, str]:
        return HandedOverOperation()


@workflow.defn
class ShopWorkflow:
    @workflow.run
    async def run(self, endpoint: str, operation: str, order: Order) -> str:
        client = workflow.create_nexus_client(service=Fulfilment, endpoint=endpoint)
        return await client.execute_operation(
            operation, order, output_type=str, schedule_to_close_timeout=timedelta(seconds=60),
        )


@workflow.defn
class CancellingShopWorkflow:
    """Starts an operation, then cancels it at once; returns how the operation ended."""

    @workflow.run
    async def run(self, endpoint: str, operation: str, order: Order, cancellation_type: int) -> str:
        client = workflow.create_nexus_client(service=Fulfilment, endpoint=endpoint)
        handle = await client.start_operation(
            operation, order, output_type=str, schedule_to_close_timeout=timedelta(seconds=60),
            cancellation_type=workflow.NexusOperationCancellationType(cancellation_type),
        )
        handle.cancel()
        try:
            return await handle
        except NexusOperationError as error:
            cause = error.__cause__
            return f"{type(cause).__name__}: {cause}"


@workflow.defn
class InboxWorkflow:
    """Collects two messages, then returns them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @workflow.signal
    def deliver(self, message: str) -> None:
        self.messages.append(message)

    @workflow.run
    async def run(self, owner: str) -> str:
        await workflow.wait_condition(lambda: len(self.messages) >= 2)
        return f"{owner}: " + ", ".join(self.messages)


@workflow.defn
class PosterWorkflow:
    """Posts to an inbox with signal-with-start from the workflow (the system Nexus endpoint)."""

    @workflow.run
    async def run(self, inbox_id: str, task_queue: str, message: str) -> str:
        inbox = await workflow.signal_with_start_workflow(
            "InboxWorkflow", "alice", id=inbox_id, task_queue=task_queue,
            signal="deliver", signal_args=[message],
        )
        return f"{inbox.id}/{inbox.run_id}"
