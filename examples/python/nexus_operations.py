"""Nexus: a workflow in one namespace calls an operation a team serves from another.

The `billing` team serves a Nexus service, `Billing`, from its own namespace and task queue;
an endpoint (`billing-endpoint`, created here through the operator API as `temporal operator
nexus endpoint create` would) routes calls to it. A checkout workflow in `default` calls
`charge` through the endpoint without knowing where the handler runs:

1. a synchronous operation: the result comes back into the caller's history
   (`NEXUS_OPERATION_SCHEDULED`, then `NEXUS_OPERATION_COMPLETED`);
2. the handler fails retryably the first time (the card network is busy): the server retries
   the call with backoff, and the workflow never sees the failure;
3. a refused charge (a non-retryable `BAD_REQUEST`) fails the operation: the workflow gets a
   `NexusOperationError` whose cause is the handler's error;
4. an asynchronous operation: `refund` starts a workflow in the billing namespace (it waits
   for an approval); the caller's operation is started at once and completes when that
   workflow does, through its completion callback (`..._STARTED`, then `..._COMPLETED`);
5. the caller gives up on a refund: its cancellation reaches the billing handler, which
   cancels the refund workflow, and the caller's operation ends canceled;
6. a standalone operation: a support tool (a plain client, no workflow) starts a refund on
   the endpoint by id, waits for its result, describes it and finds it in a list.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/nexus_operations.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import nexusrpc
import nexusrpc.handler
from google.protobuf.duration_pb2 import Duration
from temporalio import nexus, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import NexusOperationExecutionStatus
from temporalio.exceptions import NexusOperationError
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")

attempts = Counter[str]()


@dataclass
class Charge:
    order_id: str
    cents: int


@nexusrpc.service
class Billing:
    charge: nexusrpc.Operation[Charge, str]
    refund: nexusrpc.Operation[Charge, str]


@workflow.defn
class RefundWorkflow:
    """The billing team's refund: waits for an approval."""

    def __init__(self) -> None:
        self.approved = False

    @workflow.signal
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self, order: Charge) -> str:
        await workflow.wait_condition(lambda: self.approved)
        return f"refunded {order.cents} cents for {order.order_id}"


@nexusrpc.handler.service_handler(service=Billing)
class BillingHandler:
    @nexusrpc.handler.sync_operation
    async def charge(self, ctx: nexusrpc.handler.StartOperationContext, input: Charge) -> str:
        attempts[input.order_id] += 1
        if input.cents > 100_000:
            raise nexusrpc.HandlerError("card declined", type=nexusrpc.HandlerErrorType.BAD_REQUEST)
        if attempts[input.order_id] == 1:
            raise nexusrpc.HandlerError("card network busy", type=nexusrpc.HandlerErrorType.UNAVAILABLE)
        return f"charged {input.cents} cents for {input.order_id} on attempt {attempts[input.order_id]}"

    @nexus.workflow_run_operation
    async def refund(self, ctx: nexus.WorkflowRunOperationContext, input: Charge) -> nexus.WorkflowHandle[str]:
        return await ctx.start_workflow(RefundWorkflow.run, input, id=f"refund-{input.order_id}")


