"""Dynamic workflows, activities, signals and queries; a custom payload converter; and a payload
codec: the server stores only encoded bytes, and clients with the codec read plain values back."""

from __future__ import annotations

import dataclasses

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from dynamic_workflows import (
    AnyWorkflow,
    DoubleMoney,
    Money,
    MoneyConverter,
    Order,
    OrderWorkflow,
    XorCodec,
    any_activity,
    price,
)


async def test_dynamic_workflow_activity_signal_and_query(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    async with Worker(client, task_queue=tq, workflows=[AnyWorkflow], activities=[any_activity]):
        handle = await client.start_workflow("Anything", "seed", id=f"dyn-{unique}", task_queue=tq)
        await handle.signal("ping")
        # Any query name is answered by the dynamic query handler.
        for _ in range(50):
            state = await handle.query("whatever")
            if "ping" in state:
                break
        assert state == "whatever: ['ping']"
        await handle.signal("done")
        assert await handle.result() == "Anything-activity(seed) after ['ping', 'done']"


async def test_payload_codec_keeps_only_encoded_bytes_on_the_server(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    config = client.config()
    config["data_converter"] = dataclasses.replace(config["data_converter"], payload_codec=XorCodec())
    coded = Client(**config)
    async with Worker(coded, task_queue=tq, workflows=[OrderWorkflow], activities=[price]):
        result = await coded.execute_workflow(
            OrderWorkflow.run, Order(item="widget", quantity=3), id=f"codec-{unique}", task_queue=tq
        )
        assert result == "3 x widget = 21"
        # Read the raw history through a client without the codec: every payload is XOR-ed.
        history = await client.get_workflow_handle(f"codec-{unique}").fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        raw = started.input.payloads[0]
        assert raw.metadata["encoding"] == b"binary/xor"
        assert b"widget" not in raw.data
        completed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
        assert b"widget" not in completed[0].workflow_execution_completed_event_attributes.result.payloads[0].data
        decoded = await XorCodec().decode([raw])
        assert b"widget" in decoded[0].data


async def test_custom_payload_converter_round_trips_its_own_encoding(client: Client, unique: str) -> None:
    tq = f"tq-{unique}"
    config = client.config()
    config["data_converter"] = dataclasses.replace(config["data_converter"], payload_converter_class=MoneyConverter)
    money_client = Client(**config)
    async with Worker(money_client, task_queue=tq, workflows=[DoubleMoney]):
        result = await money_client.execute_workflow(
            DoubleMoney.run, Money(150, "EUR"), id=f"money-{unique}", task_queue=tq
        )
        assert result == Money(300, "EUR")
        history = await client.get_workflow_handle(f"money-{unique}").fetch_history()
        raw_input = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
        assert raw_input.metadata["encoding"] == b"text/money"
        assert raw_input.data == b"150 EUR"
        completed = history.events[-1].workflow_execution_completed_event_attributes.result.payloads[0]
        assert (completed.metadata["encoding"], completed.data) == (b"text/money", b"300 EUR")
