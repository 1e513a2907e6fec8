//! StartActivityExecution: validates the request, applies the id reuse and conflict policies
//! against the activity id's latest run, and creates the execution with its first attempt
//! queued (or waiting for its start delay).

use temporalio_protos::temporal::api::enums::v1::{
    ActivityIdConflictPolicy, ActivityIdReusePolicy, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    StartActivityExecutionRequest, StartActivityExecutionResponse,
};

use temporalio_protos::temporal::api::common::v1::{Link, callback, link};

use super::storage_id;
use crate::engine::clock::{self, dur_from_millis, dur_millis, ts_from_millis};
use crate::engine::commands::activities::ActivityTimeouts;
use crate::engine::nexus::callbacks::{MAX_CALLBACKS_PER_WORKFLOW, records};
use crate::engine::start::is_closed_unsuccessfully;
use crate::engine::state::{
    ActivityInfo, MutableState, STANDALONE_SCHEDULED_ID, StandaloneActivity,
};
use crate::engine::timers::TimerTask;
use crate::engine::{Core, Error, Result, RunKey, retry};

/// Longest activity id accepted (as for workflow ids).
const MAX_ID_LENGTH: usize = 1000;

impl Core {
    pub(crate) fn start_activity_execution(
        &mut self,
        mut req: StartActivityExecutionRequest,
    ) -> Result<StartActivityExecutionResponse> {
        self.check_namespace(&req.namespace)?;
        let timeouts = validate(&req)?;
        crate::engine::nexus::callbacks::validate(
            &req.completion_callbacks,
            &self.callback_addresses,
        )?;
        check_on_conflict_options(&req)?;
        lowercase_callback_headers(&mut req);
        if let Some(attrs) = &req.search_attributes {
            crate::visibility::search_attributes::validate(
                &self.custom_search_attributes(&req.namespace),
                attrs,
            )
            .map_err(Error::InvalidArgument)?;
        }
        let id = storage_id(&req.activity_id);
        self.check_owned(&req.namespace, &id)?;
        if req.request_id.is_empty() {
            req.request_id = uuid::Uuid::new_v4().to_string();
        }
        if let Some(run_id) = self.current_run_id(&req.namespace, &id)? {
            let key = RunKey {
                namespace: req.namespace.clone(),
                workflow_id: id.clone(),
                run_id: run_id.clone(),
            };
            let existing = self.run(&key)?;
            let existing_request = existing.ms.start_request_id.clone();
            let reuse = |started| {
                Ok(StartActivityExecutionResponse {
                    run_id: run_id.clone(),
                    started,
                    link: Some(activity_link(&key, &req.activity_id)),
                })
            };
            let attached = existing.ms.attached_request_ids.contains(&req.request_id);
            if existing_request == req.request_id || attached {
                // A retried start: the run it started or attached to (Temporal answers
                // `started: false`).
                return reuse(false);
            }
            let already = || Error::ActivityAlreadyStarted {
                message: "activity execution already started".into(),
                start_request_id: existing_request.clone(),
                run_id: run_id.clone(),
            };
            if existing.is_open() {
                if req.id_conflict_policy == ActivityIdConflictPolicy::UseExisting as i32 {
                    self.attach_to_running_activity(&key, &req)?;
                    return reuse(false);
                }
                return Err(already());
            }
            let reuse_policy = req.id_reuse_policy;
            if reuse_policy == ActivityIdReusePolicy::RejectDuplicate as i32
                || (reuse_policy == ActivityIdReusePolicy::AllowDuplicateFailedOnly as i32
                    && !is_closed_unsuccessfully(existing.ms.status))
            {
                return Err(already());
            }
        }
        let activity_id = req.activity_id.clone();
        let key = self.create_activity_execution(req, id, timeouts);
        Ok(StartActivityExecutionResponse {
            link: Some(activity_link(&key, &activity_id)),
            run_id: key.run_id,
            started: true,
        })
    }

