//! `durin apply -f FILE`: the same Workflow manifests the operator reconciles, applied to a
//! running server (`durin dev`) with no cluster. Applying twice is harmless: the start and
//! every signal carry request ids derived from the resource, so the engine deduplicates them.

use std::path::PathBuf;

use serde_json::Value;

use super::conditions;
use super::connection::ConnectionArgs;
use super::crd::schedule::{Schedule, ScheduleStatus};
use super::crd::workflow::{DesiredState, Workflow, WorkflowStatus};
use super::frontend::{Frontend, Remote};
use super::schedule_actions::{self as sched, Ensured, ScheduleTarget};
use super::translate;
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
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Kubernetes namespace assumed for manifests without one (maps to the Durin namespace).
    #[arg(
        short = 'n',
        long = "namespace",
        default_value = "default",
        env = "TEMPORAL_NAMESPACE"
    )]
    pub namespace: String,
    /// Wait for each workflow to close and print its phase and result; exit non-zero unless
    /// it ended as asked (completed, or canceled/terminated as its desiredState says).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (Go-style: `30s`, `5m`) and exit non-zero.
    #[arg(long, value_parser = parse_timeout, requires = "wait")]
    pub timeout: Option<std::time::Duration>,
    /// Check every manifest here, as kubectl's client-side dry run does (types, durations,
    /// cron, payloads, schedule specs), and say what would be applied, without contacting the
    /// server (which checks more: ids, search attributes, namespaces).
    #[arg(long, conflicts_with = "wait")]
    pub dry_run: bool,
    /// Print the resources as applied, with their status (after --wait: as they ended), as
    /// `json` (one object, or a `List`) or `yaml` (documents); progress goes to stderr.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Yaml,
}

