"""Signals: custom signal names, signal-with-start, and a workflow signalling another workflow.

A `GreetingWorkflow` collects greetings sent to it through a signal named "add-greeting" until a
signal named "finish" arrives. The script
  1. starts it with signal-with-start (the first greeting arrives together with the start),
  2. signal-with-starts it again: the workflow is already running, so it is only signalled,
  3. signals it from client code by the custom name,
  4. runs a `SenderWorkflow` that signals it from inside another workflow through
     `workflow.get_external_workflow_handle(...)`, including the "finish" signal.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/signals.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@workflow.defn
class GreetingWorkflow:
    def __init__(self) -> None:
        self.greetings: list[str] = []
        self.finished = False

    @workflow.run
    async def run(self) -> list[str]:
        # Durable wait: the workflow sleeps (costing nothing) until "finish" is signalled.
        await workflow.wait_condition(lambda: self.finished)
        return self.greetings

    # The signal's wire name is "add-greeting", not the Python method name.
    @workflow.signal(name="add-greeting")
    def add_greeting(self, greeting: str) -> None:
        self.greetings.append(greeting)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.finished = True


@workflow.defn
class SenderWorkflow:
    @workflow.run
    async def run(self, target_workflow_id: str) -> str:
        # A handle to another workflow by id; signals go through the server like a client's.
        target = workflow.get_external_workflow_handle(target_workflow_id)
        await target.signal("add-greeting", "hello from SenderWorkflow")
        await target.signal(GreetingWorkflow.finish)  # typed form: name taken from the decorator
        return f"signalled {target_workflow_id}"


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"signals-{uuid.uuid4().hex[:8]}"
    greeting_id = f"greeting-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client, task_queue=task_queue, workflows=[GreetingWorkflow, SenderWorkflow]
    ):
        # 1. Signal-with-start: starts the workflow and delivers "add-greeting" atomically.
        handle = await client.start_workflow(
            GreetingWorkflow.run,
            id=greeting_id,
            task_queue=task_queue,
            start_signal="add-greeting",
            start_signal_args=["hello from signal-with-start"],
        )
        print(f"signal-with-start started {greeting_id} (run {handle.result_run_id})")

        # 2. Signal-with-start on a running workflow only signals it: same run, no new start.
        again = await client.start_workflow(
            GreetingWorkflow.run,
            id=greeting_id,
            task_queue=task_queue,
            start_signal="add-greeting",
            start_signal_args=["hello from a second signal-with-start"],
        )
        assert again.result_run_id == handle.result_run_id, (
            f"second signal-with-start should reuse run {handle.result_run_id}, "
            f"got {again.result_run_id}"
        )
        print("second signal-with-start signalled the same run")

        # 3. A signal from client code, by its custom name.
        await handle.signal("add-greeting", "hello from the client")

        # 4. Another workflow signals this one (and finishes it).
        sent = await client.execute_workflow(
            SenderWorkflow.run,
            greeting_id,
            id=f"sender-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
        print(f"SenderWorkflow: {sent}")

        greetings = await handle.result()
        print(f"GreetingWorkflow received: {greetings}")
        assert greetings == [
            "hello from signal-with-start",
            "hello from a second signal-with-start",
            "hello from the client",
            "hello from SenderWorkflow",
        ], greetings
    print("signals: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"signals: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
