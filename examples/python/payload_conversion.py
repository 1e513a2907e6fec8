"""Payload conversion and a custom payload codec ("encryption" on the client side).

Every workflow/activity argument and result travels as a `Payload`: the payload converter turns
values into bytes (JSON here), and an optional `PayloadCodec` then transforms those bytes, e.g.
to encrypt or compress them, before they leave the process. `XorCodec` below XORs the whole
serialized payload with a key and marks it `encoding: binary/xor` (a stand-in for real
encryption such as AES-GCM: the server only ever stores ciphertext).

The script runs an order workflow (a dataclass argument, an activity call) with a client and
worker using the codec, then fetches the history with a plain client: the payloads there are
XOR-ed bytes, while the workflow and activity worked with plain values all along.

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/payload_conversion.py
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import temporalio.converter
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import PayloadCodec
from temporalio.worker import Worker

ADDRESS = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
NAMESPACE = os.environ.get("TEMPORAL_NAMESPACE", "default")


class XorCodec(PayloadCodec):
    """XORs each serialized payload with a key. Not real encryption; just shows the mechanics."""

    KEY = b"durin-example-key"
    ENCODING = b"binary/xor"

    def _xor(self, data: bytes) -> bytes:
        return bytes(b ^ self.KEY[i % len(self.KEY)] for i, b in enumerate(data))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": self.ENCODING}, data=self._xor(p.SerializeToString()))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") == self.ENCODING:
                out.append(Payload.FromString(self._xor(p.data)))
            else:
                out.append(p)  # not ours (e.g. written by a client without the codec)
        return out


@dataclass
class Order:
    item: str
    quantity: int


@activity.defn
async def price_order(order: Order) -> int:
    return order.quantity * 7  # the activity receives a decoded Order


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> str:
        # The workflow sees a plain Order, not ciphertext.
        total = await workflow.execute_activity(
            price_order, order, start_to_close_timeout=timedelta(seconds=10)
        )
        return f"{order.quantity} x {order.item} = {total}"


async def main() -> None:
    # A client (and so its worker) whose data converter runs payloads through the codec.
    converter = dataclasses.replace(temporalio.converter.default(), payload_codec=XorCodec())
    coded_client = await Client.connect(ADDRESS, namespace=NAMESPACE, data_converter=converter)
    plain_client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"codec-{uuid.uuid4().hex[:8]}"
    workflow_id = f"order-{uuid.uuid4().hex[:8]}"

    async with Worker(
        coded_client, task_queue=task_queue, workflows=[OrderWorkflow], activities=[price_order]
    ):
        result = await coded_client.execute_workflow(
            OrderWorkflow.run, Order("secret widget", 3), id=workflow_id, task_queue=task_queue
        )
    print(f"workflow result (decoded by the client): {result!r}")
    assert result == "3 x secret widget = 21", result

    # What the server stored: fetch the raw history.
    history = await plain_client.get_workflow_handle(workflow_id).fetch_history()
    stored = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            stored.append(("workflow input", event.workflow_execution_started_event_attributes.input.payloads[0]))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            stored.append(("activity input", event.activity_task_scheduled_event_attributes.input.payloads[0]))
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            stored.append(("activity result", event.activity_task_completed_event_attributes.result.payloads[0]))
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            stored.append(("workflow result", event.workflow_execution_completed_event_attributes.result.payloads[0]))
    assert [what for what, _ in stored] == [
        "workflow input", "activity input", "activity result", "workflow result"
    ], stored
    for what, payload in stored:
        encoding = payload.metadata["encoding"].decode()
        print(f"history {what}: encoding {encoding}, data {payload.data[:16].hex()}...")
        assert payload.metadata["encoding"] == XorCodec.ENCODING, payload.metadata
        assert b"widget" not in payload.data, payload.data

    # With the codec, the stored bytes decode back to the original JSON payloads and values.
    [workflow_input] = await XorCodec().decode([stored[0][1]])
    print(f"decoded workflow input: encoding {workflow_input.metadata['encoding'].decode()}, "
          f"data {workflow_input.data.decode()}")
    assert workflow_input.metadata["encoding"] == b"json/plain", workflow_input.metadata
    [order] = await coded_client.data_converter.decode([stored[0][1]], [Order])
    assert order == Order("secret widget", 3), order

    # A client without the codec cannot read the result: it sees an unknown encoding.
    try:
        await plain_client.get_workflow_handle(workflow_id).result()
        raise AssertionError("a client without the codec should not decode the result")
    except Exception as err:
        if isinstance(err, AssertionError):
            raise
        print(f"plain client reading the result fails: {type(err).__name__}: {err}")
    print("payload_conversion: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"payload_conversion: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
