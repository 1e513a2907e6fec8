"""The official Temporal Web UI against Durin, in a real browser.

`durin dev --ui-port` starts Temporal's UI server (built once by `scripts/ui-server build`) beside
the engine; an SDK worker runs workflows; headless Chromium (Debian's package, driven by
Playwright) opens the workflow list, a completed and a running workflow, signals and terminates
one from the UI, sends an update, resets a completed run, terminates one with a bulk action, and
opens a schedule, worker deployments, and standalone activities (the list and one's details).
Every API call the page makes is watched: one that fails
fails the test. Screenshots are saved in $DURIN_UI_SHOTS (default: the test's tmp directory);
docs/ui.md shows some.
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from contextlib import asynccontextmanager
from urllib.parse import quote
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, Response, async_playwright, expect
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)
from temporalio.runtime import Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Worker

from conftest import _free_port, _stop, _wait_until_serving, launch_durin
from durin_workflows import EchoWorkflow, GreetingWorkflow, compose_greeting
from more_workflows import Carrier
from test_versioning import both_versions_polled, set_current, set_ramping, two_versions
from waiting import eventually

UI_SERVER_VERSION = "v2.54.1"  # the pin of tests/ui/server/go.mod
UI_TIMEOUT_MS = 20_000
expect.set_options(timeout=UI_TIMEOUT_MS)


def ui_server_binary() -> Path:
    explicit = os.environ.get("DURIN_UI_SERVER")
    cache = Path(os.environ.get("DURIN_UI_CACHE", Path.home() / ".cache/durin/ui"))
    path = Path(explicit) if explicit else cache / UI_SERVER_VERSION / "ui-server"
    if not path.is_file():
        pytest.fail(f"no Temporal UI server at {path}: run scripts/ui-server build", pytrace=False)
    return path


def chromium() -> str:
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(f"no Chromium at {path}: apt-get install chromium (scripts/test does)", pytrace=False)
    return path


@pytest.fixture
async def durin_with_ui(tmp_path: Path):
    """A durin dev with the UI beside it: (gRPC address, UI base URL)."""
    ui_server_binary()
    ui_port = _free_port()
    server = launch_durin(tmp_path, "--ui-port", str(ui_port))
    proc, address, log_path = server.process, server.address, server.log_path
    try:
        await _wait_until_serving(address, proc)
        base = f"http://127.0.0.1:{ui_port}"

        async def ui_healthy() -> bool:
            try:
                with await asyncio.to_thread(urllib.request.urlopen, f"{base}/healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        await eventually(ui_healthy, f"the UI server on {base} (durin log: {log_path})")
        yield address, base
    finally:
        _stop(proc)


class NetworkLog:
    """API calls of the page that failed. Long polls cut short by a navigation are not failures."""

    def __init__(self, page: Page) -> None:
        self.failures: list[str] = []
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)

    def _response(self, response: Response) -> None:
        if "/api/v1/" in response.url and response.status >= 400:
            self.failures.append(f"{response.status} {response.request.method} {response.url}")

    def _request_failed(self, request) -> None:
        if "/api/v1/" in request.url and request.failure != "net::ERR_ABORTED":
            self.failures.append(f"{request.failure} {request.method} {request.url}")


@asynccontextmanager
async def browser_page():
    """Headless Chromium with one page, and the log of the page's failed API calls."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page, NetworkLog(page)
        finally:
            await browser.close()


