"""Namespaces: register one through the raw gRPC API, inspect it, and run a workflow in it.

Namespaces isolate workflows, task queues and schedules. The script registers a fresh namespace
with `client.workflow_service.register_namespace` (with a 1-day workflow execution retention
period), reads it back with `describe_namespace` and `list_namespaces`, then connects a second
client to it and runs a workflow there. The workflow is not visible from the original namespace.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/namespaces.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid

from google.protobuf.duration_pb2 import Duration
from temporalio import workflow
from temporalio.api.enums.v1 import NamespaceState
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    ListNamespacesRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"hello {name} from namespace {workflow.info().namespace}"


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    namespace = f"examples-{uuid.uuid4().hex[:8]}"

    # Register: the raw WorkflowService RPC, as `temporal operator namespace create` sends it.
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            description="created by examples/python/namespaces.py",
            workflow_execution_retention_period=Duration(seconds=24 * 60 * 60),
        )
    )
    print(f"registered namespace {namespace}")
    try:
        await client.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        ))
        raise AssertionError("registering the same namespace twice should fail")
    except RPCError as err:
        print(f"registering it again fails: {err.status.name}")
        assert err.status == RPCStatusCode.ALREADY_EXISTS, err.status

    # Describe.
    desc = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    retention = desc.config.workflow_execution_retention_ttl.ToTimedelta()
    state = NamespaceState.Name(desc.namespace_info.state)
    print(f"describe: {state}, retention {retention}, "
          f"description {desc.namespace_info.description!r}")
    assert desc.namespace_info.name == namespace
    assert desc.namespace_info.state == NamespaceState.NAMESPACE_STATE_REGISTERED, state
    assert desc.namespace_info.description == "created by examples/python/namespaces.py"
    assert retention.total_seconds() == 24 * 60 * 60, retention

    # List (paged).
    names: list[str] = []
    page_token = b""
    while True:
        page = await client.workflow_service.list_namespaces(
            ListNamespacesRequest(page_size=100, next_page_token=page_token)
        )
        names += [ns.namespace_info.name for ns in page.namespaces]
        page_token = page.next_page_token
        if not page_token:
            break
    print(f"list: {len(names)} namespaces, including {namespace} and {NAMESPACE}")
    assert namespace in names and NAMESPACE in names, names

    # A second client for the new namespace; worker and workflow live there.
    ns_client = await Client.connect(ADDRESS, namespace=namespace)
    task_queue = f"namespaces-{uuid.uuid4().hex[:8]}"
    workflow_id = f"hello-{uuid.uuid4().hex[:8]}"
    async with Worker(ns_client, task_queue=task_queue, workflows=[HelloWorkflow]):
        result = await ns_client.execute_workflow(
            HelloWorkflow.run, "world", id=workflow_id, task_queue=task_queue
        )
    print(f"workflow in {namespace}: {result!r}")
    assert result == f"hello world from namespace {namespace}", result

    # The same workflow id does not exist in the original namespace.
    try:
        await client.get_workflow_handle(workflow_id).describe()
        raise AssertionError(f"{workflow_id} should not be visible in {NAMESPACE}")
    except RPCError as err:
        print(f"describe {workflow_id} in {NAMESPACE}: {err.status.name}")
        assert err.status == RPCStatusCode.NOT_FOUND, err.status
    print("namespaces: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"namespaces: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
