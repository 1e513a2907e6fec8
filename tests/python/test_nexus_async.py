"""Asynchronous Nexus operations with the official Python SDK on both sides: the handler
starts a workflow (a workflow-run operation) with a completion callback; when that workflow
closes, the callback ends the caller's operation with its outcome. The two histories link to
each other, DescribeWorkflowExecution shows the callback, a later start that attaches to the
running workflow gets its own callback, and a completion survives a SIGKILL of the server.
A caller's cancellation reaches the handler as a cancel task; its answer is recorded as
CancelRequestCompleted or CancelRequestFailed.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Callback, Payloads, WorkflowType
from temporalio.api.enums.v1 import CallbackState, EventType, NexusOperationCancellationState
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.workflow import NexusOperationCancellationType
from temporalio.exceptions import ApplicationError, NexusOperationError
from temporalio.worker import Worker
from google.protobuf.duration_pb2 import Duration

from nexus_async_workflows import (
    CancellingShopWorkflow,
    handed_over_callbacks,
    FulfilmentHandler,
    FulfilmentWorkflow,
    Order,
    ShopWorkflow,
)
from conftest import _stop, _wait_until_serving, launch_durin
from test_nexus_endpoints import launch_again
from test_nexus_operations import create_endpoint


async def handler_namespace(client: Client, unique: str) -> Client:
    namespace = f"fulfilment-{unique}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400),
    ))
    return await Client.connect(client.service_client.config.target_host, namespace=namespace)


async def wait_for_event(client: Client, workflow_id: str, event_type: int):
    for _ in range(300):
        try:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            for event in history.events:
                if event.event_type == event_type:
                    return event
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never had event type {event_type}")


async def start_shop(client: Client, tq: str, endpoint: str, operation: str, order: Order, suffix: str = ""):
    return await client.start_workflow(
        ShopWorkflow.run, args=[endpoint, operation, order],
        id=f"shop-{order.order_id}{suffix}", task_queue=tq, execution_timeout=timedelta(seconds=90),
    )


async def test_a_workflow_run_operation_completes_the_caller_through_its_callback(
    client: Client, unique: str
) -> None:
    handlers = await handler_namespace(client, unique)
    handler_tq, caller_tq = f"fulfil-{unique}", f"shop-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, handler_tq)
    order = Order(f"o-{unique}")
    async with Worker(handlers, task_queue=handler_tq, workflows=[FulfilmentWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]), \
            Worker(client, task_queue=caller_tq, workflows=[ShopWorkflow]):
        shop = await start_shop(client, caller_tq, endpoint, "fulfil", order)
        started = await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        fulfil = handlers.get_workflow_handle(f"fulfil-{order.order_id}")
        handler_run = (await fulfil.describe()).run_id

        # The caller's Started event links to the handler workflow's start ...
        [link] = started.links
        assert link.workflow_event.namespace == handlers.namespace, link
        assert link.workflow_event.workflow_id == fulfil.id, link
        assert link.workflow_event.run_id == handler_run, link
        assert link.workflow_event.event_ref.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        token = started.nexus_operation_started_event_attributes.operation_token
        assert token, started

        # ... and the handler's start links back to the caller's scheduled event.
        first = (await fulfil.fetch_history()).events[0]
        [back] = first.links
        assert back.workflow_event.namespace == "default" and back.workflow_event.workflow_id == shop.id, back
        assert back.workflow_event.event_ref.event_type == EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED

        # The handler workflow holds the callback, waiting for it to close.
        [callback] = (await fulfil.describe()).raw_description.callbacks
        assert callback.state == CallbackState.CALLBACK_STATE_STANDBY, callback
        assert callback.callback.nexus.url == "temporal://system", callback
        assert callback.callback.nexus.header["nexus-operation-token"] == token, callback

        await fulfil.signal(FulfilmentWorkflow.go)
        assert await shop.result() == f"shipped {order.order_id}"

    [callback] = (await fulfil.describe()).raw_description.callbacks
    assert callback.state == CallbackState.CALLBACK_STATE_SUCCEEDED, callback
    assert callback.attempt == 1, callback
    types = [e.event_type for e in (await shop.fetch_history()).events]
    assert types.count(EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED) == 1
    assert EventType.EVENT_TYPE_NEXUS_OPERATION_COMPLETED in types


async def test_the_handler_workflows_failure_or_termination_ends_the_operation(
    client: Client, unique: str
) -> None:
    tq = f"fulfil-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    async with Worker(client, task_queue=tq, workflows=[FulfilmentWorkflow, ShopWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]):
        failing = Order(f"f-{unique}", fail=True)
        shop = await start_shop(client, tq, endpoint, "fulfil", failing)
        await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        await client.get_workflow_handle(f"fulfil-{failing.order_id}").signal(FulfilmentWorkflow.go)
        with pytest.raises(WorkflowFailureError) as failed:
            await shop.result()
        error = failed.value.cause
        assert isinstance(error, NexusOperationError), error
        assert isinstance(error.__cause__, ApplicationError), error.__cause__
        assert error.__cause__.message == "out of stock" and error.__cause__.type == "Stock"

        ended = Order(f"t-{unique}")
        shop = await start_shop(client, tq, endpoint, "fulfil", ended)
        await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        await client.get_workflow_handle(f"fulfil-{ended.order_id}").terminate("warehouse closed")
        with pytest.raises(WorkflowFailureError) as terminated:
            await shop.result()
        error = terminated.value.cause
        assert isinstance(error, NexusOperationError), error
        assert "operation terminated" in str(error.__cause__), error.__cause__


async def test_callers_attaching_to_one_running_workflow_each_get_its_outcome(
    client: Client, unique: str
) -> None:
    tq = f"fulfil-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    order = Order(f"s-{unique}")
    async with Worker(client, task_queue=tq, workflows=[FulfilmentWorkflow, ShopWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]):
        shops = [await start_shop(client, tq, endpoint, "fulfil_shared", order, f"-{i}") for i in range(3)]
        for shop in shops:
            await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        fulfil = client.get_workflow_handle(f"fulfil-{order.order_id}")
        described = (await fulfil.describe()).raw_description
        assert len(described.callbacks) == 3, described.callbacks
        attached = [e for e in (await fulfil.fetch_history()).events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED]
        assert len(attached) == 2, attached
        assert all(len(e.workflow_execution_options_updated_event_attributes.attached_completion_callbacks) == 1
                   for e in attached)
        await fulfil.signal(FulfilmentWorkflow.go)
        for shop in shops:
            assert await shop.result() == f"shipped {order.order_id}"
    states = {c.state for c in (await fulfil.describe()).raw_description.callbacks}
    assert states == {CallbackState.CALLBACK_STATE_SUCCEEDED}, states


async def test_a_cancelled_operation_cancels_the_handlers_workflow(client: Client, unique: str) -> None:
    tq = f"fulfil-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    order = Order(f"c-{unique}")
    async with Worker(client, task_queue=tq, workflows=[FulfilmentWorkflow, CancellingShopWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]):
        outcome = await client.execute_workflow(
            CancellingShopWorkflow.run,
            args=[endpoint, "fulfil", order, int(NexusOperationCancellationType.WAIT_COMPLETED)],
            id=f"shop-{order.order_id}", task_queue=tq, execution_timeout=timedelta(seconds=60),
        )
    assert outcome.startswith("CancelledError"), outcome
    fulfil = client.get_workflow_handle(f"fulfil-{order.order_id}")
    assert (await fulfil.describe()).status == WorkflowExecutionStatus.CANCELED
    types = [e.event_type for e in (await client.get_workflow_handle(f"shop-{order.order_id}").fetch_history()).events]
    wanted = [
        EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED,
        EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUEST_COMPLETED,
        EventType.EVENT_TYPE_NEXUS_OPERATION_CANCELED,
    ]
    assert [t for t in types if t in wanted] == wanted, types


async def test_a_refused_cancellation_is_recorded_as_failed(client: Client, unique: str) -> None:
    tq = f"stubborn-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    order = Order(f"r-{unique}")
    async with Worker(client, task_queue=tq, workflows=[CancellingShopWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]):
        shop = await client.start_workflow(
            CancellingShopWorkflow.run,
            args=[endpoint, "stubborn", order, int(NexusOperationCancellationType.WAIT_REQUESTED)],
            id=f"shop-{order.order_id}", task_queue=tq, execution_timeout=timedelta(seconds=60),
        )
        outcome = await shop.result()
        assert "cannot be cancelled" in outcome and outcome.startswith("HandlerError"), outcome
        failed = await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUEST_FAILED)
    attrs = failed.nexus_operation_cancel_request_failed_event_attributes
    assert attrs.failure.nexus_handler_failure_info.type == "BAD_REQUEST", attrs
    assert failed.worker_may_ignore


async def test_describe_shows_the_cancellation_of_a_pending_operation(client: Client, unique: str) -> None:
    """The operation stays pending after its cancellation was refused; Describe shows the
    cancellation's state, attempts and failure."""
    tq = f"away-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    order = Order(f"w-{unique}")
    async with Worker(client, task_queue=tq, workflows=[CancellingShopWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]):
        shop = await client.start_workflow(
            CancellingShopWorkflow.run,
            args=[endpoint, "stubborn", order, int(NexusOperationCancellationType.WAIT_COMPLETED)],
            id=f"shop-{order.order_id}", task_queue=tq, execution_timeout=timedelta(seconds=60),
        )
        await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_CANCEL_REQUEST_FAILED)
    described = (await shop.describe()).raw_description
    [pending] = described.pending_nexus_operations
    info = pending.cancellation_info
    assert info.state == NexusOperationCancellationState.NEXUS_OPERATION_CANCELLATION_STATE_FAILED, info
    assert info.attempt == 1 and "cannot be cancelled" in info.last_attempt_failure.message, info
    assert info.HasField("requested_time"), info
    await shop.terminate("done")