async def test_the_web_ui_shows_and_acts_on_workflows_and_schedules(durin_with_ui, unique: str, tmp_path: Path) -> None:
    address, base = durin_with_ui
    shots = Path(os.environ.get("DURIN_UI_SHOTS", tmp_path / "ui-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    # Workers that heartbeat every second (the SDK's default is a minute), for the Workers page.
    runtime = Runtime(telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=1))
    client = await Client.connect(address, runtime=runtime)
    tq = f"ui-{unique}"
    workflows = [EchoWorkflow, GreetingWorkflow, Carrier]
    async with Worker(client, task_queue=tq, workflows=workflows, activities=[compose_greeting]):
        echo = await client.start_workflow(EchoWorkflow.run, "hello", id=f"echo-{unique}", task_queue=tq)
        assert await echo.result() == "echo:hello"
        signalled = await client.start_workflow(
            GreetingWorkflow.run, "Ada", id=f"greet-{unique}", task_queue=tq,
            static_summary="Greets Ada", static_details="Waits for **finish** and **release**.",
        )
        doomed = await client.start_workflow(GreetingWorkflow.run, "Bob", id=f"doomed-{unique}", task_queue=tq)
        in_bulk = await client.start_workflow(GreetingWorkflow.run, "Cy", id=f"bulk-{unique}", task_queue=tq)
        carrier = await client.start_workflow(Carrier.run, id=f"carrier-{unique}", task_queue=tq)
        for handle in (signalled, doomed, in_bulk):
            await eventually(lambda h=handle: _phase_is(h, "waiting"), f"{handle.id} waiting for its signal")
        schedule_id = f"nightly-{unique}"
        await client.create_schedule(
            schedule_id,
            Schedule(
                action=ScheduleActionStartWorkflow(EchoWorkflow.run, "nightly", id=f"nightly-run-{unique}", task_queue=tq),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=24))]),
                state=ScheduleState(paused=True, note="kept paused by the UI test"),
            ),
        )

        async with browser_page() as (page, network):

            # The list: every workflow, with the count the UI asks for by status.
            await page.goto(f"{base}/namespaces/default/workflows")
            for handle in (echo, signalled, doomed, in_bulk, carrier):
                await expect(page.get_by_role("link", name=handle.id)).to_be_visible()
            await expect(page.get_by_text(re.compile(r"^\s*5 Workflows\s*$"))).to_be_visible()
            await page.screenshot(path=shots / "workflows.png")

            # A completed workflow: its result, and its events in the history.
            await page.goto(f"{base}/namespaces/default/workflows/echo-{unique}")
            await expect(page.get_by_test_id("execution-status")).to_have_text(re.compile("Completed", re.I))
            await expect(page.get_by_text('"echo:hello"')).to_be_visible()
            await page.get_by_role("tab", name=re.compile("Event History")).click()
            await expect(page.get_by_text(re.compile("Workflow Execution Completed", re.I)).first).to_be_visible()
            await page.screenshot(path=shots / "completed.png", full_page=True)

            # Reset from the UI to its workflow task: a new run that completes again.
            await page.get_by_role("button", name="Reset").first.click()
            dialog = page.get_by_role("dialog", name="Reset Workflow")
            await dialog.get_by_test_id("workflow-reset-event-id-select-button").click()
            await dialog.get_by_role("option", name=re.compile("WorkflowTaskCompleted")).click()
            await dialog.get_by_test_id("reset-reason").fill("reset from the UI")
            await dialog.get_by_role("button", name="Confirm").click()

            async def reset_run_completed() -> bool:
                latest = await client.get_workflow_handle(echo.id).describe()
                return latest.run_id != echo.result_run_id and latest.status == WorkflowExecutionStatus.COMPLETED

            await eventually(reset_run_completed, "the UI's reset to run the workflow again")

            # A running workflow: signalled from the UI, seen by the workflow.
            await page.goto(f"{base}/namespaces/default/workflows/greet-{unique}")
            await expect(page.get_by_test_id("execution-status")).to_have_text(re.compile("Running", re.I))
            # The summary and details given at start (user metadata).
            await page.get_by_role("tab", name="User Metadata").click()
            # (Rendered as Markdown, each in its own frame.)
            rendered = page.frame_locator("main iframe")
            await expect(rendered.first.get_by_text("Greets Ada")).to_be_visible()
            await expect(rendered.nth(1).locator("strong", has_text="finish")).to_be_visible()
            await page.screenshot(path=shots / "running.png", full_page=True)
            # Its call stack, from the `__stack_trace` query the SDK answers.
            await page.get_by_role("tab", name="Call Stack").click()
            await expect(page.get_by_text(re.compile(r"Stack for .*GreetingWorkflow")).first).to_be_visible()
            await page.get_by_role("button", name="More Actions").click()
            await page.get_by_test_id("signal-button").locator("visible=true").click()
            dialog = page.get_by_role("dialog", name="Send a Signal")
            await dialog.get_by_test_id("signal-select-button").click()
            await dialog.get_by_role("option", name="finish").click()
            await dialog.locator(".cm-content").fill('"from the UI"')
            await dialog.get_by_role("button", name="Submit").click()
            await eventually(lambda: _phase_is(signalled, "signalled", "from the UI"), "the UI's signal to arrive")

            # An update from the UI, answered by the workflow.
            await page.goto(f"{base}/namespaces/default/workflows/{carrier.id}")
            await page.get_by_role("button", name="More Actions").click()
            await page.get_by_test_id("update-button").locator("visible=true").click()
            dialog = page.get_by_role("dialog", name="Send an Update")
            await dialog.get_by_test_id("update-select-button").click()
            await dialog.get_by_role("option", name="ping").click()
            await dialog.get_by_role("button", name="Submit").click()

            async def update_completed() -> bool:
                events = [e async for e in carrier.fetch_history_events()]
                return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED for e in events)

            await eventually(update_completed, "the UI's update to complete")

            # Terminated from the UI, with its reason.
            await page.goto(f"{base}/namespaces/default/workflows/doomed-{unique}")
            await page.get_by_role("button", name="More Actions").click()
            await page.get_by_test_id("terminate-button").locator("visible=true").click()
            dialog = page.get_by_role("dialog", name="Terminate Workflow")
            await dialog.get_by_test_id("workflow-termination-reason").fill("stopped from the UI")
            await dialog.get_by_role("button", name="Terminate").click()

            async def terminated() -> bool:
                return (await doomed.describe()).status == WorkflowExecutionStatus.TERMINATED

            await eventually(terminated, "the UI's terminate to end the run")
            await expect(page.get_by_test_id("execution-status")).to_have_text(re.compile("Terminated", re.I))

            # A bulk terminate from the list: a batch operation over the selected row.
            await page.goto(f"{base}/namespaces/default/workflows")
            row = page.locator("tr", has=page.get_by_role("link", name=in_bulk.id))
            await row.locator("input[type=checkbox]").check(force=True)
            await page.get_by_test_id("bulk-terminate-button").click()
            dialog = page.locator("dialog[open]")
            await dialog.locator("input[type=text], input:not([type])").first.fill("bulk from the UI")
            await dialog.get_by_role("button", name="Terminate").click()

            async def bulk_terminated() -> bool:
                return (await in_bulk.describe()).status == WorkflowExecutionStatus.TERMINATED

            await eventually(bulk_terminated, "the UI's batch terminate")

            # Started from the UI's form, run by the worker.
            await page.goto(f"{base}/namespaces/default/workflows/start-workflow")
            await page.get_by_test_id("workflowId").fill(f"started-{unique}")
            await page.get_by_test_id("taskQueue").fill(tq)
            await page.get_by_test_id("workflowType").fill("EchoWorkflow")
            await page.locator("main .cm-content").fill('"from the UI"')
            await page.get_by_test_id("start-workflow-button").click()

            async def started_by_the_ui() -> str | None:
                try:
                    return await client.get_workflow_handle(f"started-{unique}").result()
                except RPCError:
                    return None

            assert await eventually(started_by_the_ui, "the workflow the UI started") == "echo:from the UI"

            # A schedule: listed, and its page shows the action and its state.
            await page.goto(f"{base}/namespaces/default/schedules")
            await expect(page.get_by_role("link", name=schedule_id)).to_be_visible()
            await page.goto(f"{base}/namespaces/default/schedules/{schedule_id}")
            await expect(page.get_by_text("EchoWorkflow").first).to_be_visible()
            await expect(page.get_by_text(re.compile("^paused$", re.I)).first).to_be_visible()
            await page.screenshot(path=shots / "schedule.png", full_page=True)

            # Unpaused and triggered from the UI (PatchSchedule): the triggered run completes.
            await page.get_by_role("button", name="Unpause").click()
            dialog = page.locator("dialog[open]")
            await dialog.get_by_test_id("pause-reason").fill("unpaused from the UI")
            await dialog.get_by_test_id("confirm-modal-button").click()
            schedule = client.get_schedule_handle(schedule_id)

            async def unpaused() -> bool:
                return not (await schedule.describe()).schedule.state.paused

            await eventually(unpaused, "the UI's unpause")
            await page.get_by_role("button", name="Schedule Actions").click()
            await page.get_by_test_id("trigger-schedule").click()
            await page.locator("dialog[open]").get_by_test_id("confirm-modal-button").click()

            async def triggered_run_completed() -> bool:
                info = (await schedule.describe()).info
                if not info.recent_actions:
                    return False
                run = client.get_workflow_handle(info.recent_actions[0].action.workflow_id)
                return (await run.describe()).status == WorkflowExecutionStatus.COMPLETED

            await eventually(triggered_run_completed, "the run the UI triggered to complete")

            # Created from the UI's form: a daily schedule of the echo workflow.
            made_id = f"ui-made-{unique}"
            await page.goto(f"{base}/namespaces/default/schedules/create")
            await page.get_by_test_id("schedule-name-input").fill(made_id)
            await page.get_by_test_id("schedule-type-input").fill("EchoWorkflow")
            await page.get_by_test_id("schedule-workflow-id-input").fill(f"made-run-{unique}")
            await page.get_by_test_id("schedule-task-queue-input").fill(tq)
            await page.get_by_role("button", name="Daily").click()
            await page.get_by_test_id("create-schedule-button").click()

            async def made() -> bool:
                try:
                    described = await client.get_schedule_handle(made_id).describe()
                except RPCError:
                    return False
                return described.schedule.action.workflow == "EchoWorkflow" and bool(described.info.next_action_times)

            await eventually(made, "the schedule the UI created")

            # Deleted from the UI.
            await page.goto(f"{base}/namespaces/default/schedules/{schedule_id}")
            await page.get_by_role("button", name="Schedule Actions").click()
            await page.get_by_test_id("delete-schedule").click()
            await page.locator("dialog[open]").get_by_test_id("confirm-modal-button").click()

            async def deleted() -> bool:
                return schedule_id not in [s.id async for s in await client.list_schedules()]

            await eventually(deleted, "the UI's delete of the schedule")

            # The other pages load without a failing call: namespaces, workers (heartbeats),
            # batch operations, the task queue's pollers.
            await page.goto(f"{base}/namespaces")
            await expect(page.get_by_role("link", name="default").first).to_be_visible()
            await page.goto(f"{base}/namespaces/default/workers")
            await expect(page.get_by_text(tq).first).to_be_visible()
            await page.goto(f"{base}/namespaces/default/batch-operations")
            await page.goto(f"{base}/namespaces/default/task-queues/{tq}")
            await expect(page.get_by_text(re.compile(r"\d+@")).first).to_be_visible()
            await page.screenshot(path=shots / "task-queue.png", full_page=True)

        assert network.failures == [], "API calls of the UI failed:\n" + "\n".join(network.failures)