@workflow.defn
class CheckoutWorkflow:
    @workflow.run
    async def run(self, endpoint: str, order: Charge) -> str:
        billing = workflow.create_nexus_client(service=Billing, endpoint=endpoint)
        return await billing.execute_operation(
            Billing.charge, order, schedule_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class ReturnWorkflow:
    @workflow.run
    async def run(self, endpoint: str, order: Charge, give_up: bool) -> str:
        billing = workflow.create_nexus_client(service=Billing, endpoint=endpoint)
        # Returns once billing has started the refund (its workflow is running).
        refund = await billing.start_operation(
            Billing.refund, order, schedule_to_close_timeout=timedelta(seconds=60)
        )
        if give_up:
            refund.cancel()
        try:
            return await refund
        except NexusOperationError as err:
            return f"refund canceled ({type(err.__cause__).__name__})"


async def nexus_event_names(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_NEXUS_OPERATION_")
            for e in history.events if "NEXUS" in EventType.Name(e.event_type)]


async def started_in(client: Client, workflow_id: str) -> None:
    """Waits until `workflow_id` has a running workflow in the client's namespace."""
    for _ in range(200):
        try:
            await client.get_workflow_handle(workflow_id).describe()
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never started")


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    suffix = uuid.uuid4().hex[:8]
    billing_ns = f"billing-{suffix}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=billing_ns, workflow_execution_retention_period=Duration(seconds=86400),
    ))
    billing_client = await Client.connect(ADDRESS, namespace=billing_ns)
    endpoint = f"billing-endpoint-{suffix}"
    await client.operator_service.create_nexus_endpoint(CreateNexusEndpointRequest(spec=EndpointSpec(
        name=endpoint,
        target=EndpointTarget(worker=EndpointTarget.Worker(namespace=billing_ns, task_queue="billing")),
    )))
    print(f"endpoint {endpoint} routes to {billing_ns}/billing")

    checkout_queue = f"checkout-{suffix}"
    async with Worker(billing_client, task_queue="billing", nexus_service_handlers=[BillingHandler()],
                      workflows=[RefundWorkflow]), \
            Worker(client, task_queue=checkout_queue, workflows=[CheckoutWorkflow, ReturnWorkflow]):
        # 1 and 2: charged, after one retried handler error.
        result = await client.execute_workflow(
            CheckoutWorkflow.run, args=[endpoint, Charge(f"order-{suffix}", 4200)],
            id=f"checkout-{suffix}", task_queue=checkout_queue,
        )
        print(f"checkout: {result}")
        assert result.endswith("on attempt 2"), result
        history = await client.get_workflow_handle(f"checkout-{suffix}").fetch_history()
        nexus_events = [EventType.Name(e.event_type) for e in history.events
                        if "NEXUS" in EventType.Name(e.event_type)]
        print(f"caller history: {nexus_events}")
        assert nexus_events == ["EVENT_TYPE_NEXUS_OPERATION_SCHEDULED", "EVENT_TYPE_NEXUS_OPERATION_COMPLETED"]

        # 3: refused.
        try:
            await client.execute_workflow(
                CheckoutWorkflow.run, args=[endpoint, Charge(f"big-{suffix}", 500_000)],
                id=f"checkout-big-{suffix}", task_queue=checkout_queue,
            )
            raise AssertionError("the big charge should have failed")
        except WorkflowFailureError as err:
            assert isinstance(err.cause, NexusOperationError), err.cause
            handler_error = err.cause.__cause__
            assert isinstance(handler_error, nexusrpc.HandlerError), handler_error
            print(f"big charge refused: {handler_error.type.name}: {handler_error}")

        # 4: an asynchronous refund, completed by its workflow's callback once approved.
        order = Charge(f"return-{suffix}", 4200)
        returned = await client.start_workflow(
            ReturnWorkflow.run, args=[endpoint, order, False],
            id=f"return-{suffix}", task_queue=checkout_queue,
        )
        await started_in(billing_client, f"refund-{order.order_id}")
        await billing_client.get_workflow_handle(f"refund-{order.order_id}").signal(RefundWorkflow.approve)
        result = await returned.result()
        print(f"return: {result}")
        assert result == f"refunded 4200 cents for {order.order_id}", result
        events = await nexus_event_names(client, returned.id)
        print(f"caller history: {events}")
        assert events == ["SCHEDULED", "STARTED", "COMPLETED"], events

        # 5: the caller gives up; billing cancels the refund workflow.
        order = Charge(f"abandoned-{suffix}", 990)
        outcome = await client.execute_workflow(
            ReturnWorkflow.run, args=[endpoint, order, True],
            id=f"abandoned-{suffix}", task_queue=checkout_queue,
        )
        print(f"abandoned return: {outcome}")
        assert outcome == "refund canceled (CancelledError)", outcome
        refund = await billing_client.get_workflow_handle(f"refund-{order.order_id}").describe()
        assert refund.status == WorkflowExecutionStatus.CANCELED, refund.status
        events = await nexus_event_names(client, f"abandoned-{suffix}")
        print(f"caller history: {events}")
        assert events == ["SCHEDULED", "STARTED", "CANCEL_REQUESTED", "CANCEL_REQUEST_COMPLETED",
                          "CANCELED"], events

        # 6: a standalone refund, started by a client with no workflow of its own.
        order = Charge(f"goodwill-{suffix}", 500)
        billing = client.create_nexus_client(service=Billing, endpoint=endpoint)
        handle = await billing.start_operation(
            Billing.refund, order, id=f"goodwill-refund-{suffix}",
            schedule_to_close_timeout=timedelta(seconds=60), summary="goodwill gesture",
        )
        await started_in(billing_client, f"refund-{order.order_id}")
        await billing_client.get_workflow_handle(f"refund-{order.order_id}").signal(RefundWorkflow.approve)
        result = await handle.result()
        print(f"standalone refund: {result}")
        assert result == f"refunded 500 cents for {order.order_id}", result
        desc = await handle.describe()
        assert desc.status == NexusOperationExecutionStatus.COMPLETED, desc.status
        listed = [o.operation_id async for o in client.list_nexus_operations(f'Endpoint = "{endpoint}"')]
        print(f"standalone operations on {endpoint}: {listed}")
        assert listed == [handle.operation_id], listed
    print("nexus_operations: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"nexus_operations: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
