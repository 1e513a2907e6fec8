"""Dynamic handlers and a payload codec for the Python tests (no pytest imports here, so the
SDK's workflow sandbox can load this module)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    PayloadCodec,
)


@activity.defn(dynamic=True)
async def any_activity(args: Sequence[RawValue]) -> str:
    name = activity.info().activity_type
    value = activity.payload_converter().from_payload(args[0].payload, str)
    return f"{name}({value})"


@workflow.defn(dynamic=True)
class AnyWorkflow:
    """Runs whatever type it is started as: calls an activity of the same name, then waits
    for any signal named `done`; every query name answers with the state."""

    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> str:
        value = workflow.payload_converter().from_payload(args[0].payload, str)
        result = await workflow.execute_activity(
            f"{workflow.info().workflow_type}-activity",
            value,
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.wait_condition(lambda: "done" in self.signals)
        return f"{result} after {self.signals}"

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self.signals.append(name)

    @workflow.query(dynamic=True)
    def any_query(self, name: str, args: Sequence[RawValue]) -> str:
        return f"{name}: {self.signals}"


class XorCodec(PayloadCodec):
    """A toy "encryption": every byte XOR 0x5A, marked with its own encoding."""

    KEY = 0x5A

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(metadata={"encoding": b"binary/xor"}, data=bytes(b ^ self.KEY for b in p.SerializeToString()))
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != b"binary/xor":
                out.append(p)
                continue
            inner = Payload()
            inner.ParseFromString(bytes(b ^ self.KEY for b in p.data))
            out.append(inner)
        return out


@dataclasses.dataclass
class Order:
    item: str
    quantity: int


@activity.defn
async def price(order: Order) -> int:
    return order.quantity * 7


@workflow.defn
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> str:
        total = await workflow.execute_activity(price, order, start_to_close_timeout=timedelta(seconds=30))
        return f"{order.quantity} x {order.item} = {total}"


@dataclasses.dataclass
class Money:
    cents: int
    currency: str


class MoneyPayloadConverter(EncodingPayloadConverter):
    """Encodes `Money` as compact text under an encoding of its own (`text/money`)."""

    @property
    def encoding(self) -> str:
        return "text/money"

    def to_payload(self, value: Any) -> Payload | None:
        # By name: the workflow sandbox re-imports this module, so its Money is another class.
        if type(value).__name__ != "Money":
            return None
        return Payload(metadata={"encoding": self.encoding.encode()}, data=f"{value.cents} {value.currency}".encode())

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        cents, currency = payload.data.decode().split(" ")
        return Money(int(cents), currency)


class MoneyConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        super().__init__(MoneyPayloadConverter(), *DefaultPayloadConverter.default_encoding_payload_converters)


@workflow.defn
class DoubleMoney:
    @workflow.run
    async def run(self, amount: Money) -> Money:
        return Money(amount.cents * 2, amount.currency)
