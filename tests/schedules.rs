//! Schedules through the official Rust SDK's client: every RPC, every overlap policy, pause on
//! failure, limited actions, conflict tokens, and catch-up after a SIGKILL. Workflows started
//! by a schedule run on a real SDK worker and are checked in the engine, not just in describe.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::{DurinServer, NAMESPACE, new_worker, sdk_runtime, unique, with_worker};
use temporalio_client::{
    Client,
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowType},
    enums::v1::{ScheduleOverlapPolicy, WorkflowExecutionStatus},
    schedule::v1::{
        BackfillRequest, IntervalSpec, Schedule, ScheduleAction, SchedulePatch, SchedulePolicies,
        ScheduleSpec, ScheduleState, TriggerImmediatelyRequest, schedule_action,
    },
    taskqueue::v1::TaskQueue,
    workflow::v1::NewWorkflowExecutionInfo,
    workflowservice::v1::*,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult, WorkflowTermination,
};

#[workflow]
#[derive(Default)]
pub struct EchoWorkflow;

#[workflow_methods]
impl EchoWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, text: String) -> WorkflowResult<String> {
        Ok(text)
    }
}

/// Runs until signalled `release` (or cancelled, which it reports as Canceled).
#[workflow]
#[derive(Default)]
pub struct BlockerWorkflow {
    released: bool,
}

#[workflow_methods]
impl BlockerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let cancelled = ctx.cancellation_token();
        tokio::select! {
            r = ctx.wait_condition(|s| s.released) => { r?; Ok("released".into()) }
            _ = cancelled.cancelled() => Err(WorkflowTermination::cancelled()),
        }
    }

    #[signal]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.released = true;
    }
}

#[workflow]
#[derive(Default)]
pub struct FailingWorkflow;

#[workflow_methods]
impl FailingWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Err(temporalio_sdk::ApplicationFailure::non_retryable("always fails").into())
    }
}

fn json(v: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(v).expect("json"),
            ..Default::default()
        }],
    }
}

fn schedule(
    workflow: &str,
    wf_id: &str,
    tq: &str,
    spec: ScheduleSpec,
    policies: SchedulePolicies,
    state: ScheduleState,
) -> Schedule {
    Schedule {
        spec: Some(spec),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(
                NewWorkflowExecutionInfo {
                    workflow_id: wf_id.to_string(),
                    workflow_type: Some(WorkflowType {
                        name: workflow.to_string(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: tq.to_string(),
                        ..Default::default()
                    }),
                    input: (workflow == "EchoWorkflow").then(|| json("tick")),
                    ..Default::default()
                },
            )),
        }),
        policies: Some(policies),
        state: Some(state),
    }
}

fn every(secs: i64) -> ScheduleSpec {
    ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(prost_wkt_types::Duration {
                seconds: secs,
                nanos: 0,
            }),
            phase: None,
        }],
        ..Default::default()
    }
}

fn yearly() -> ScheduleSpec {
    ScheduleSpec {
        cron_string: vec!["0 0 1 1 *".into()],
        ..Default::default()
    }
}

