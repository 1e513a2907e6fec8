//! Mutation fuzzing of the gRPC handlers with a fixed budget: valid requests (starts with
//! every option, signals, commands in a workflow-task completion, schedules with cron and
//! calendar specs, visibility queries, updates, queries) are encoded and mutated — mostly one
//! field at a time on the wire format (dropped, repeated, edge values, nested changes), so
//! most inputs still decode and reach validation; sometimes raw bytes flipped, cut and
//! spliced — and whatever decodes is sent to the handlers in-process. Nothing may panic or
//! hang (calls that do not wait by design must answer within 5 s); at least half the inputs
//! must decode, and the count is printed.
//!
//! Budget: `DURIN_FUZZ_ITERATIONS` mutations per seed request (default 1000).

use std::sync::Arc;
use std::time::Duration;

use durin::api::workflow_service::WorkflowHandler;
use durin::engine::{Engine, EngineConfig};
use durin::proto::api::command::v1::{
    Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes, command::Attributes,
};
use durin::proto::api::common::v1::{
    ActivityType, Memo, Payload, Payloads, RetryPolicy, SearchAttributes, WorkflowExecution,
    WorkflowType,
};
use durin::proto::api::enums::v1::CommandType;
use durin::proto::api::query::v1::WorkflowQuery;
use durin::proto::api::schedule::v1::{
    CalendarSpec, IntervalSpec, Schedule, ScheduleAction, ScheduleSpec, schedule_action,
};
use durin::proto::api::taskqueue::v1::TaskQueue;
use durin::proto::api::update::v1::{Input, Meta, Request as UpdateRequest, WaitPolicy};
use durin::proto::api::workflow::v1::NewWorkflowExecutionInfo;
use durin::proto::api::workflowservice::v1::*;
use durin::proto::workflowservice::workflow_service_server::WorkflowService;
use durin::store::wal::Wal;
use prost::Message;
use tonic::Request;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A protobuf varint at the start of `b`: (value, its length).
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One field on the wire: (key bytes, wire type, value bytes).
type Field<'a> = (&'a [u8], u64, &'a [u8]);

/// The fields of a message's wire format; None if `b` is not a well-formed message.
fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let (key, n) = varint(&b[at..])?;
        let key_bytes = &b[at..at + n];
        at += n;
        let value_len = match key & 7 {
            0 => varint(&b[at..])?.1,
            1 => 8,
            2 => {
                let (len, n) = varint(&b[at..])?;
                at += n;
                usize::try_from(len).ok()?
            }
            5 => 4,
            _ => return None,
        };
        let value = b.get(at..at.checked_add(value_len)?)?;
        at += value_len;
        out.push((key_bytes, key & 7, value));
    }
    Some(out)
}

/// Text values that stress validation: empty, huge, non-ASCII, query syntax gone wrong.
const EDGE_TEXTS: [&str; 8] = [
    "",
    "0",
    "-1",
    "é∂😀\u{0}",
    "((((",
    "WorkflowId = 'x' AND (ExecutionStatus = ",
    "' OR 1=1 --",
    "9999999999999999999999",
];

/// Changes one field of a well-formed message and keeps the rest, so the result still
/// decodes (mostly) and reaches the handler's validation rather than the decoder's.
fn mutate_field(rng: &mut Rng, b: &[u8], depth: u32) -> Option<Vec<u8>> {
    let fields = fields(b)?;
    if fields.is_empty() {
        return None;
    }
    let pick = rng.below(fields.len());
    let mut out = Vec::with_capacity(b.len() + 16);
    for (i, (key, wire, value)) in fields.iter().enumerate() {
        let encode = |out: &mut Vec<u8>, value: &[u8]| {
            out.extend_from_slice(key);
            if *wire == 2 {
                put_varint(out, value.len() as u64);
            }
            out.extend_from_slice(value);
        };
        if i != pick {
            encode(&mut out, value);
            continue;
        }
        match (rng.below(4), *wire) {
            (0, _) => {}
            (1, _) => {
                encode(&mut out, value);
                encode(&mut out, value);
            }
            (_, 0) => {
                out.extend_from_slice(key);
                let v = [
                    0,
                    1,
                    2,
                    u64::MAX,
                    i32::MAX as u64,
                    i64::MAX as u64,
                    rng.next(),
                ][rng.below(7)];
                put_varint(&mut out, v);
            }
            (_, 2) => {
                let nested = (depth < 4 && rng.below(3) > 0)
                    .then(|| mutate_field(rng, value, depth + 1))
                    .flatten();
                let replaced = nested.unwrap_or_else(|| match rng.below(3) {
                    0 => "a".repeat(rng.below(3000)).into_bytes(),
                    _ => EDGE_TEXTS[rng.below(EDGE_TEXTS.len())].as_bytes().to_vec(),
                });
                encode(&mut out, &replaced);
            }
            _ => {
                let random: Vec<u8> = value.iter().map(|_| rng.next() as u8).collect();
                encode(&mut out, &random);
            }
        }
    }
    Some(out)
}

