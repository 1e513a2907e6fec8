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
   `NexusOperationError` whose cause is the handler's error.

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
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowFailureError
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


@workflow.defn
class CheckoutWorkflow:
    @workflow.run
    async def run(self, endpoint: str, order: Charge) -> str:
        billing = workflow.create_nexus_client(service=Billing, endpoint=endpoint)
        return await billing.execute_operation(
            Billing.charge, order, schedule_to_close_timeout=timedelta(seconds=30)
        )


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
    async with Worker(billing_client, task_queue="billing", nexus_service_handlers=[BillingHandler()]), \
            Worker(client, task_queue=checkout_queue, workflows=[CheckoutWorkflow]):
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
