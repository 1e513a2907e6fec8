"""Waiting for the server to get somewhere, in tests (a plain module the tests share)."""

from __future__ import annotations

import asyncio

import pytest

TIMEOUT_S = 20.0


async def eventually(check, what: str, timeout: float = TIMEOUT_S):
    """Awaits `check()` every 0.1 s until it returns something true, and returns that; fails
    the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