impl ApplyArgs {
    /// Progress lines: on stdout, unless stdout carries the -o document.
    fn say(&self, line: impl std::fmt::Display) {
        if self.output.is_some() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
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

/// One manifest, parsed as the resource it declares, its namespace filled in.
enum Resource {
    Workflow(Box<Workflow>),
    Schedule(Box<Schedule>),
}

impl Resource {
    /// `kind.group/name`, as kubectl names it.
    fn display_name(&self) -> String {
        match self {
            Resource::Workflow(w) => format!("workflow.durin.dev/{}", name_of(&w.metadata)),
            Resource::Schedule(s) => format!("schedule.durin.dev/{}", name_of(&s.metadata)),
        }
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// Parses a document; `None` for documents that are not Durin's (skipped with a note).
fn parse(doc: Value, args: &ApplyArgs) -> Result<Option<Resource>, BoxError> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if api_version != "durin.dev/v1alpha1" {
        eprintln!("skipping {kind} ({api_version}): not a durin.dev/v1alpha1 resource");
        return Ok(None);
    }
    let resource = match kind.as_str() {
        "Workflow" => {
            let mut wf: Workflow = serde_json::from_value(doc)
                .map_err(|e| format!("invalid Workflow manifest: {e}"))?;
            wf.metadata
                .name
                .as_ref()
                .ok_or("Workflow manifest has no metadata.name")?;
            wf.metadata
                .namespace
                .get_or_insert_with(|| args.namespace.clone());
            Resource::Workflow(Box::new(wf))
        }
        "Schedule" => {
            let mut s: Schedule = serde_json::from_value(doc)
                .map_err(|e| format!("invalid Schedule manifest: {e}"))?;
            s.metadata
                .name
                .as_ref()
                .ok_or("Schedule manifest has no metadata.name")?;
            s.metadata
                .namespace
                .get_or_insert_with(|| args.namespace.clone());
            Resource::Schedule(Box::new(s))
        }
        "Worker" => {
            return Err(
                "Worker resources need the operator on a cluster (they become \
                        Deployments); `durin apply` takes Workflow and Schedule manifests"
                    .into(),
            );
        }
        other => return Err(format!("unknown kind {other:?}").into()),
    };
    Ok(Some(resource))
}

/// What the server would be asked, built and checked here: the operator's own translation.
fn check(resource: &Resource) -> Result<(), BoxError> {
    match resource {
        Resource::Workflow(wf) => {
            let target = Target::of(wf);
            translate::workflow_start_request(
                &target.namespace,
                &target.workflow_id,
                "dry-run",
                &wf.spec,
            )?;
            if let Some(cron) = &wf.spec.cron_schedule {
                crate::engine::chain::validate_cron(cron)
                    .map_err(|e| format!("cronSchedule {cron:?}: {e}"))?;
            }
        }
        Resource::Schedule(s) => {
            sched::schedule_proto(s)?;
        }
    }
    Ok(())
}

pub async fn run(args: ApplyArgs) -> Result<(), BoxError> {
    let mut docs: Vec<Value> = Vec::new();
    for (name, text) in read_manifests(&args.files)? {
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .map_err(|e| format!("{name}: not valid YAML: {e}"))?;
        docs.extend(parsed);
    }
    let mut failed = false;
    let mut resources = Vec::new();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        match parse(doc, &args) {
            Ok(Some(r)) => resources.push(r),
            Ok(None) => {}
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if args.dry_run {
        resources.retain(|r| match check(r) {
            Ok(()) => {
                args.say(format!("{} configured (dry run)", r.display_name()));
                true
            }
            Err(e) => {
                eprintln!("error: {}: {e}", r.display_name());
                failed = true;
                false
            }
        });
        print_resources(&args, &resources)?;
        return finish(failed);
    }
    let frontend = Remote::connect(&args.connection).await?;
    let mut applied = Vec::new();
    for r in resources {
        let outcome = match &r {
            Resource::Workflow(wf) => apply_workflow(&frontend, wf, &args).await,
            Resource::Schedule(s) => apply_schedule(&frontend, s, &args).await,
        };
        match outcome {
            Ok(()) => applied.push(r),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    // Like kubectl: everything is applied first, then waited for (a later document may be
    // what ends an earlier one), within one deadline. The same workflow may come twice (a
    // later document stops it): it is waited for once, judged by its last spec.
    if args.wait {
        let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut waited = std::collections::HashSet::new();
        for r in applied.iter().rev() {
            let Resource::Workflow(wf) = r else { continue };
            if !waited.insert(name_of(&wf.metadata).to_string()) {
                continue;
            }
            if let Err(e) = wait_and_report(&frontend, wf, deadline, &args).await {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if args.output.is_some() {
        for r in &mut applied {
            match r {
                Resource::Workflow(wf) => {
                    wf.status = Some(workflow_status_now(&frontend, wf).await?)
                }
                Resource::Schedule(s) => s.status = Some(schedule_status_now(&frontend, s).await?),
            }
        }
        print_resources(&args, &applied)?;
    }
    finish(failed)
}

fn finish(failed: bool) -> Result<(), BoxError> {
    if failed {
        return Err("some resources were not applied, or did not end as asked".into());
    }
    Ok(())
}

/// With -o: the resources as one JSON object (a `List` for several) or YAML documents.
fn print_resources(args: &ApplyArgs, resources: &[Resource]) -> Result<(), BoxError> {
    let Some(format) = args.output else {
        return Ok(());
    };
    let values = resources
        .iter()
        .map(|r| match r {
            Resource::Workflow(w) => serde_json::to_value(w),
            Resource::Schedule(s) => serde_json::to_value(s),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let text = match format {
        OutputFormat::Json => {
            let doc = match <[Value; 1]>::try_from(values) {
                Ok([one]) => one,
                Err(items) => {
                    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
                }
            };
            serde_json::to_string_pretty(&doc)? + "\n"
        }
        OutputFormat::Yaml => values
            .iter()
            .map(serde_saphyr::to_string)
            .collect::<Result<Vec<_>, _>>()?
            .join("---\n"),
    };
    print!("{text}");
    Ok(())
}

/// Starts (or finds) the workflow, delivers its signals and applies its desired state.
async fn apply_workflow(
    frontend: &Remote,
    wf: &Workflow,
    args: &ApplyArgs,
) -> Result<(), BoxError> {
    let name = name_of(&wf.metadata);
    let target = Target::of(wf);
    // Stands in for the resource uid the operator would use.
    let uid = format!("durin-apply/{}/{}", target.namespace, name);
    let run_id = match actions::start(frontend, &target, &uid, wf).await {
        Ok(run_id) => run_id,
        Err(StartError::Transient(s)) => {
            return Err(format!("workflow.durin.dev/{name}: {}", s.message()).into());
        }
        Err(e) => return Err(format!("workflow.durin.dev/{name}: {e}").into()),
    };
    args.say(format!(
        "workflow.durin.dev/{name} applied (namespace {}, workflow id {}, run {run_id})",
        target.namespace, target.workflow_id
    ));
    for entry in &wf.spec.signals {
        match actions::signal(frontend, &target, &uid, entry).await? {
            SignalOutcome::Delivered => {
                args.say(format!("  signal {} ({}) delivered", entry.id, entry.name))
            }
            SignalOutcome::Undeliverable(why) => args.say(format!(
                "  signal {} ({}) not delivered: {why}",
                entry.id, entry.name
            )),
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
        args.say(format!("  desiredState {desired:?} applied"));
    }
    Ok(())
}

/// The status the operator would write for the workflow now.
async fn workflow_status_now(frontend: &Remote, wf: &Workflow) -> Result<WorkflowStatus, BoxError> {
    let target = Target::of(wf);
    let obs = workflow_status::observe(frontend, &target, &Default::default())
        .await?
        .ok_or("the workflow disappeared")?;
    let now = k8s_openapi::jiff::Timestamp::now();
    Ok(workflow_status::fold(
        Default::default(),
        &obs,
        None,
        &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now),
        now.as_millisecond(),
    ))
}

/// Waits for the workflow to close (until `deadline`), says how it ended, and fails unless it
/// ended as asked (what the resource's Ready condition would say).
async fn wait_and_report(
    frontend: &Remote,
    wf: &Workflow,
    deadline: Option<tokio::time::Instant>,
    args: &ApplyArgs,
) -> Result<(), BoxError> {
    let name = name_of(&wf.metadata);
    let target = Target::of(wf);
    let waiting = wait_for_close(frontend, &target);
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, waiting)
            .await
            .map_err(|_| {
                let limit = args.timeout.unwrap_or_default().as_millis() as i64;
                format!(
                    "workflow.durin.dev/{name}: still running after {}",
                    crate::go_duration::format_millis(limit)
                )
            })??,
        None => waiting.await?,
    }
    let status = workflow_status_now(frontend, wf).await?;
    let phase = status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
    args.say(format!("workflow.durin.dev/{name}"));
    args.say(format!("  phase: {phase}"));
    if let Some(r) = &status.result {
        args.say(format!("  result: {}", serde_json::to_string(r)?));
    }
    if let Some(f) = &status.failure {
        args.say(format!("  failure: {}", f.message));
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
                execution: translate::execution(&target.workflow_id, ""),
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

async fn apply_schedule(frontend: &Remote, s: &Schedule, args: &ApplyArgs) -> Result<(), BoxError> {
    let name = name_of(&s.metadata);
    let target = ScheduleTarget::of(s);
    let request_id = format!("durin-apply/{}/{}", target.namespace, name);
    let done = sched::ensure(frontend, &target, &request_id, s)
        .await
        .map_err(|e| format!("schedule.durin.dev/{name}: {e}"))?;
    let verb = match done {
        Ensured::Created => "created",
        Ensured::Updated => "updated",
    };
    args.say(format!(
        "schedule.durin.dev/{name} {verb} (namespace {}, schedule id {})",
        target.namespace, target.schedule_id
    ));
    // Without a resource status to remember them, triggers and backfills run only when the
    // schedule is first created.
    if matches!(done, Ensured::Created) {
        for t in &s.spec.triggers {
            sched::trigger(frontend, &target, t).await?;
            args.say(format!("  trigger {} ran", t.id));
        }
        for b in &s.spec.backfills {
            sched::backfill(frontend, &target, b).await?;
            args.say(format!("  backfill {} ran", b.id));
        }
    } else if !s.spec.triggers.is_empty() || !s.spec.backfills.is_empty() {
        args.say("  triggers and backfills already ran when the schedule was created");
    }
    Ok(())
}

/// The engine's side of the status the operator would write for the schedule now.
async fn schedule_status_now(frontend: &Remote, s: &Schedule) -> Result<ScheduleStatus, BoxError> {
    let target = ScheduleTarget::of(s);
    let mut status = ScheduleStatus {
        schedule_id: Some(target.schedule_id.clone()),
        namespace: Some(target.namespace.clone()),
        ..Default::default()
    };
    let described = sched::describe(frontend, &target).await?;
    if let Some(info) = described.and_then(|d| d.info) {
        super::schedule_controller::fold_info(&mut status, &info);
    }
    Ok(status)
}