/// Mostly field-level changes that keep the message decodable; sometimes raw byte damage
/// (flips, cuts, splices) for the decoder's own sake.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    if rng.below(4) > 0 {
        let mut b = seed.to_vec();
        for _ in 0..1 + rng.below(3) {
            if let Some(next) = mutate_field(rng, &b, 0) {
                b = next;
            }
        }
        return b;
    }
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(b.len());
        match rng.below(6) {
            0 => b[i] ^= 1 << rng.below(8),
            1 => b[i] = rng.next() as u8,
            2 => b.truncate(i),
            3 => b.insert(i, rng.next() as u8),
            4 => {
                let j = rng.below(b.len());
                let chunk: Vec<u8> = b[j..(j + 1 + rng.below(16)).min(b.len())].to_vec();
                b.splice(i..i, chunk);
            }
            _ => b[i] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
        }
    }
    b
}

fn json(v: &str) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(v).unwrap_or_default(),
            ..Default::default()
        }],
    }
}

fn start_request(id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType {
            name: "Fuzzed".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "fuzz".into(),
            ..Default::default()
        }),
        input: Some(json("hello")),
        workflow_execution_timeout: Some(prost_wkt_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        workflow_run_timeout: Some(prost_wkt_types::Duration {
            seconds: 600,
            nanos: 0,
        }),
        workflow_task_timeout: Some(prost_wkt_types::Duration {
            seconds: 10,
            nanos: 0,
        }),
        identity: "fuzz".into(),
        request_id: format!("{id}-req"),
        retry_policy: Some(RetryPolicy {
            initial_interval: Some(prost_wkt_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            backoff_coefficient: 2.0,
            maximum_attempts: 3,
            ..Default::default()
        }),
        cron_schedule: "*/5 * * * *".into(),
        memo: Some(Memo {
            fields: [("k".to_string(), json("v").payloads[0].clone())].into(),
        }),
        search_attributes: Some(SearchAttributes {
            indexed_fields: [(
                "CustomKeywordField".to_string(),
                json("x").payloads[0].clone(),
            )]
            .into(),
        }),
        ..Default::default()
    }
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

/// What became of one mutated input.
enum Fate {
    /// Not a valid message of the type: never reached a handler.
    Undecodable,
    Answered,
    /// No answer within the bound.
    TimedOut,
}

/// Updates and queries wait for a worker by design (no worker runs here); every other call
/// answers at once, and one still unanswered after this long is a hang.
const HANG: Duration = Duration::from_secs(5);
const WAITS_BY_DESIGN: Duration = Duration::from_millis(200);

/// Decodes `bytes` as `T` and, if that works, calls the handler (bounded in time).
macro_rules! try_call {
    ($handler:expr, $method:ident, $ty:ty, $bytes:expr, $bound:expr) => {
        match <$ty>::decode($bytes.as_slice()) {
            Ok(req) => {
                let call = $handler.$method(Request::new(req));
                match tokio::time::timeout($bound, call).await {
                    Ok(_) => Fate::Answered,
                    Err(_) => Fate::TimedOut,
                }
            }
            Err(_) => Fate::Undecodable,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_never_panic_or_hang() {
    let iterations: usize = std::env::var("DURIN_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Wal::open(dir.path()).expect("store");
    let config = EngineConfig {
        long_poll_timeout: Duration::from_millis(50),
        history_poll_timeout: Duration::from_millis(50),
        ..Default::default()
    };
    let engine: Arc<Engine> = Engine::open(store, config).expect("engine");
    engine.ensure_namespace("default").await.expect("namespace");
    let _timers = engine.spawn_timer_loop();
    let h = WorkflowHandler::new(engine.clone(), None);

    // A live workflow with a real task token, so mutated completions reach deep code.
    h.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        cron_schedule: String::new(),
        ..start_request("live")
    }))
    .await
    .expect("start live");
    let task = h
        .poll_workflow_task_queue(Request::new(PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: "fuzz".into(),
                ..Default::default()
            }),
            identity: "fuzz".into(),
            ..Default::default()
        }))
        .await
        .expect("poll")
        .into_inner();
    let command = |t: CommandType, a: Attributes| Command {
        command_type: t as i32,
        attributes: Some(a),
        ..Default::default()
    };
    let completion = RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: task.task_token.clone(),
        identity: "fuzz".into(),
        commands: vec![
            command(
                CommandType::ScheduleActivityTask,
                Attributes::ScheduleActivityTaskCommandAttributes(
                    ScheduleActivityTaskCommandAttributes {
                        activity_id: "a1".into(),
                        activity_type: Some(ActivityType { name: "Act".into() }),
                        task_queue: Some(TaskQueue {
                            name: "fuzz".into(),
                            ..Default::default()
                        }),
                        input: Some(json("in")),
                        start_to_close_timeout: Some(prost_wkt_types::Duration {
                            seconds: 5,
                            nanos: 0,
                        }),
                        ..Default::default()
                    },
                ),
            ),
            command(
                CommandType::StartTimer,
                Attributes::StartTimerCommandAttributes(StartTimerCommandAttributes {
                    timer_id: "t1".into(),
                    start_to_fire_timeout: Some(prost_wkt_types::Duration {
                        seconds: 1,
                        nanos: 0,
                    }),
                }),
            ),
            command(
                CommandType::CompleteWorkflowExecution,
                Attributes::CompleteWorkflowExecutionCommandAttributes(
                    CompleteWorkflowExecutionCommandAttributes {
                        result: Some(json("done")),
                    },
                ),
            ),
        ],
        ..Default::default()
    };
    let schedule = CreateScheduleRequest {
        namespace: "default".into(),
        schedule_id: "fuzz-schedule".into(),
        schedule: Some(Schedule {
            spec: Some(ScheduleSpec {
                cron_string: vec![
                    "CRON_TZ=Europe/Paris 0 12 * * MON-FRI".into(),
                    "@every 90s/15s".into(),
                ],
                calendar: vec![CalendarSpec {
                    hour: "9-17/2".into(),
                    day_of_week: "mon,wed".into(),
                    ..Default::default()
                }],
                interval: vec![IntervalSpec {
                    interval: Some(prost_wkt_types::Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                    phase: Some(prost_wkt_types::Duration {
                        seconds: 5,
                        nanos: 0,
                    }),
                }],
                jitter: Some(prost_wkt_types::Duration {
                    seconds: 3,
                    nanos: 0,
                }),
                timezone_name: "America/New_York".into(),
                ..Default::default()
            }),
            action: Some(ScheduleAction {
                action: Some(schedule_action::Action::StartWorkflow(
                    NewWorkflowExecutionInfo {
                        workflow_id: "sched-wf".into(),
                        workflow_type: Some(WorkflowType {
                            name: "Fuzzed".into(),
                        }),
                        task_queue: Some(TaskQueue {
                            name: "fuzz".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )),
            }),
            ..Default::default()
        }),
        request_id: "fuzz".into(),
        ..Default::default()
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("start", start_request("w").encode_to_vec()),
        (
            "signal_with_start",
            SignalWithStartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: "sws".into(),
                workflow_type: Some(WorkflowType { name: "Fuzzed".into() }),
                task_queue: Some(TaskQueue { name: "fuzz".into(), ..Default::default() }),
                signal_name: "s".into(),
                signal_input: Some(json("x")),
                request_id: "r".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "signal",
            SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: execution("live"),
                signal_name: "sig".into(),
                input: Some(json("x")),
                request_id: "r".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        ("complete_task", completion.encode_to_vec()),
        ("create_schedule", schedule.encode_to_vec()),
        (
            "list",
            ListWorkflowExecutionsRequest {
                namespace: "default".into(),
                page_size: 10,
                query: "WorkflowType = 'Fuzzed' AND (ExecutionStatus = 'Running' OR StartTime > '2026-01-01T00:00:00Z') ORDER BY StartTime".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "update",
            UpdateWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: execution("live"),
                wait_policy: Some(WaitPolicy { lifecycle_stage: 2 }),
                request: Some(UpdateRequest {
                    meta: Some(Meta { update_id: "u".into(), identity: "fuzz".into() }),
                    input: Some(Input { name: "upd".into(), args: Some(json("x")), ..Default::default() }),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "query",
            QueryWorkflowRequest {
                namespace: "default".into(),
                execution: execution("live"),
                query: Some(WorkflowQuery { query_type: "q".into(), query_args: Some(json("x")), ..Default::default() }),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "history",
            GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: execution("live"),
                maximum_page_size: 5,
                next_page_token: vec![1, 2, 3],
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut decoded = 0usize;
    let mut undecodable = 0usize;
    let mut hangs = Vec::new();
    for (name, seed) in &seeds {
        for _ in 0..iterations {
            let bytes = mutate(&mut rng, seed);
            let fate = match *name {
                "start" => try_call!(
                    h,
                    start_workflow_execution,
                    StartWorkflowExecutionRequest,
                    bytes,
                    HANG
                ),
                "signal_with_start" => try_call!(
                    h,
                    signal_with_start_workflow_execution,
                    SignalWithStartWorkflowExecutionRequest,
                    bytes,
                    HANG
                ),
                "signal" => try_call!(
                    h,
                    signal_workflow_execution,
                    SignalWorkflowExecutionRequest,
                    bytes,
                    HANG
                ),
                "complete_task" => try_call!(
                    h,
                    respond_workflow_task_completed,
                    RespondWorkflowTaskCompletedRequest,
                    bytes,
                    HANG
                ),
                "create_schedule" => {
                    try_call!(h, create_schedule, CreateScheduleRequest, bytes, HANG)
                }
                "list" => try_call!(
                    h,
                    list_workflow_executions,
                    ListWorkflowExecutionsRequest,
                    bytes,
                    HANG
                ),
                "update" => try_call!(
                    h,
                    update_workflow_execution,
                    UpdateWorkflowExecutionRequest,
                    bytes,
                    WAITS_BY_DESIGN
                ),
                "query" => try_call!(
                    h,
                    query_workflow,
                    QueryWorkflowRequest,
                    bytes,
                    WAITS_BY_DESIGN
                ),
                _ => try_call!(
                    h,
                    get_workflow_execution_history,
                    GetWorkflowExecutionHistoryRequest,
                    bytes,
                    HANG
                ),
            };
            match fate {
                Fate::Undecodable => undecodable += 1,
                Fate::Answered => decoded += 1,
                Fate::TimedOut if matches!(*name, "update" | "query") => decoded += 1,
                Fate::TimedOut => hangs.push((*name, bytes)),
            }
        }
    }
    assert!(
        hangs.is_empty(),
        "{} inputs got no answer within {HANG:?}, first: {:?}",
        hangs.len(),
        hangs.first()
    );
    // Mutations mostly keep the message decodable; if they stopped doing so, the handlers
    // would no longer be tested.
    assert!(
        decoded >= seeds.len() * iterations / 2,
        "only {decoded} of {} mutated inputs decoded",
        seeds.len() * iterations
    );
    // Still healthy: a fresh start and describe work.
    h.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        cron_schedule: String::new(),
        ..start_request("after-fuzz")
    }))
    .await
    .expect("the engine still serves after fuzzing");
    eprintln!(
        "fuzzed {decoded} decoded mutated requests ({undecodable} more did not decode) across {} request types",
        seeds.len()
    );
}