    /// A start that found the activity running under USE_EXISTING attaches what its
    /// `on_conflict_options` ask for: its request id (a retry is answered the same), its
    /// completion callbacks and its links.
    fn attach_to_running_activity(
        &mut self,
        key: &RunKey,
        req: &StartActivityExecutionRequest,
    ) -> Result<()> {
        let Some(options) = &req.on_conflict_options else {
            return Ok(());
        };
        let now = self.now();
        let run = self.run_mut(key)?;
        if options.attach_completion_callbacks {
            let total = run.ms.callbacks.len() + req.completion_callbacks.len();
            if total > MAX_CALLBACKS_PER_WORKFLOW {
                return Err(Error::FailedPrecondition(format!(
                    "cannot attach more than {MAX_CALLBACKS_PER_WORKFLOW} callbacks to an activity"
                )));
            }
            let new = records(&req.completion_callbacks, &req.request_id, now);
            run.ms.callbacks.extend(new);
        }
        if options.attach_request_id {
            run.ms.attached_request_ids.push(req.request_id.clone());
        }
        if options.attach_links
            && let Some(record) = run.ms.standalone_activity.as_mut()
        {
            record.links.extend(req.links.iter().cloned());
        }
        self.changed(key);
        Ok(())
    }

    fn create_activity_execution(
        &mut self,
        req: StartActivityExecutionRequest,
        id: String,
        t: ActivityTimeouts,
    ) -> RunKey {
        let now = self.now();
        let key = RunKey {
            namespace: req.namespace.clone(),
            workflow_id: id,
            run_id: clock::run_id_at(now),
        };
        let delay = dur_millis(&req.start_delay);
        let first_dispatch = now + delay;
        let mut policy = req.retry_policy.clone().unwrap_or_default();
        retry::fill_defaults(&mut policy);
        let opt = |v: i64| Some(dur_from_millis(v));
        let info = ActivityInfo {
            scheduled_event_id: STANDALONE_SCHEDULED_ID,
            activity_id: req.activity_id.clone(),
            activity_type: req.activity_type.clone(),
            task_queue: req.task_queue.clone().unwrap_or_default().name,
            header: req.header.clone(),
            input: req.input.clone(),
            schedule_to_close_timeout: opt(t.schedule_to_close),
            schedule_to_start_timeout: opt(t.schedule_to_start),
            start_to_close_timeout: opt(t.start_to_close),
            heartbeat_timeout: opt(t.heartbeat),
            retry_policy: Some(policy),
            priority: req.priority.clone(),
            attempt: 1,
            // Schedule-to-close counts from the first dispatch: the delay is not the
            // activity's time.
            first_scheduled_time: Some(ts_from_millis(first_dispatch)),
            scheduled_time: Some(ts_from_millis(first_dispatch)),
            ..Default::default()
        };
        let ms = MutableState {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            status: WorkflowExecutionStatus::Running as i32,
            next_event_id: 1,
            start_time: Some(ts_from_millis(now)),
            execution_time: Some(ts_from_millis(first_dispatch)),
            callbacks: records(&req.completion_callbacks, "", now),
            start_request_id: req.request_id,
            search_attributes: req.search_attributes,
            activities: [(STANDALONE_SCHEDULED_ID, info.clone())].into(),
            standalone_activity: Some(Box::new(StandaloneActivity {
                activity_id: req.activity_id,
                user_metadata: req.user_metadata,
                start_delay: req.start_delay.filter(|_| delay > 0),
                links: req.links,
                identity: req.identity,
                ..Default::default()
            })),
            ..Default::default()
        };
        self.insert_standalone_run(&key, ms);
        if delay > 0 {
            self.push_timer(
                first_dispatch,
                TimerTask::ActivityRetry {
                    key: key.clone(),
                    scheduled_event_id: STANDALONE_SCHEDULED_ID,
                    attempt: 1,
                },
            );
        } else {
            self.activity_retry_due(&key, STANDALONE_SCHEDULED_ID, 1);
        }
        if t.schedule_to_close > 0 {
            self.push_timer(
                first_dispatch + t.schedule_to_close,
                TimerTask::ActivityScheduleToClose {
                    key: key.clone(),
                    scheduled_event_id: STANDALONE_SCHEDULED_ID,
                },
            );
        }
        self.arm_schedule_to_start(&key, &info);
        self.changed(&key);
        key
    }
}

