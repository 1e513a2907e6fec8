"""Queries: read the state of a running workflow without changing it.

A `ShoppingCartWorkflow` keeps a cart that signals fill. The script queries it
  - with a plain query (`items`),
  - with a query that takes an argument (`count_of(item)`),
  - with a query registered under a custom name ("total-items"),
before and after signals, and finally after the workflow has completed (a query on a closed
workflow replays its history on a worker to answer).

Run against a Temporal-compatible server (e.g. `durin dev`):
    TEMPORAL_ADDRESS=127.0.0.1:7233 python examples/python/queries.py
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
class ShoppingCartWorkflow:
    def __init__(self) -> None:
        self.cart: list[str] = []
        self.checked_out = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.checked_out)
        return len(self.cart)

    @workflow.signal
    def add(self, item: str) -> None:
        self.cart.append(item)

    @workflow.signal
    def checkout(self) -> None:
        self.checked_out = True

    # Query handlers must not mutate state or block; they just read it.
    @workflow.query
    def items(self) -> list[str]:
        return list(self.cart)

    @workflow.query
    def count_of(self, item: str) -> int:  # a query with an argument
        return self.cart.count(item)

    @workflow.query(name="total-items")  # a custom query name
    def total(self) -> int:
        return len(self.cart)


async def main() -> None:
    client = await Client.connect(ADDRESS, namespace=NAMESPACE)
    task_queue = f"queries-{uuid.uuid4().hex[:8]}"

    async with Worker(client, task_queue=task_queue, workflows=[ShoppingCartWorkflow]):
        handle = await client.start_workflow(
            ShoppingCartWorkflow.run, id=f"cart-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )

        items = await handle.query(ShoppingCartWorkflow.items)
        print(f"query items on a fresh cart -> {items}")
        assert items == [], items

        for item in ["apple", "pear", "apple"]:
            await handle.signal(ShoppingCartWorkflow.add, item)

        # Signals accepted before a query are applied before the query is answered.
        items = await handle.query(ShoppingCartWorkflow.items)
        apples = await handle.query(ShoppingCartWorkflow.count_of, "apple")
        kiwis = await handle.query(ShoppingCartWorkflow.count_of, "kiwi")
        total = await handle.query("total-items")  # by name, untyped
        print(f"query items -> {items}")
        print(f"query count_of('apple') -> {apples}, count_of('kiwi') -> {kiwis}")
        print(f"query 'total-items' -> {total}")
        assert items == ["apple", "pear", "apple"], items
        assert (apples, kiwis, total) == (2, 0, 3), (apples, kiwis, total)

        await handle.signal(ShoppingCartWorkflow.checkout)
        result = await handle.result()
        assert result == 3, result

        # Completed workflows can still be queried: a worker replays the history to answer.
        final = await handle.query(ShoppingCartWorkflow.items)
        print(f"query items after completion -> {final}")
        assert final == ["apple", "pear", "apple"], final
    print("queries: OK")


if __name__ == "__main__":
    exit_code = 0
    try:
        asyncio.run(main())
    except Exception as err:  # print the reason and exit non-zero
        traceback.print_exc()
        print(f"queries: FAILED: {err!r}", file=sys.stderr)
        exit_code = 1
    # Exit without interpreter teardown: the SDK's Rust runtime threads can abort a finalizing
    # interpreter ("PyGILState_Release ... must be current", temporalio/sdk-python#300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
