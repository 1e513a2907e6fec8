//! `durin apply -f FILE`: the same Workflow manifests the operator reconciles, applied to a
//! running server (`durin dev`) with no cluster. Applying twice is harmless: the start and
//! every signal carry request ids derived from the resource, so the engine deduplicates them.

use std::path::PathBuf;

use serde_json::Value;

use super::conditions;
use super::crd::workflow::{DesiredState, Workflow};
use super::frontend::{Frontend, Remote};
use super::workflow_actions::{self as actions, SignalOutcome, StartError, Target};
use super::workflow_status;
use crate::proto::api::enums::v1::HistoryEventFilterType;
use crate::proto::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// Manifest file, directory (its `.yaml`, `.yml` and `.json` files, in name order) or `-`
    /// for standard input; repeatable. A file may hold several documents separated by `---`.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Durin server address.
    #[arg(long, default_value = "127.0.0.1:7233", env = "TEMPORAL_ADDRESS")]
    pub address: String,
    /// Kubernetes namespace assumed for manifests without one (maps to the Durin namespace).
    #[arg(short = 'n', long = "namespace", default_value = "default")]
    pub namespace: String,
    /// Wait for each workflow to close and print its phase and result; exit non-zero unless
    /// it ended as asked (completed, or canceled/terminated as its desiredState says).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (Go-style: `30s`, `5m`) and exit non-zero.
    #[arg(long, value_parser = parse_timeout, requires = "wait")]
    pub timeout: Option<std::time::Duration>,
}

fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    crate::go_duration::parse_millis(s)
        .filter(|ms| *ms > 0)
        .map(|ms| std::time::Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("{s:?} is not a duration like 30s or 5m"))
}

/// The manifests named by `-f`: files as given, directories expanded, `-` read from stdin.
fn read_manifests(paths: &[PathBuf]) -> Result<Vec<(String, String)>, BoxError> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push((
                "<stdin>".to_string(),
                std::io::read_to_string(std::io::stdin())?,
            ));
            continue;
        }
        let mut files = vec![path.clone()];
        if path.is_dir() {
            files = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            files.sort();
        }
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            out.push((file.display().to_string(), text));
        }
    }
    Ok(out)
}

type BoxError = Box<dyn std::error::Error>;

pub async fn run(args: ApplyArgs) -> Result<(), BoxError> {
    let mut docs: Vec<Value> = Vec::new();
    for (name, text) in read_manifests(&args.files)? {
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| format!("{name}: not valid YAML: {e}"))?;
        docs.extend(parsed);
    }
    let frontend = Remote::connect(&args.address)
        .await
        .map_err(|e| format!("cannot reach Durin at {}: {e}", args.address))?;
    let mut failed = false;
    let mut waits: Vec<Workflow> = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let kind = doc
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if api_version != "durin.dev/v1alpha1" {
            eprintln!("skipping {kind} ({api_version}): not a durin.dev/v1alpha1 resource");
            continue;
        }
        let outcome = match kind.as_str() {
            "Workflow" => apply_workflow(&frontend, doc, &args).await.map(|applied| {
                // The same workflow may come twice (a later document stops it): wait once,
                // judged by the last spec.
                waits.retain(|w: &Workflow| w.metadata.name != applied.metadata.name);
                waits.push(applied);
            }),
            "Schedule" => apply_schedule(&frontend, doc, &args).await,
            "Worker" => Err(
                "Worker resources need the operator on a cluster (they become Deployments); \
                 `durin apply` takes Workflow and Schedule manifests"
                    .into(),
            ),
            other => Err(format!("unknown kind {other:?}").into()),
        };
        if let Err(e) = outcome {
            eprintln!("error: {e}");
            failed = true;
        }
    }
    // Like kubectl: everything is applied first, then waited for (a later document may be
    // what ends an earlier one), within one deadline.
    if args.wait {
        let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
        for wf in &waits {
            if let Err(e) = wait_and_report(&frontend, wf, deadline, args.timeout).await {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err("some resources were not applied, or did not end as asked".into());
    }
    Ok(())
}

/// Starts (or finds) the workflow, delivers its signals and applies its desired state;
/// returns it as applied, with its namespace filled in.
async fn apply_workflow(
    frontend: &Remote,
    doc: Value,
    args: &ApplyArgs,
) -> Result<Workflow, BoxError> {
    let mut wf: Workflow =
        serde_json::from_value(doc).map_err(|e| format!("invalid Workflow manifest: {e}"))?;
    let name = wf
        .metadata
        .name
        .clone()
        .ok_or("Workflow manifest has no metadata.name")?;
    wf.metadata
        .namespace
        .get_or_insert_with(|| args.namespace.clone());
    let target = Target::of(&wf);
    // Stands in for the resource uid the operator would use.
    let uid = format!("durin-apply/{}/{}", target.namespace, name);
    let run_id = match actions::start(frontend, &target, &uid, &wf.spec).await {
        Ok(run_id) => run_id,
        Err(StartError::Transient(s)) => {
            return Err(format!("workflow.durin.dev/{name}: {}", s.message()).into());
        }
        Err(e) => return Err(format!("workflow.durin.dev/{name}: {e}").into()),
    };
    println!(
        "workflow.durin.dev/{name} applied (namespace {}, workflow id {}, run {run_id})",
        target.namespace, target.workflow_id
    );
    for entry in &wf.spec.signals {
        match actions::signal(frontend, &target, &uid, entry).await? {
            SignalOutcome::Delivered => {
                println!("  signal {} ({}) delivered", entry.id, entry.name)
            }
            SignalOutcome::Undeliverable(why) => {
                println!(
                    "  signal {} ({}) not delivered: {why}",
                    entry.id, entry.name
                )
            }
        }
    }
    let desired = wf.spec.desired_state.unwrap_or_default();
    if desired != DesiredState::Running {
        let reason = wf
            .spec
            .reason
            .clone()
            .unwrap_or_else(|| format!("desiredState {desired:?}"));
        actions::apply_state(frontend, &target, &uid, desired, &reason).await?;
        println!("  desiredState {desired:?} applied");
    }
    Ok(wf)
}

/// Waits for the workflow to close (until `deadline`), prints how it ended, and fails unless it
/// ended as asked (what the resource's Ready condition would say).
async fn wait_and_report(
    frontend: &Remote,
    wf: &Workflow,
    deadline: Option<tokio::time::Instant>,
    timeout: Option<std::time::Duration>,
) -> Result<(), BoxError> {
    let name = wf.metadata.name.clone().unwrap_or_default();
    let target = Target::of(wf);
    let waiting = wait_for_close(frontend, &target);
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, waiting)
            .await
            .map_err(|_| {
                let limit = timeout.unwrap_or_default().as_millis() as i64;
                format!(
                    "workflow.durin.dev/{name}: still running after {}",
                    crate::go_duration::format_millis(limit)
                )
            })??,
        None => waiting.await?,
    }
    let obs = workflow_status::observe(frontend, &target, &Default::default())
        .await?
        .ok_or("the workflow disappeared")?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let status = workflow_status::fold(
        Default::default(),
        &obs,
        None,
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        now.as_millisecond(),
    );
    let phase = status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
    println!("workflow.durin.dev/{name}");
    println!("  phase: {phase}");
    if let Some(r) = &status.result {
        println!("  result: {}", serde_json::to_string(r)?);
    }
    if let Some(f) = &status.failure {
        println!("  failure: {}", f.message);
    }
    if workflow_status::standing(&wf.spec, &status).state != conditions::State::Ready {
        return Err(format!("workflow.durin.dev/{name} ended {phase}").into());
    }
    Ok(())
}

