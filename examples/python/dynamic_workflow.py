"""Dynamic handlers: one workflow / activity / signal / query / update definition that answers
to any name not registered otherwise (`dynamic=True`).

The worker registers only catch-all definitions. The script starts a workflow of type
"OrderFulfilment" (no class has that name), signals, queries and updates it with made-up names,
and finally the workflow calls an activity of type "ChargeCard" (no function has that name). Dynamic
handlers receive their arguments as `RawValue`s and convert them with the payload converter.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/dynamic_workflow.py
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


@activity.defn(dynamic=True)
async def any_activity(args: Sequence[RawValue]) -> str:
    # The activity type the caller asked for is in the activity info.
    name = activity.info().activity_type
    first = activity.payload_converter().from_payload(args[0].payload, str)
    return f"{name}({first})"


@workflow.defn(dynamic=True)
class AnyWorkflow:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> str:
        wf_type = workflow.info().workflow_type
        order = workflow.payload_converter().from_payload(args[0].payload, str)
        await workflow.wait_condition(lambda: self.done)
        # Any activity name works: the dynamic activity picks it up.
        charged = await workflow.execute_activity(
            "ChargeCard", order, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{wf_type}: {self.events}, then {charged}"

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        values = [workflow.payload_converter().from_payload(a.payload, str) for a in args]
        self.events.append(f"signal {name}{values}")
        if name == "ship":
            self.done = True

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> str:
        return f"query {name}: {len(self.events)} events"

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> str:
        value = workflow.payload_converter().from_payload(args[0].payload, str)
        self.events.append(f"update {name}({value})")
        return f"update {name} applied"


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"dynamic-{uuid.uuid4().hex[:8]}"

    async with Worker(
        client, task_queue=task_queue, workflows=[AnyWorkflow], activities=[any_activity]
    ):
        # Start by type name: no workflow class is called "OrderFulfilment".
        handle = await client.start_workflow(
            "OrderFulfilment", "order-42", id=f"dyn-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await handle.signal("gift-wrap", "blue paper")
        status = await handle.query("how-is-it-going")
        print(f"query how-is-it-going -> {status!r}")
        assert status.startswith("query how-is-it-going:"), status
        updated = await handle.execute_update("set-address", "1 Main St", result_type=str)
        print(f"update set-address -> {updated!r}")
        assert updated == "update set-address applied", updated
        await handle.signal("ship")

        result = await handle.result()
        print(f"result -> {result}")
        # Signals and the update in the order they were sent, then the activity.
        assert result == (
            "OrderFulfilment: [\"signal gift-wrap['blue paper']\", "
            "'update set-address(1 Main St)', 'signal ship[]'], then ChargeCard(order-42)"
        ), result
    print("dynamic_workflow: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"dynamic_workflow: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