async def _phase_is(handle, phase: str, value: str = "") -> bool:
    state = await handle.query(GreetingWorkflow.state)
    return state.startswith(f"{phase}:") and state.endswith(f":{value}")


async def test_the_web_ui_shows_worker_deployments_and_their_versions(durin_with_ui, unique: str, tmp_path: Path) -> None:
    """The Deployments pages: the deployments list, and one deployment's versions with the
    current and the ramping one. Names with a slash (`<namespace>/<Worker>`, what a Worker
    with a rollout and temporal-worker-controller name them) open too."""
    address, base = durin_with_ui
    shots = Path(os.environ.get("DURIN_UI_SHOTS", tmp_path / "ui-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    client = await Client.connect(address)
    plain, slashed = f"shop-{unique}", f"team-a/orders-{unique}"
    async with two_versions(client, plain, f"ui-shop-{unique}"), two_versions(client, slashed, f"ui-orders-{unique}"):
        for deployment in (plain, slashed):
            polled = await both_versions_polled(client, deployment)
            current = await set_current(client, deployment, "1.0", polled.conflict_token)
            await set_ramping(client, deployment, "2.0", 25.0, current.conflict_token)

        async with browser_page() as (page, network):

            await page.goto(f"{base}/namespaces/default/worker-deployments")
            for deployment in (plain, slashed):
                await expect(page.get_by_text(deployment).first).to_be_visible()
            await page.screenshot(path=shots / "worker-deployments.png", full_page=True)

            for deployment in (plain, slashed):
                await page.goto(f"{base}/namespaces/default/worker-deployments/{quote(deployment, safe='')}")
                # One row per version, with its routing; its link lists the workflows on it.
                await expect(page.get_by_role("row", name=re.compile(r"^1\.0 Current"))).to_be_visible()
                await expect(page.get_by_role("row", name=re.compile(r"^2\.0 Ramping 25%"))).to_be_visible()
            await page.screenshot(path=shots / "worker-deployment.png", full_page=True)
        assert network.failures == [], "API calls of the UI failed:\n" + "\n".join(network.failures)


async def test_the_web_ui_lists_and_shows_standalone_activities(durin_with_ui, unique: str, tmp_path: Path) -> None:
    """The Activities page: standalone activities in the list, and one's details with its
    status and result."""
    address, base = durin_with_ui
    shots = Path(os.environ.get("DURIN_UI_SHOTS", tmp_path / "ui-shots"))
    shots.mkdir(parents=True, exist_ok=True)
    client = await Client.connect(address)
    tq = f"ui-activities-{unique}"
    done, waiting = f"greet-{unique}", f"queued-{unique}"
    async with Worker(client, task_queue=tq, activities=[compose_greeting]):
        handle = await client.start_activity(
            compose_greeting, "Durin", id=done, task_queue=tq,
            start_to_close_timeout=timedelta(seconds=10),
        )
        assert await handle.result() == "Hello, Durin!"
    queued = await client.start_activity(
        compose_greeting, "later", id=waiting, task_queue=f"nobody-{unique}",
        start_to_close_timeout=timedelta(seconds=10),
    )

    async with browser_page() as (page, network):
        await page.goto(f"{base}/namespaces/default/activities")
        await expect(page.get_by_text(done).first).to_be_visible()
        await expect(page.get_by_text(waiting).first).to_be_visible()
        await page.screenshot(path=shots / "standalone-activities.png", full_page=True)

        await page.goto(f"{base}/namespaces/default/activities/{done}/{handle.run_id}/details")
        await expect(page.get_by_text("Completed").first).to_be_visible()
        await expect(page.get_by_text("Hello, Durin!").first).to_be_visible()
        await page.screenshot(path=shots / "standalone-activity.png", full_page=True)
    assert network.failures == [], "API calls of the UI failed:\n" + "\n".join(network.failures)
    await queued.terminate()
