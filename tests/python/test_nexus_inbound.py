"""Nexus over HTTP, Durin as the handler's side: a caller outside Durin (the Nexus Go SDK's
HTTP client, `tests/nexus-http-handler start|cancel`) starts and cancels operations at
`/nexus/endpoints/<id>/services/<service>/<operation>` on the client port, and a Python SDK
worker polling the endpoint's task queue handles them. The HTTP request waits for the
worker's answer: a result (200), an asynchronous start (201) whose completion Durin later
posts to the caller's callback URL, an operation failure (424), a handler error (its status),
or 520 when no handler answers in time.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import CreateNexusEndpointRequest
from temporalio.client import Client
from temporalio.worker import Worker

from conftest import Handler, _stop, launch_durin
from nexus_inbound_handlers import BrewWorkflow, DeskHandler


async def worker_endpoint(client: Client, task_queue: str, unique: str) -> str:
    """An endpoint routing to `task_queue` in `default`: its id."""
    created = await client.operator_service.create_nexus_endpoint(CreateNexusEndpointRequest(spec=EndpointSpec(
        name=f"desk-{unique}",
        target=EndpointTarget(worker=EndpointTarget.Worker(namespace="default", task_queue=task_queue)),
    )))
    return created.endpoint.id


async def go_call(handler: Handler, *args: str) -> dict:
    """Runs the Go SDK's client once; the outcome it printed."""
    process = await asyncio.create_subprocess_exec(
        str(handler.binary), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def completion_line(handler: Handler, path: str) -> list[str]:
    """The completion the Go program received at /callbacks/<path>, split into words."""
    for _ in range(200):
        lines = [line for line in handler.lines if f"/callbacks/{path} " in line]
        if lines:
            return lines[0].strip().split(maxsplit=4)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no completion at /callbacks/{path}: {handler.lines}")


def post(url: str, headers: dict[str, str] | None = None, body: bytes = b'"x"') -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def test_outside_callers_reach_durin_workers_over_http(client: Client, unique: str, handler: Handler) -> None:
    tq = f"desk-{unique}"
    endpoint_id = await worker_endpoint(client, tq, unique)
    base = f"http://{client.service_client.config.target_host}/nexus/endpoints/{endpoint_id}/services"
    async with Worker(client, task_queue=tq, nexus_service_handlers=[DeskHandler()], workflows=[BrewWorkflow]):
        # Synchronous: the result, with the caller's header seen by the handler.
        assert await go_call(handler, "start", base, "Desk", "greet", "ada") == {
            "outcome": "sync", "result": "hello ada (payments)", "links": 0}
        # A handler error keeps its type; an operation failure is the operation's.
        refused = await go_call(handler, "start", base, "Desk", "reject", "bob")
        assert (refused["outcome"], refused["type"]) == ("handler-error", "BAD_REQUEST"), refused
        assert "no entry for bob" in refused["message"], refused
        failed = await go_call(handler, "start", base, "Desk", "fail", "soup")
        assert failed["outcome"] == "failed", failed
        assert "soup is not on the menu" in failed["message"], failed

        # Asynchronous: a workflow starts, and its result is posted to the caller's callback.
        started = await go_call(handler, "start", base, "Desk", "brew", f"tea-{unique}",
                                f"{handler}/callbacks/tea-{unique}")
        assert started["outcome"] == "async" and started["token"], started
        assert started["links"] >= 1, started  # the handler's link to its workflow
        assert await completion_line(handler, f"tea-{unique}") == [
            "completion", f"/callbacks/tea-{unique}", "succeeded", started["token"], f"brewed tea-{unique}"]

        # Cancelling over HTTP cancels the handler's workflow; the caller hears it ended so.
        slow = await go_call(handler, "start", base, "Desk", "brew", f"slow-{unique}",
                             f"{handler}/callbacks/slow-{unique}")
        assert slow["outcome"] == "async", slow
        assert await go_call(handler, "cancel", base, "Desk", "brew", slow["token"]) == {
            "outcome": "cancel-requested"}
        state = (await completion_line(handler, f"slow-{unique}"))[2]
        assert state == "canceled", state
        described = await client.get_workflow_handle(f"brew-req-slow-{unique}").describe()
        assert described.raw_description.workflow_execution_info.status == \
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED

        # The handlers' task queue can be addressed directly too.
        by_queue = f"http://{client.service_client.config.target_host}/namespaces/default/task-queues/{tq}/nexus-services"
        assert (await go_call(handler, "start", by_queue, "Desk", "greet", "cy"))["result"] == "hello cy (payments)"


async def test_unknown_endpoints_and_unanswered_requests(client: Client, unique: str) -> None:
    address = client.service_client.config.target_host
    status, body = await asyncio.to_thread(post, f"http://{address}/nexus/endpoints/nope/services/Desk/greet")
    assert (status, json.loads(body)["message"]) == (404, "nexus endpoint not found"), body

    # Nobody polls the endpoint's queue: the request ends at its deadline with 520.
    endpoint_id = await worker_endpoint(client, f"idle-{unique}", unique)
    began = time.monotonic()
    status, body = await asyncio.to_thread(
        post, f"http://{address}/nexus/endpoints/{endpoint_id}/services/Desk/greet", {"Request-Timeout": "1500ms"})
    waited = time.monotonic() - began
    assert (status, json.loads(body)["message"]) == (520, "upstream timeout"), body
    assert 1.4 < waited < 10, waited


def test_the_dispatch_routes_take_the_client_ports_bearer_tokens(tmp_path: Path) -> None:
    auth = tmp_path / "auth.yaml"
    auth.write_text("tokens:\n"
                    "  - {name: team-a, token: team-a-secret, namespaces: [default]}\n"
                    "  - {name: team-b, token: team-b-secret, namespaces: [team-b]}\n")
    server = launch_durin(tmp_path, "--auth-file", str(auth))
    url = f"http://{server.address}/namespaces/default/task-queues/idle/nexus-services/Desk/greet"
    try:
        for _ in range(200):
            try:
                post(url)
                break
            except urllib.error.URLError:
                time.sleep(0.05)
        assert post(url)[0] == 401
        assert post(url, {"Authorization": "Bearer team-b-secret"})[0] == 403
        # Past authorization, nobody handles the queue.
        assert post(url, {"Authorization": "Bearer team-a-secret", "Request-Timeout": "1100ms"})[0] == 520
    finally:
        _stop(server.process)
