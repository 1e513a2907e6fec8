"""Nexus operations between workflows and handlers, with the official Python SDK on both
sides: a caller workflow's operation is dispatched through an endpoint to a handler worker's
Nexus task queue (in the same namespace or another one), its result or failure comes back
into the caller's history, retryable handler errors are retried with backoff (visible in
DescribeWorkflowExecution meanwhile), and an operation nobody handles times out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import nexusrpc
import nexusrpc.handler
import pytest
from temporalio import nexus, workflow
from temporalio.api.enums.v1 import EventType, PendingNexusOperationState
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import (
    ApplicationError,
    NexusOperationError,
    TimeoutError,
    TimeoutType,
)
from temporalio.worker import Worker
from google.protobuf.duration_pb2 import Duration

invocations = Counter[str]()
seen: dict[str, dict] = {}


@dataclass
class Greeting:
    name: str
    key: str


@nexusrpc.handler.service_handler(name="Greeter")
class GreeterHandler:
    @nexusrpc.handler.sync_operation
    async def greet(self, ctx: nexusrpc.handler.StartOperationContext, input: Greeting) -> str:
        invocations[input.key] += 1
        seen[input.key] = {
            "request_timeout": ctx.headers.get("request-timeout"),
            "deadline": ctx.request_deadline,
            "links": list(ctx.inbound_links),
            "endpoint": nexus.info().endpoint,
            "namespace": nexus.info().namespace,
            "custom": ctx.headers.get("x-greeting"),
        }
        return f"Hello, {input.name}!"

    @nexusrpc.handler.sync_operation
    async def flaky(self, ctx: nexusrpc.handler.StartOperationContext, input: Greeting) -> str:
        invocations[input.key] += 1
        if invocations[input.key] < 3:
            raise nexusrpc.HandlerError("not yet", type=nexusrpc.HandlerErrorType.INTERNAL)
        return f"third time lucky, {input.name}"

    @nexusrpc.handler.sync_operation
    async def refuse(self, ctx: nexusrpc.handler.StartOperationContext, input: Greeting) -> str:
        invocations[input.key] += 1
        raise nexusrpc.HandlerError("no such person", type=nexusrpc.HandlerErrorType.BAD_REQUEST)

    @nexusrpc.handler.sync_operation
    async def late(self, ctx: nexusrpc.handler.StartOperationContext, input: Greeting) -> str:
        # Answers only after its deadline has passed (the SDK cancels it then).
        invocations[input.key] += 1
        try:
            await asyncio.wait_for(ctx.task_cancellation.wait_until_cancelled(), 5)
        except asyncio.TimeoutError:
            pass
        return "too late"

    @nexusrpc.handler.sync_operation
    async def fail(self, ctx: nexusrpc.handler.StartOperationContext, input: Greeting) -> str:
        invocations[input.key] += 1
        raise nexusrpc.OperationError("greeting refused", state=nexusrpc.OperationErrorState.FAILED)


@workflow.defn
class CallerWorkflow:
    @workflow.run
    async def run(self, endpoint: str, operation: str, name: str, key: str) -> str:
        client = workflow.create_nexus_client(service="Greeter", endpoint=endpoint)
        return await client.execute_operation(
            operation,
            Greeting(name, key),
            output_type=str,
            headers={"X-Greeting": "warm"},
            schedule_to_close_timeout=timedelta(seconds=20),
        )


@workflow.defn
class ShortCallerWorkflow:
    @workflow.run
    async def run(self, endpoint: str, operation: str) -> str:
        client = workflow.create_nexus_client(service="Greeter", endpoint=endpoint)
        return await client.execute_operation(
            operation, Greeting("nobody", f"short-{workflow.info().workflow_id}"), output_type=str,
            schedule_to_close_timeout=timedelta(seconds=3),
        )


async def create_endpoint(client: Client, namespace: str, task_queue: str) -> str:
    name = f"greeter-{uuid.uuid4().hex[:10]}"
    await client.operator_service.create_nexus_endpoint(CreateNexusEndpointRequest(
        spec=EndpointSpec(
            name=name,
            target=EndpointTarget(worker=EndpointTarget.Worker(namespace=namespace, task_queue=task_queue)),
        )
    ))
    return name


async def event_types(client: Client, workflow_id: str) -> list[int]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [e.event_type for e in history.events]


async def run_caller(client: Client, task_queue: str, endpoint: str, operation: str, key: str):
    return await client.execute_workflow(
        CallerWorkflow.run, args=[endpoint, operation, "Durin", key],
        id=f"caller-{key}", task_queue=task_queue,
        execution_timeout=timedelta(seconds=60),
    )


async def test_a_sync_operation_returns_its_result(client: Client, unique: str) -> None:
    tq = f"nexus-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    key = f"sync-{unique}"
    async with Worker(client, task_queue=tq, workflows=[CallerWorkflow],
                      nexus_service_handlers=[GreeterHandler()]):
        assert await run_caller(client, tq, endpoint, "greet", key) == "Hello, Durin!"
    assert invocations[key] == 1
    got = seen[key]
    assert got["endpoint"] == endpoint and got["namespace"] == "default", got
    assert got["custom"] == "warm", got
    assert got["request_timeout"] and got["request_timeout"].endswith("ms"), got
    assert got["deadline"] is not None, got
    # The handler is linked to the caller's scheduled event.
    [link] = got["links"]
    assert f"/workflows/caller-{key}/" in link.url and "NexusOperationScheduled" in link.url, link
    types = await event_types(client, f"caller-{key}")
    assert EventType.EVENT_TYPE_NEXUS_OPERATION_SCHEDULED in types
    assert EventType.EVENT_TYPE_NEXUS_OPERATION_COMPLETED in types
    assert EventType.EVENT_TYPE_NEXUS_OPERATION_STARTED not in types  # synchronous


async def test_an_operation_reaches_a_handler_in_another_namespace(client: Client, unique: str) -> None:
    handler_ns = f"handlers-{unique}"
    await client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=handler_ns, workflow_execution_retention_period=Duration(seconds=86400),
    ))
    handler_client = await Client.connect(client.service_client.config.target_host, namespace=handler_ns)
    handler_tq, caller_tq = f"handler-{unique}", f"caller-{unique}"
    endpoint = await create_endpoint(client, handler_ns, handler_tq)
    key = f"cross-{unique}"
    async with Worker(handler_client, task_queue=handler_tq, nexus_service_handlers=[GreeterHandler()]), \
            Worker(client, task_queue=caller_tq, workflows=[CallerWorkflow]):
        assert await run_caller(client, caller_tq, endpoint, "greet", key) == "Hello, Durin!"
    assert seen[key]["namespace"] == handler_ns


async def test_retryable_handler_errors_are_retried_with_backoff(client: Client, unique: str) -> None:
    tq = f"nexus-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    key = f"flaky-{unique}"
    async with Worker(client, task_queue=tq, workflows=[CallerWorkflow],
                      nexus_service_handlers=[GreeterHandler()]):
        handle = await client.start_workflow(
            CallerWorkflow.run, args=[endpoint, "flaky", "Durin", key],
            id=f"caller-{key}", task_queue=tq,
        )
        backing_off = None
        for _ in range(200):
            described = await handle.describe()
            pending = described.raw_description.pending_nexus_operations
            if pending and pending[0].state == PendingNexusOperationState.PENDING_NEXUS_OPERATION_STATE_BACKING_OFF:
                backing_off = pending[0]
                break
            await asyncio.sleep(0.05)
        assert backing_off is not None, "the operation was never seen backing off"
        assert backing_off.attempt >= 1 and backing_off.last_attempt_failure.message == "not yet", backing_off
        assert backing_off.last_attempt_failure.nexus_handler_failure_info.type == "INTERNAL"
        assert backing_off.HasField("next_attempt_schedule_time")
        assert await handle.result() == "third time lucky, Durin"
    assert invocations[key] == 3


async def test_non_retryable_errors_fail_the_operation(client: Client, unique: str) -> None:
    tq = f"nexus-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    async with Worker(client, task_queue=tq, workflows=[CallerWorkflow],
                      nexus_service_handlers=[GreeterHandler()]):
        key = f"refuse-{unique}"
        with pytest.raises(WorkflowFailureError) as refused:
            await run_caller(client, tq, endpoint, "refuse", key)
        error = refused.value.cause
        assert isinstance(error, NexusOperationError), error
        assert error.endpoint == endpoint and error.operation == "refuse", error
        handler_error = error.__cause__
        assert isinstance(handler_error, nexusrpc.HandlerError), handler_error
        assert handler_error.type == nexusrpc.HandlerErrorType.BAD_REQUEST
        assert invocations[key] == 1  # not retried
        assert EventType.EVENT_TYPE_NEXUS_OPERATION_FAILED in await event_types(client, f"caller-{key}")

        key = f"fail-{unique}"
        with pytest.raises(WorkflowFailureError) as failed:
            await run_caller(client, tq, endpoint, "fail", key)
        error = failed.value.cause
        assert isinstance(error, NexusOperationError), error
        assert isinstance(error.__cause__, ApplicationError), error.__cause__
        assert "greeting refused" in str(error.__cause__)
        assert invocations[key] == 1


async def test_an_operation_nobody_handles_times_out(client: Client, unique: str) -> None:
    handler_tq, caller_tq = f"unhandled-{unique}", f"caller-{unique}"
    endpoint = await create_endpoint(client, "default", handler_tq)
    async with Worker(client, task_queue=caller_tq, workflows=[ShortCallerWorkflow]):
        with pytest.raises(WorkflowFailureError) as timed_out:
            await client.execute_workflow(
                ShortCallerWorkflow.run, args=[endpoint, "greet"], id=f"caller-timeout-{unique}",
                task_queue=caller_tq,
            )
    error = timed_out.value.cause
    assert isinstance(error, NexusOperationError), error
    assert isinstance(error.__cause__, TimeoutError), error.__cause__
    assert error.__cause__.type == TimeoutType.SCHEDULE_TO_CLOSE
    types = await event_types(client, f"caller-timeout-{unique}")
    assert EventType.EVENT_TYPE_NEXUS_OPERATION_TIMED_OUT in types


async def test_an_answer_after_the_handlers_deadline_does_not_count(client: Client, unique: str) -> None:
    """The handler is told its deadline (`request-timeout`); a result sent after it is refused
    as expired, and the operation times out instead of completing."""
    tq = f"nexus-{unique}"
    endpoint = await create_endpoint(client, "default", tq)
    async with Worker(client, task_queue=tq, workflows=[ShortCallerWorkflow],
                      nexus_service_handlers=[GreeterHandler()]):
        with pytest.raises(WorkflowFailureError) as timed_out:
            await client.execute_workflow(
                ShortCallerWorkflow.run, args=[endpoint, "late"], id=f"caller-late-{unique}",
                task_queue=tq,
            )
    error = timed_out.value.cause
    assert isinstance(error, NexusOperationError), error
    assert isinstance(error.__cause__, TimeoutError), error.__cause__
    assert invocations[f"short-caller-late-{unique}"] >= 1
