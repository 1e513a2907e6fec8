"""The Nexus endpoint registry through the official `temporal` CLI
(`temporal operator nexus endpoint create|get|list|update|delete`) and the SDK's raw
OperatorService client: Temporal's validation and version checks, and durability across a
SIGKILL of the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.api.nexus.v1 import EndpointSpec, EndpointTarget
from temporalio.api.operatorservice.v1 import (
    CreateNexusEndpointRequest,
    DeleteNexusEndpointRequest,
    GetNexusEndpointRequest,
    ListNexusEndpointsRequest,
    UpdateNexusEndpointRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from conftest import _stop, _wait_until_serving, launch_durin
from test_cli import cli, ok  # noqa: F401 (the fixture)


def name() -> str:
    return f"ep-{uuid.uuid4().hex[:12]}"


def worker_spec(endpoint: str, task_queue: str, namespace: str = "default") -> EndpointSpec:
    return EndpointSpec(
        name=endpoint,
        target=EndpointTarget(
            worker=EndpointTarget.Worker(namespace=namespace, task_queue=task_queue)
        ),
    )


async def test_the_cli_manages_endpoints(cli) -> None:
    endpoint = name()
    created = ok(await cli(
        "operator", "nexus", "endpoint", "create", "--name", endpoint,
        "--target-namespace", "default", "--target-task-queue", "handlers",
        "--description", "Routes to the handlers",
    ))
    assert f"Endpoint {endpoint} successfully created" in created.stdout, created

    got = (await cli("operator", "nexus", "endpoint", "get", "--name", endpoint, json_out=True)).json()
    assert got["spec"]["name"] == endpoint, got
    assert got["spec"]["target"]["worker"] == {"namespace": "default", "taskQueue": "handlers"}, got
    assert int(got["version"]) == 1, got
    assert got["urlPrefix"] == f"/nexus/endpoints/{got['id']}/services", got
    assert "createdTime" in got and "lastModifiedTime" not in got, got
    uuid.UUID(got["id"])
    text = ok(await cli("operator", "nexus", "endpoint", "get", "--name", endpoint))
    assert "Routes to the handlers" in text.stdout, text

    ok(await cli(
        "operator", "nexus", "endpoint", "update", "--name", endpoint,
        "--target-task-queue", "handlers-v2",
    ))
    updated = (await cli("operator", "nexus", "endpoint", "get", "--name", endpoint, json_out=True)).json()
    assert int(updated["version"]) == 2, updated
    assert updated["spec"]["target"]["worker"]["taskQueue"] == "handlers-v2", updated
    assert updated["createdTime"] == got["createdTime"], updated
    assert "lastModifiedTime" in updated, updated

    listed = (await cli("operator", "nexus", "endpoint", "list", json_out=True)).json()
    assert endpoint in [e["spec"]["name"] for e in listed], listed

    ok(await cli("operator", "nexus", "endpoint", "delete", "--name", endpoint))
    missing = await cli("operator", "nexus", "endpoint", "get", "--name", endpoint)
    assert missing.returncode != 0 and "not found" in missing.stderr, missing
    listed = (await cli("operator", "nexus", "endpoint", "list", json_out=True)).json() or []
    assert endpoint not in [e["spec"]["name"] for e in listed], listed


async def test_the_cli_creates_external_targets_and_sees_refusals(cli) -> None:
    endpoint = name()
    ok(await cli(
        "operator", "nexus", "endpoint", "create", "--name", endpoint,
        "--target-url", "https://handlers.example.com/nexus",
    ))
    got = (await cli("operator", "nexus", "endpoint", "get", "--name", endpoint, json_out=True)).json()
    assert got["spec"]["target"]["external"]["url"] == "https://handlers.example.com/nexus", got

    taken = await cli(
        "operator", "nexus", "endpoint", "create", "--name", endpoint,
        "--target-namespace", "default", "--target-task-queue", "tq",
    )
    assert taken.returncode != 0 and "already registered" in taken.stderr, taken
    bad_name = await cli(
        "operator", "nexus", "endpoint", "create", "--name", "not_valid",
        "--target-namespace", "default", "--target-task-queue", "tq",
    )
    assert bad_name.returncode != 0 and "endpoint name must match the regex" in bad_name.stderr, bad_name
    no_namespace = await cli(
        "operator", "nexus", "endpoint", "create", "--name", name(),
        "--target-namespace", "no-such-namespace", "--target-task-queue", "tq",
    )
    assert no_namespace.returncode != 0, no_namespace
    assert "Namespace no-such-namespace is not found" in no_namespace.stderr, no_namespace
    ftp = await cli(
        "operator", "nexus", "endpoint", "create", "--name", name(),
        "--target-url", "ftp://handlers.example.com",
    )
    assert ftp.returncode != 0 and "expected http or https" in ftp.stderr, ftp


async def test_versions_guard_updates_and_deletes(client: Client) -> None:
    ops = client.operator_service
    created = (await ops.create_nexus_endpoint(
        CreateNexusEndpointRequest(spec=worker_spec(name(), "tq"))
    )).endpoint
    with pytest.raises(RPCError) as stale:
        await ops.update_nexus_endpoint(UpdateNexusEndpointRequest(
            id=created.id, version=created.version + 1, spec=created.spec,
        ))
    assert stale.value.status == RPCStatusCode.FAILED_PRECONDITION, stale.value
    assert "version mismatch" in stale.value.message
    updated = (await ops.update_nexus_endpoint(UpdateNexusEndpointRequest(
        id=created.id, version=created.version, spec=worker_spec(created.spec.name, "tq2"),
    ))).endpoint
    assert updated.version == created.version + 1
    with pytest.raises(RPCError) as old:
        await ops.delete_nexus_endpoint(DeleteNexusEndpointRequest(id=created.id, version=created.version))
    assert old.value.status == RPCStatusCode.FAILED_PRECONDITION, old.value
    with pytest.raises(RPCError) as malformed:
        await ops.get_nexus_endpoint(GetNexusEndpointRequest(id="abc"))
    assert malformed.value.status == RPCStatusCode.INVALID_ARGUMENT, malformed.value
    assert "malformed endpoint ID" in malformed.value.message
    await ops.delete_nexus_endpoint(DeleteNexusEndpointRequest(id=created.id, version=updated.version))
    with pytest.raises(RPCError) as gone:
        await ops.get_nexus_endpoint(GetNexusEndpointRequest(id=created.id))
    assert gone.value.status == RPCStatusCode.NOT_FOUND, gone.value
    with pytest.raises(RPCError) as page:
        await ops.list_nexus_endpoints(ListNexusEndpointsRequest(page_size=1001))
    assert page.value.status == RPCStatusCode.INVALID_ARGUMENT, page.value


async def test_endpoints_survive_a_sigkill(tmp_path: Path) -> None:
    """An acknowledged create, update and delete are all there after the server is killed
    with SIGKILL and started again on the same data directory."""
    server = launch_durin(tmp_path)
    try:
        await _wait_until_serving(server.address, server.process)
        ops = (await Client.connect(server.address)).operator_service
        kept = (await ops.create_nexus_endpoint(
            CreateNexusEndpointRequest(spec=worker_spec(name(), "tq"))
        )).endpoint
        kept = (await ops.update_nexus_endpoint(UpdateNexusEndpointRequest(
            id=kept.id, version=kept.version, spec=worker_spec(kept.spec.name, "tq-after"),
        ))).endpoint
        dropped = (await ops.create_nexus_endpoint(
            CreateNexusEndpointRequest(spec=worker_spec(name(), "tq"))
        )).endpoint
        await ops.delete_nexus_endpoint(DeleteNexusEndpointRequest(id=dropped.id, version=dropped.version))
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)

        restarted = launch_again(tmp_path, list(server.process.args))
        try:
            await _wait_until_serving(server.address, restarted)
            ops = (await Client.connect(server.address)).operator_service
            listed = (await ops.list_nexus_endpoints(ListNexusEndpointsRequest())).endpoints
            assert [(e.id, e.version, e.spec.target.worker.task_queue) for e in listed] == [
                (kept.id, 2, "tq-after")
            ], listed
        finally:
            _stop(restarted)
    finally:
        _stop(server.process)


def launch_again(base: Path, cmd: list[str]) -> subprocess.Popen:
    """The same command (address and data directory) again, logging beside the first run."""
    log = open(base / "durin-restarted.log", "wb")
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