async def start_with_callback(client: Client, tq: str, order: Order, callback: tuple) -> str:
    """Starts FulfilmentWorkflow in the client's namespace with `callback` (url, headers)."""
    url, headers, token = callback
    workflow_id = f"fulfil-{order.order_id}-{client.namespace}"
    await client.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace=client.namespace, workflow_id=workflow_id,
        workflow_type=WorkflowType(name="FulfilmentWorkflow"), task_queue=TaskQueue(name=tq),
        input=Payloads(payloads=[client.data_converter.payload_converter.to_payload(order)]),
        request_id=f"start-{workflow_id}",
        completion_callbacks=[Callback(nexus=Callback.Nexus(
            url=url, header={**headers, "nexus-operation-token": token},
        ))],
    ))
    return workflow_id


async def test_a_callback_completes_operations_of_its_own_namespace_only(client: Client, unique: str) -> None:
    """A callback's token names the handler's namespace: a workflow of another namespace that
    carries it cannot complete the caller's operation (its callback fails); the handler's
    namespace can."""
    handlers = await handler_namespace(client, unique)
    intruders = await handler_namespace(client, f"x{unique}")
    handler_tq, caller_tq = f"handover-{unique}", f"shop-{unique}"
    endpoint = await create_endpoint(client, handlers.namespace, handler_tq)
    order = Order(f"h-{unique}")
    async with Worker(handlers, task_queue=handler_tq, workflows=[FulfilmentWorkflow],
                      nexus_service_handlers=[FulfilmentHandler()]), \
            Worker(intruders, task_queue=handler_tq, workflows=[FulfilmentWorkflow]), \
            Worker(client, task_queue=caller_tq, workflows=[ShopWorkflow]):
        shop = await start_shop(client, caller_tq, endpoint, "handed_over", order)
        await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        callback = handed_over_callbacks[order.order_id]
        assert callback[0] == "temporal://system", callback

        stolen = intruders.get_workflow_handle(
            await start_with_callback(intruders, handler_tq, order, callback))
        await stolen.signal(FulfilmentWorkflow.go)
        await stolen.result()
        [refused] = (await stolen.describe()).raw_description.callbacks
        assert refused.state == CallbackState.CALLBACK_STATE_FAILED, refused
        assert "invalid callback token" in refused.last_attempt_failure.message, refused
        [pending] = (await shop.describe()).raw_description.pending_nexus_operations
        assert pending.operation_token == callback[2], pending

        own = handlers.get_workflow_handle(await start_with_callback(handlers, handler_tq, order, callback))
        await own.signal(FulfilmentWorkflow.go)
        assert await shop.result() == f"shipped {order.order_id}"


