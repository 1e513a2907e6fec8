"""The caller workflow of test_nexus_http.py (a module of its own, so the workflow sandbox
imports nothing of the test harness)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import NexusOperationError


@workflow.defn
class LedgerCaller:
    """Calls an operation of the `ledger` service; returns its result, or how it failed."""

    @workflow.run
    async def run(self, endpoint: str, operation: str, arg: str, cancel: bool) -> str:
        client = workflow.create_nexus_client(service="ledger", endpoint=endpoint)
        try:
            handle = await client.start_operation(
                operation, arg, output_type=str, schedule_to_close_timeout=timedelta(seconds=30),
            )
            if cancel:
                handle.cancel()
            return await handle
        except NexusOperationError as err:
            cause = err.__cause__
            return f"{type(cause).__name__}: {cause}"