fn ts(rfc3339: &str) -> prost_wkt_types::Timestamp {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time");
    prost_wkt_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

struct Api {
    raw: Client,
}

impl Api {
    async fn create(
        &self,
        id: &str,
        schedule: Schedule,
    ) -> Result<CreateScheduleResponse, temporalio_client::tonic::Status> {
        let mut raw = self.raw.clone();
        WorkflowService::create_schedule(
            &mut raw,
            Request::new(CreateScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.into(),
                schedule: Some(schedule),
                identity: "test".into(),
                request_id: unique("req"),
                ..Default::default()
            }),
        )
        .await
        .map(|r| r.into_inner())
    }

    async fn describe(
        &self,
        id: &str,
    ) -> Result<DescribeScheduleResponse, temporalio_client::tonic::Status> {
        let mut raw = self.raw.clone();
        WorkflowService::describe_schedule(
            &mut raw,
            Request::new(DescribeScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.into(),
            }),
        )
        .await
        .map(|r| r.into_inner())
    }

    async fn patch(&self, id: &str, patch: SchedulePatch) {
        let mut raw = self.raw.clone();
        WorkflowService::patch_schedule(
            &mut raw,
            Request::new(PatchScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.into(),
                patch: Some(patch),
                identity: "test".into(),
                request_id: unique("req"),
            }),
        )
        .await
        .expect("patch schedule");
    }

    /// Triggers with an explicit nominal time so rapid triggers get distinct workflow ids.
    async fn trigger_at(&self, id: &str, when: &str, overlap: ScheduleOverlapPolicy) {
        self.patch(
            id,
            SchedulePatch {
                trigger_immediately: Some(TriggerImmediatelyRequest {
                    overlap_policy: overlap as i32,
                    scheduled_time: Some(ts(when)),
                }),
                ..Default::default()
            },
        )
        .await;
    }

    async fn info(
        &self,
        id: &str,
    ) -> temporalio_common::protos::temporal::api::schedule::v1::ScheduleInfo {
        self.describe(id)
            .await
            .expect("describe")
            .info
            .expect("info")
    }

    async fn wait_info(
        &self,
        id: &str,
        what: &str,
        ok: impl Fn(&temporalio_common::protos::temporal::api::schedule::v1::ScheduleInfo) -> bool,
    ) -> temporalio_common::protos::temporal::api::schedule::v1::ScheduleInfo {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = self.info(id).await;
            if ok(&info) {
                return info;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn workflow_status(&self, workflow_id: &str) -> i32 {
        let mut raw = self.raw.clone();
        WorkflowService::describe_workflow_execution(
            &mut raw,
            Request::new(DescribeWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                execution: Some(
                    temporalio_common::protos::temporal::api::common::v1::WorkflowExecution {
                        workflow_id: workflow_id.into(),
                        run_id: String::new(),
                    },
                ),
            }),
        )
        .await
        .expect("describe workflow")
        .into_inner()
        .workflow_execution_info
        .expect("info")
        .status
    }

    async fn signal_release(&self, workflow_id: &str) {
        let mut raw = self.raw.clone();
        WorkflowService::signal_workflow_execution(
            &mut raw,
            Request::new(SignalWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_execution: Some(
                    temporalio_common::protos::temporal::api::common::v1::WorkflowExecution {
                        workflow_id: workflow_id.into(),
                        run_id: String::new(),
                    },
                ),
                signal_name: "release".into(),
                identity: "test".into(),
                request_id: unique("sig"),
                ..Default::default()
            }),
        )
        .await
        .expect("signal release");
    }

    async fn wait_workflow_status(&self, workflow_id: &str, status: WorkflowExecutionStatus) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.workflow_status(workflow_id).await != status as i32 {
            assert!(
                Instant::now() < deadline,
                "{workflow_id} never reached {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn worker_options(tq: &str) -> temporalio_sdk::WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<EchoWorkflow>()
        .unwrap()
        .register_workflow::<BlockerWorkflow>()
        .unwrap()
        .register_workflow::<FailingWorkflow>()
        .unwrap()
        .build()
}

fn running_ids(
    info: &temporalio_common::protos::temporal::api::schedule::v1::ScheduleInfo,
) -> Vec<String> {
    info.running_workflows
        .iter()
        .map(|w| w.workflow_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_schedule_starts_workflows_and_every_rpc_answers() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-sched");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    let api = Api {
        raw: client.clone(),
    };
    let id = unique("every-second");
    with_worker(&mut worker, async {
        let created = api
            .create(
                &id,
                schedule(
                    "EchoWorkflow",
                    "echo",
                    &tq,
                    every(1),
                    SchedulePolicies::default(),
                    ScheduleState::default(),
                ),
            )
            .await
            .expect("create");
        assert!(!created.conflict_token.is_empty());
        let dup = api
            .create(
                &id,
                schedule(
                    "EchoWorkflow",
                    "echo",
                    &tq,
                    every(1),
                    SchedulePolicies::default(),
                    ScheduleState::default(),
                ),
            )
            .await
            .expect_err("duplicate create");
        assert_eq!(dup.code(), Code::AlreadyExists);

        let info = api
            .wait_info(&id, "three actions", |i| i.action_count >= 3)
            .await;
        for action in &info.recent_actions {
            let wf = action.start_workflow_result.as_ref().expect("result");
            let nominal = action.schedule_time.as_ref().expect("schedule time");
            // The workflow id is the action's id plus the nominal time.
            let suffix = chrono::DateTime::from_timestamp(nominal.seconds, 0)
                .expect("time")
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(wf.workflow_id, format!("echo-{suffix}"));
            api.wait_workflow_status(&wf.workflow_id, WorkflowExecutionStatus::Completed)
                .await;
        }
        let described = api.describe(&id).await.expect("describe");
        let spec = described
            .schedule
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .expect("spec");
        assert_eq!(spec.interval.len(), 1);
        let policies = described
            .schedule
            .as_ref()
            .and_then(|s| s.policies.as_ref())
            .expect("policies");
        assert_eq!(
            policies.overlap_policy,
            ScheduleOverlapPolicy::Skip as i32,
            "default filled in"
        );
        let future = &described.info.as_ref().expect("info").future_action_times;
        assert_eq!(future.len(), 10);
        assert!(
            future.windows(2).all(|w| w[1].seconds - w[0].seconds == 1),
            "{future:?}"
        );
        assert!(described.info.as_ref().unwrap().create_time.is_some());

        // The started workflows carry the scheduled-by search attributes.
        let listed = started_by(&client, &id).await;
        assert!(listed.len() >= 3, "{}", listed.len());

        // ListSchedules, with a query on the paused flag.
        let mut raw = client.clone();
        let list = WorkflowService::list_schedules(
            &mut raw,
            Request::new(ListSchedulesRequest {
                namespace: NAMESPACE.into(),
                maximum_page_size: 10,
                query: "TemporalSchedulePaused = false".into(),
                ..Default::default()
            }),
        )
        .await
        .expect("list schedules")
        .into_inner();
        let entry = list
            .schedules
            .iter()
            .find(|s| s.schedule_id == id)
            .expect("listed");
        assert_eq!(
            entry
                .info
                .as_ref()
                .and_then(|i| i.workflow_type.as_ref())
                .map(|t| t.name.as_str()),
            Some("EchoWorkflow")
        );

        let mut raw = client.clone();
        WorkflowService::delete_schedule(
            &mut raw,
            Request::new(DeleteScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.clone(),
                identity: "t".into(),
            }),
        )
        .await
        .expect("delete");
        assert_eq!(
            api.describe(&id).await.expect_err("gone").code(),
            Code::NotFound
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_trigger_backfill_update_and_matching_times() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-sched");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    let api = Api {
        raw: client.clone(),
    };
    let id = unique("manual");
    with_worker(&mut worker, async {
        let state = ScheduleState {
            paused: true,
            notes: "created paused".into(),
            ..Default::default()
        };
        api.create(
            &id,
            schedule(
                "EchoWorkflow",
                "manual",
                &tq,
                yearly(),
                SchedulePolicies::default(),
                state,
            ),
        )
        .await
        .expect("create");
        let d = api.describe(&id).await.expect("describe");
        let st = d
            .schedule
            .as_ref()
            .and_then(|s| s.state.as_ref())
            .expect("state");
        assert!(st.paused);
        assert_eq!(st.notes, "created paused");
        // The cron string comes back as a structured calendar.
        let spec = d
            .schedule
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .expect("spec");
        assert!(spec.cron_string.is_empty());
        assert_eq!(spec.structured_calendar.len(), 1);

        // Trigger runs even while paused.
        api.patch(
            &id,
            SchedulePatch {
                trigger_immediately: Some(TriggerImmediatelyRequest::default()),
                ..Default::default()
            },
        )
        .await;
        let info = api
            .wait_info(&id, "triggered action", |i| i.action_count == 1)
            .await;
        let first = info.recent_actions[0]
            .start_workflow_result
            .clone()
            .unwrap()
            .workflow_id;
        api.wait_workflow_status(&first, WorkflowExecutionStatus::Completed)
            .await;

        // Backfill three daily times, inclusive of both ends, after switching to a daily cron.
        let d = api.describe(&id).await.expect("describe");
        let mut sched = d.schedule.clone().expect("schedule");
        sched.spec = Some(ScheduleSpec {
            cron_string: vec!["0 0 * * *".into()],
            ..Default::default()
        });
        let mut raw = client.clone();
        let stale = WorkflowService::update_schedule(
            &mut raw,
            Request::new(UpdateScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.clone(),
                schedule: Some(sched.clone()),
                conflict_token: 999i64.to_be_bytes().to_vec(),
                identity: "t".into(),
                request_id: unique("req"),
                ..Default::default()
            }),
        )
        .await
        .expect_err("a stale conflict token is refused");
        assert_eq!(stale.code(), Code::FailedPrecondition);
        WorkflowService::update_schedule(
            &mut raw,
            Request::new(UpdateScheduleRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.clone(),
                schedule: Some(sched),
                conflict_token: d.conflict_token.clone(),
                identity: "t".into(),
                request_id: unique("req"),
                ..Default::default()
            }),
        )
        .await
        .expect("update with the current token");
        let d2 = api.describe(&id).await.expect("describe");
        assert_ne!(d2.conflict_token, d.conflict_token);
        assert!(d2.info.as_ref().unwrap().update_time.is_some());

        api.patch(
            &id,
            SchedulePatch {
                backfill_request: vec![BackfillRequest {
                    start_time: Some(ts("2026-01-01T00:00:00Z")),
                    end_time: Some(ts("2026-01-03T00:00:00Z")),
                    overlap_policy: ScheduleOverlapPolicy::AllowAll as i32,
                }],
                ..Default::default()
            },
        )
        .await;
        let info = api
            .wait_info(&id, "backfilled actions", |i| i.action_count == 4)
            .await;
        for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
            let wf = format!("manual-{day}T00:00:00Z");
            assert!(
                info.recent_actions.iter().any(|a| a
                    .start_workflow_result
                    .as_ref()
                    .is_some_and(|r| r.workflow_id == wf)),
                "{wf} missing from {:?}",
                info.recent_actions
            );
            api.wait_workflow_status(&wf, WorkflowExecutionStatus::Completed)
                .await;
        }

        api.patch(
            &id,
            SchedulePatch {
                unpause: "back to work".into(),
                ..Default::default()
            },
        )
        .await;
        let st = api
            .describe(&id)
            .await
            .unwrap()
            .schedule
            .unwrap()
            .state
            .unwrap();
        assert!(!st.paused);
        assert_eq!(st.notes, "back to work");
        api.patch(
            &id,
            SchedulePatch {
                pause: "hold".into(),
                ..Default::default()
            },
        )
        .await;
        assert!(
            api.describe(&id)
                .await
                .unwrap()
                .schedule
                .unwrap()
                .state
                .unwrap()
                .paused
        );

        let mut raw = client.clone();
        let times = WorkflowService::list_schedule_matching_times(
            &mut raw,
            Request::new(ListScheduleMatchingTimesRequest {
                namespace: NAMESPACE.into(),
                schedule_id: id.clone(),
                start_time: Some(ts("2026-03-01T12:00:00Z")),
                end_time: Some(ts("2026-03-04T12:00:00Z")),
            }),
        )
        .await
        .expect("matching times")
        .into_inner();
        let got: Vec<i64> = times.start_time.iter().map(|t| t.seconds).collect();
        let want: Vec<i64> = [
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            "2026-03-04T00:00:00Z",
        ]
        .iter()
        .map(|t| ts(t).seconds)
        .collect();
        assert_eq!(got, want);
    })
    .await;
}