/// Long-polls the history for the close event of the chain's current run.
async fn wait_for_close(frontend: &Remote, target: &Target) -> Result<(), BoxError> {
    loop {
        let resp = frontend
            .get_workflow_execution_history(GetWorkflowExecutionHistoryRequest {
                namespace: target.namespace.clone(),
                execution: super::translate::execution(&target.workflow_id, ""),
                wait_new_event: true,
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                ..Default::default()
            })
            .await?;
        if resp.history.is_some_and(|h| !h.events.is_empty()) {
            // A continued run hands over to the next; its describe shows the newest run.
            let obs = workflow_status::observe(frontend, target, &Default::default()).await?;
            let running = obs.is_some_and(|o| {
                workflow_status::phase_of(
                    o.describe
                        .workflow_execution_info
                        .map(|i| i.status)
                        .unwrap_or(0),
                ) == super::crd::workflow::WorkflowPhase::Running
            });
            if !running {
                return Ok(());
            }
        }
    }
}

async fn apply_schedule(frontend: &Remote, doc: Value, args: &ApplyArgs) -> Result<(), BoxError> {
    use super::crd::schedule::Schedule;
    use super::schedule_actions::{self as sched, Ensured, ScheduleTarget};
    let mut s: Schedule =
        serde_json::from_value(doc).map_err(|e| format!("invalid Schedule manifest: {e}"))?;
    let name = s
        .metadata
        .name
        .clone()
        .ok_or("Schedule manifest has no metadata.name")?;
    s.metadata
        .namespace
        .get_or_insert_with(|| args.namespace.clone());
    let target = ScheduleTarget::of(&s);
    let request_id = format!("durin-apply/{}/{}", target.namespace, name);
    let done = sched::ensure(frontend, &target, &request_id, &s)
        .await
        .map_err(|e| format!("schedule.durin.dev/{name}: {e}"))?;
    let verb = match done {
        Ensured::Created => "created",
        Ensured::Updated => "updated",
    };
    println!(
        "schedule.durin.dev/{name} {verb} (namespace {}, schedule id {})",
        target.namespace, target.schedule_id
    );
    // Without a resource status to remember them, triggers and backfills run only when the
    // schedule is first created.
    if matches!(done, Ensured::Created) {
        for t in &s.spec.triggers {
            sched::trigger(frontend, &target, t).await?;
            println!("  trigger {} ran", t.id);
        }
        for b in &s.spec.backfills {
            sched::backfill(frontend, &target, b).await?;
            println!("  backfill {} ran", b.id);
        }
    } else if !s.spec.triggers.is_empty() || !s.spec.backfills.is_empty() {
        println!("  triggers and backfills already ran when the schedule was created");
    }
    Ok(())
}