async def test_a_completion_survives_a_sigkill(tmp_path: Path, unique: str) -> None:
    """The handler's workflow is waiting when the server is killed with SIGKILL; after a
    restart on the same data, it finishes and the caller gets its result."""
    server = launch_durin(tmp_path)
    try:
        await _wait_until_serving(server.address, server.process)
        client = await Client.connect(server.address)
        tq = f"fulfil-{unique}"
        endpoint = await create_endpoint(client, "default", tq)
        order = Order(f"k-{unique}")
        async with Worker(client, task_queue=tq, workflows=[FulfilmentWorkflow, ShopWorkflow],
                          nexus_service_handlers=[FulfilmentHandler()]):
            shop = await start_shop(client, tq, endpoint, "fulfil", order)
            await wait_for_event(client, shop.id, EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED)
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        restarted = launch_again(tmp_path, list(server.process.args))
        try:
            await _wait_until_serving(server.address, restarted)
            client = await Client.connect(server.address)
            async with Worker(client, task_queue=tq, workflows=[FulfilmentWorkflow, ShopWorkflow],
                              nexus_service_handlers=[FulfilmentHandler()]):
                await client.get_workflow_handle(f"fulfil-{order.order_id}").signal(FulfilmentWorkflow.go)
                result = await client.get_workflow_handle(shop.id).result()
                assert result == f"shipped {order.order_id}"
        finally:
            _stop(restarted)
    finally:
        _stop(server.process)

