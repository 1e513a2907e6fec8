"""Nexus over HTTP: an endpoint whose target is a URL, served by a real Nexus handler (the
Nexus Go SDK's HTTP handler, `tests/nexus-http-handler`). Durin calls it over HTTP for each
attempt — synchronous results, handler errors and operation failures come back as a worker's
would — and the handler completes asynchronous operations by POSTing to Durin's callback
endpoint (`/namespaces/<ns>/nexus/callback`, on the client port), cancellation included.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.client import Client
from temporalio.worker import Worker

from conftest import Handler, _stop, launch_durin
from nexus_http_workflows import LedgerCaller

async def external_endpoint(client: Client, url: str, unique: str) -> str:
    name = f"ledger-http-{unique}"
    await client.operator_service.create_nexus_endpoint(CreateNexusEndpointRequest(spec=EndpointSpec(
        name=name, target=EndpointTarget(external=EndpointTarget.External(url=url)),
    )))
    return name


async def call(client: Client, tq: str, endpoint: str, operation: str, arg: str, cancel: bool = False):
    handle = await client.start_workflow(
        LedgerCaller.run, args=[endpoint, operation, arg, cancel], id=f"{tq}-{operation}-{arg}",
        task_queue=tq, execution_timeout=timedelta(seconds=60),
    )
    result = await handle.result()
    events = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_NEXUS_OPERATION_")
              for e in (await handle.fetch_history()).events if "NEXUS" in EventType.Name(e.event_type)]
    return result, events


async def test_operations_on_an_external_endpoint_go_over_http(client: Client, unique: str, handler: str) -> None:
    endpoint = await external_endpoint(client, handler, unique)
    tq = f"http-callers-{unique}"
    async with Worker(client, task_queue=tq, workflows=[LedgerCaller]):
        assert await call(client, tq, endpoint, "echo", "hi") == ("hi", ["SCHEDULED", "COMPLETED"])
        refused, _ = await call(client, tq, endpoint, "refuse", "x")
        assert refused == "HandlerError: refused: x", refused
        failed, events = await call(client, tq, endpoint, "boom", "y")
        assert failed == "ApplicationError: NexusFailure: boom: y", failed
        assert events == ["SCHEDULED", "FAILED"], events

        # Asynchronous: the handler completes through Durin's callback endpoint.
        assert await call(client, tq, endpoint, "later", "z") == (
            "later: z", ["SCHEDULED", "STARTED", "COMPLETED"])
        doomed, events = await call(client, tq, endpoint, "later", "doomed")
        assert doomed == "ApplicationError: NexusFailure: the ledger is closed", doomed
        assert events == ["SCHEDULED", "STARTED", "FAILED"], events

        # A cancellation reaches the handler over HTTP; its canceled completion ends it.
        canceled, events = await call(client, tq, endpoint, "wait", "w", cancel=True)
        # The handler's own cancellation failure is what the caller sees.
        assert canceled == "CancelledError: canceled by the caller", canceled
        assert events == ["SCHEDULED", "STARTED", "CANCEL_REQUESTED", "CANCEL_REQUEST_COMPLETED",
                          "CANCELED"], events


async def test_a_standalone_operation_on_an_external_endpoint(client: Client, unique: str, handler: str) -> None:
    endpoint = await external_endpoint(client, handler, unique)
    ledger = client.create_nexus_client(service="ledger", endpoint=endpoint)
    handle = await ledger.start_operation("later", "standalone", id=f"http-{unique}", result_type=str,
                                          schedule_to_close_timeout=timedelta(seconds=30))
    assert await handle.result() == "later: standalone"


async def test_the_callback_endpoint_refuses_what_it_did_not_issue(client: Client) -> None:
    target = client.service_client.config.target_host
    request = urllib.request.Request(
        f"http://{target}/namespaces/default/nexus/callback", data=b'"x"', method="POST",
        headers={"Temporal-Callback-Token": "forged", "Nexus-Operation-State": "succeeded",
                 "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert b"invalid callback token" in refused.value.read()


def post_callback(address: str, namespace: str, bearer: str | None):
    """POSTs a completion with a forged callback token; the HTTP status it gets."""
    headers = {"Temporal-Callback-Token": "forged", "Nexus-Operation-State": "succeeded",
               "Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(f"http://{address}/namespaces/{namespace}/nexus/callback",
                                     data=b'"x"', method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_callback_endpoint_takes_the_client_ports_bearer_tokens(tmp_path: Path) -> None:
    import time

    auth = tmp_path / "auth.yaml"
    auth.write_text("tokens:\n"
                    "  - {name: team-a, token: team-a-secret, namespaces: [default]}\n"
                    "  - {name: team-b, token: team-b-secret, namespaces: [team-b]}\n")
    server = launch_durin(tmp_path, "--auth-file", str(auth))
    try:
        for _ in range(200):
            try:
                post_callback(server.address, "default", None)
                break
            except urllib.error.URLError:
                time.sleep(0.05)
        assert post_callback(server.address, "default", None) == 401
        assert post_callback(server.address, "default", "team-b-secret") == 403
        # Past authorization, the forged token itself is refused.
        assert post_callback(server.address, "default", "team-a-secret") == 400
    finally:
        _stop(server.process)


async def test_a_workflows_completion_is_posted_to_an_outside_callback(
    client: Client, unique: str, handler: Handler
) -> None:
    """A workflow started with a completion callback to a URL outside Durin (here the Go
    program's completion receiver) has its outcome posted there when it closes."""
    from temporalio.api.common.v1 import Callback, Payloads, WorkflowType
    from temporalio.api.enums.v1 import CallbackState
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
    from temporalio.converter import default as default_converter

    tq = f"http-callbacks-{unique}"

    async def start(workflow_id: str, arg: str, path: str) -> None:
        await client.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
            namespace="default", workflow_id=workflow_id, workflow_type=WorkflowType(name="LedgerCaller"),
            task_queue=TaskQueue(name=tq), request_id=workflow_id,
            input=Payloads(payloads=default_converter().payload_converter.to_payloads(
                [arg, "echo", arg, False])),
            completion_callbacks=[Callback(nexus=Callback.Nexus(
                url=f"{handler}/callbacks/{path}", header={"nexus-operation-token": f"tok-{path}"}))],
        ))

    endpoint = await external_endpoint(client, handler, unique)
    async with Worker(client, task_queue=tq, workflows=[LedgerCaller]):
        # The caller workflow echoes through the endpoint; its result goes to the callback.
        await start(f"cb-ok-{unique}", endpoint, f"ok-{unique}")
        assert await client.get_workflow_handle(f"cb-ok-{unique}").result() == endpoint
        for _ in range(100):
            if any(f"/callbacks/ok-{unique} " in line for line in handler.lines):
                break
            await asyncio.sleep(0.05)
        [line] = [line for line in handler.lines if f"/callbacks/ok-{unique} " in line]
        assert line.split() == ["completion", f"/callbacks/ok-{unique}", "succeeded", f"tok-ok-{unique}", endpoint], line
        [callback] = (await client.get_workflow_handle(f"cb-ok-{unique}").describe()).raw_description.callbacks
        assert callback.state == CallbackState.CALLBACK_STATE_SUCCEEDED, callback

    with pytest.raises(Exception) as refused:
        await client.workflow_service.start_workflow_execution(StartWorkflowExecutionRequest(
            namespace="default", workflow_id=f"cb-bad-{unique}", workflow_type=WorkflowType(name="X"),
            task_queue=TaskQueue(name=tq), request_id=f"cb-bad-{unique}",
            completion_callbacks=[Callback(nexus=Callback.Nexus(url="ftp://example.com/x"))],
        ))
    assert "invalid url" in str(refused.value)