/// One schedule per overlap policy, driven by triggers with distinct nominal times against a
/// workflow that runs until released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-overlap");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    let api = Api {
        raw: client.clone(),
    };
    let t = [
        "2030-01-01T00:00:01Z",
        "2030-01-01T00:00:02Z",
        "2030-01-01T00:00:03Z",
    ];
    with_worker(&mut worker, async {
        use ScheduleOverlapPolicy as P;
        for policy in [
            P::Skip,
            P::BufferOne,
            P::BufferAll,
            P::CancelOther,
            P::TerminateOther,
            P::AllowAll,
        ] {
            let id = unique(&format!("ov-{}", policy.as_str_name().to_lowercase()));
            let prefix = unique("blk");
            let policies = SchedulePolicies {
                overlap_policy: policy as i32,
                ..Default::default()
            };
            let paused = ScheduleState {
                paused: true,
                ..Default::default()
            };
            api.create(
                &id,
                schedule("BlockerWorkflow", &prefix, &tq, yearly(), policies, paused),
            )
            .await
            .expect("create");
            let wf = |i: usize| format!("{prefix}-{}", t[i]);
            for when in t {
                api.trigger_at(&id, when, P::Unspecified).await;
            }
            // Every trigger is started, skipped or buffered once its start is answered (at
            // once with one replica; shortly when another replica serves the workflow).
            let info = api
                .wait_info(&id, "the three triggers taken", |i| {
                    i.action_count + i.overlap_skipped + i.buffer_size >= 3
                })
                .await;
            match policy {
                P::Skip => {
                    assert_eq!(info.action_count, 1);
                    assert_eq!(info.overlap_skipped, 2);
                    api.signal_release(&wf(0)).await;
                    api.wait_workflow_status(&wf(0), WorkflowExecutionStatus::Completed)
                        .await;
                    assert_eq!(
                        api.info(&id).await.action_count,
                        1,
                        "skipped starts do not come back"
                    );
                }
                P::BufferOne => {
                    assert_eq!(
                        (info.action_count, info.overlap_skipped, info.buffer_size),
                        (1, 1, 1)
                    );
                    api.signal_release(&wf(0)).await;
                    api.wait_info(&id, "buffered start", |i| i.action_count == 2)
                        .await;
                    assert_eq!(running_ids(&api.info(&id).await), vec![wf(1)]);
                    api.signal_release(&wf(1)).await;
                }
                P::BufferAll => {
                    assert_eq!((info.action_count, info.buffer_size), (1, 2));
                    api.signal_release(&wf(0)).await;
                    api.wait_info(&id, "second start", |i| i.action_count == 2)
                        .await;
                    api.signal_release(&wf(1)).await;
                    let info = api
                        .wait_info(&id, "third start", |i| i.action_count == 3)
                        .await;
                    assert_eq!(running_ids(&info), vec![wf(2)]);
                    api.signal_release(&wf(2)).await;
                }
                P::CancelOther => {
                    // The first is asked to cancel; the next starts once it has closed.
                    api.wait_workflow_status(&wf(0), WorkflowExecutionStatus::Canceled)
                        .await;
                    let info = api
                        .wait_info(&id, "start after cancel", |i| i.action_count >= 2)
                        .await;
                    assert!(running_ids(&info).len() <= 1, "{info:?}");
                }
                P::TerminateOther => {
                    assert_eq!(info.action_count, 3);
                    // Terminations (and the schedule's record of them) are immediate with one
                    // replica and follow shortly when another replica serves the workflows.
                    api.wait_workflow_status(&wf(0), WorkflowExecutionStatus::Terminated)
                        .await;
                    api.wait_workflow_status(&wf(1), WorkflowExecutionStatus::Terminated)
                        .await;
                    api.wait_info(&id, "only the last running", |i| {
                        running_ids(i) == vec![wf(2)]
                    })
                    .await;
                    api.signal_release(&wf(2)).await;
                }
                P::AllowAll => {
                    assert_eq!(info.action_count, 3);
                    assert_eq!(running_ids(&info).len(), 3);
                    for i in 0..3 {
                        api.signal_release(&wf(i)).await;
                    }
                }
                P::Unspecified => unreachable!(),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_on_failure_and_limited_actions() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-limits");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    let api = Api {
        raw: client.clone(),
    };
    with_worker(&mut worker, async {
        let id = unique("fails");
        let policies = SchedulePolicies {
            pause_on_failure: true,
            ..Default::default()
        };
        api.create(
            &id,
            schedule(
                "FailingWorkflow",
                "fails",
                &tq,
                yearly(),
                policies,
                ScheduleState::default(),
            ),
        )
        .await
        .expect("create");
        api.patch(
            &id,
            SchedulePatch {
                trigger_immediately: Some(Default::default()),
                ..Default::default()
            },
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = api
                .describe(&id)
                .await
                .unwrap()
                .schedule
                .unwrap()
                .state
                .unwrap();
            if state.paused {
                assert!(state.notes.contains("Failed"), "{}", state.notes);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "schedule never paused after the failure"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let id = unique("limited");
        let state = ScheduleState {
            limited_actions: true,
            remaining_actions: 2,
            ..Default::default()
        };
        api.create(
            &id,
            schedule(
                "EchoWorkflow",
                "limited",
                &tq,
                every(1),
                SchedulePolicies::default(),
                state,
            ),
        )
        .await
        .expect("create");
        api.wait_info(&id, "two actions", |i| i.action_count == 2)
            .await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let d = api.describe(&id).await.unwrap();
        assert_eq!(
            d.info.as_ref().unwrap().action_count,
            2,
            "no more than the limit"
        );
        assert_eq!(d.schedule.unwrap().state.unwrap().remaining_actions, 0);
        assert!(d.info.unwrap().future_action_times.is_empty());
    })
    .await;
}

/// The workflows the schedule `id` started, from visibility (its scheduled-by attribute).
async fn started_by(
    client: &Client,
    id: &str,
) -> Vec<temporalio_common::protos::temporal::api::workflow::v1::WorkflowExecutionInfo> {
    let mut raw = client.clone();
    WorkflowService::list_workflow_executions(
        &mut raw,
        Request::new(ListWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: format!("TemporalScheduledById = '{id}'"),
            page_size: 1000,
            ..Default::default()
        }),
    )
    .await
    .expect("list workflows")
    .into_inner()
    .executions
}

/// Exactly once across the crash: paused, the schedule `id` (every second, its workflows
/// named `<id>-<nominal time>`) has started one workflow per second from its first action
/// to its last — none twice, none skipped — and counted each once.
async fn started_once_per_time_without_gaps(api: &Api, client: &Client, id: &str) {
    api.patch(
        id,
        SchedulePatch {
            pause: "counting".into(),
            ..Default::default()
        },
    )
    .await;
    let actions = api.info(id).await.action_count;
    let listed = started_by(client, id).await;
    let times: std::collections::BTreeSet<i64> = listed
        .iter()
        .map(|e| {
            let wf = &e.execution.as_ref().expect("execution").workflow_id;
            let nominal = wf.strip_prefix(&format!("{id}-")).expect("schedule's id");
            chrono::DateTime::parse_from_rfc3339(nominal)
                .expect("nominal time")
                .timestamp()
        })
        .collect();
    assert_eq!(
        listed.len() as i64,
        actions,
        "one workflow per counted action"
    );
    assert_eq!(times.len(), listed.len(), "no nominal time started twice");
    let span = times.last().expect("some") - times.first().expect("some") + 1;
    assert_eq!(span, times.len() as i64, "no second skipped: {times:?}");
    eprintln!("{id}: {actions} actions across the crash, each second once");
}

/// Schedules keep their state across a SIGKILL; the times missed while down follow each
/// schedule's catch-up window, and none is started twice or skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_after_a_crash_follows_the_window() {
    let mut server = DurinServer::start().await;
    let tq = unique("tq-catchup");
    let long_id = unique("long-window");
    let short_id = unique("short-window");
    {
        let api = Api {
            raw: server.client().await,
        };
        for (id, window) in [(&long_id, 3600), (&short_id, 10)] {
            let policies = SchedulePolicies {
                overlap_policy: ScheduleOverlapPolicy::AllowAll as i32,
                catchup_window: Some(prost_wkt_types::Duration {
                    seconds: window,
                    nanos: 0,
                }),
                ..Default::default()
            };
            api.create(
                id,
                schedule(
                    "EchoWorkflow",
                    id,
                    &tq,
                    every(1),
                    policies,
                    ScheduleState::default(),
                ),
            )
            .await
            .expect("create");
        }
        api.wait_info(&long_id, "actions before the crash", |i| {
            i.action_count >= 2
        })
        .await;
    }
    let before_long = Api {
        raw: server.client().await,
    }
    .info(&long_id)
    .await
    .action_count;
    let before_short = Api {
        raw: server.client().await,
    }
    .info(&short_id)
    .await
    .action_count;
    server.kill();
    let down = SystemTime::now();
    tokio::time::sleep(Duration::from_secs(14)).await;
    server.restart().await;
    let downtime = down.elapsed().unwrap_or_default().as_secs() as i64;

    let client = server.client().await;
    let api = Api {
        raw: client.clone(),
    };
    // Long window: every missed second is started after the restart.
    let long = api
        .wait_info(&long_id, "long-window catch-up", |i| {
            i.action_count >= before_long + downtime - 1
        })
        .await;
    assert_eq!(long.missed_catchup_window, 0);
    started_once_per_time_without_gaps(&api, &client, &long_id).await;
    if std::env::var("DURIN_TEST_STORE").as_deref() == Ok("postgres-cluster") {
        // The other replica took this one's shards over within the lease: no time was
        // missed, however short the window.
        let short = api.info(&short_id).await;
        assert_eq!(short.missed_catchup_window, 0, "{short:?}");
    } else {
        // Short window (10 s): times older than the window are counted, not run.
        let short = api
            .wait_info(&short_id, "short-window catch-up", |i| {
                i.missed_catchup_window >= 2
            })
            .await;
        assert!(
            short.action_count >= before_short + 8,
            "recent times still run: {short:?}"
        );
        assert!(
            short.action_count < before_short + downtime,
            "old times are not run: {short:?}"
        );
    }

    // The started workflows are real: a worker completes them.
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    with_worker(&mut worker, async {
        let wf = long
            .recent_actions
            .last()
            .unwrap()
            .start_workflow_result
            .clone()
            .unwrap()
            .workflow_id;
        api.wait_workflow_status(&wf, WorkflowExecutionStatus::Completed)
            .await;
    })
    .await;
}