/// The link to a standalone activity's run (what a start answers, and what a Nexus caller's
/// operation links to when the activity completes it).
pub(crate) fn activity_link(key: &RunKey, activity_id: &str) -> Link {
    Link {
        variant: Some(link::Variant::Activity(link::Activity {
            namespace: key.namespace.clone(),
            activity_id: activity_id.to_string(),
            run_id: key.run_id.clone(),
        })),
    }
}

/// Attaching callbacks needs the request id attached (a retry must find them), and that
/// needs something to attach (Temporal's rules).
fn check_on_conflict_options(req: &StartActivityExecutionRequest) -> Result<()> {
    let Some(options) = &req.on_conflict_options else {
        return Ok(());
    };
    if options.attach_completion_callbacks && !options.attach_request_id {
        return Err(Error::InvalidArgument(
            "attaching completion callbacks requires attaching the request ID".into(),
        ));
    }
    if options.attach_request_id && req.completion_callbacks.is_empty() && req.links.is_empty() {
        return Err(Error::InvalidArgument(
            "attaching the request ID requires completion callbacks or links".into(),
        ));
    }
    Ok(())
}

/// Callback header names are case-insensitive; Temporal keeps an activity's in lowercase.
fn lowercase_callback_headers(req: &mut StartActivityExecutionRequest) {
    for c in &mut req.completion_callbacks {
        if let Some(callback::Variant::Nexus(nexus)) = &mut c.variant {
            nexus.header = std::mem::take(&mut nexus.header)
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
        }
    }
}

/// Checks what the request must carry; answers its timeouts under Temporal's rules.
fn validate(req: &StartActivityExecutionRequest) -> Result<ActivityTimeouts> {
    let invalid = |m: &str| Err(Error::InvalidArgument(m.to_string()));
    if req.activity_id.is_empty() {
        return invalid("ActivityId is not set on request.");
    }
    if req.activity_id.len() > MAX_ID_LENGTH {
        return invalid("ActivityId exceeds length limit.");
    }
    if req.activity_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return invalid("ActivityType is not set on request.");
    }
    if req.task_queue.as_ref().is_none_or(|t| t.name.is_empty()) {
        return invalid("TaskQueue is not set on request.");
    }
    if req.request_id.len() > MAX_ID_LENGTH {
        return invalid("RequestId exceeds length limit.");
    }
    for d in [
        &req.schedule_to_close_timeout,
        &req.schedule_to_start_timeout,
        &req.start_to_close_timeout,
        &req.heartbeat_timeout,
    ] {
        if clock::is_negative(d) {
            return invalid("activity timeouts must not be negative");
        }
    }
    if clock::is_negative(&req.start_delay) {
        return invalid("StartDelay must not be negative.");
    }
    if let Some(policy) = &req.retry_policy {
        let mut policy = policy.clone();
        retry::fill_defaults(&mut policy);
        retry::validate(&policy).map_err(Error::InvalidArgument)?;
    }
    let given = ActivityTimeouts {
        schedule_to_close: dur_millis(&req.schedule_to_close_timeout),
        schedule_to_start: dur_millis(&req.schedule_to_start_timeout),
        start_to_close: dur_millis(&req.start_to_close_timeout),
        heartbeat: dur_millis(&req.heartbeat_timeout),
    };
    given.normalized(0).ok_or_else(|| {
        Error::InvalidArgument(
            "A valid StartToClose or ScheduleToCloseTimeout is not set on request.".into(),
        )
    })
}
