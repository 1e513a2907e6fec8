//! The schedule RPCs: create, describe, update, patch, delete, list, matching times.

use temporalio_protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
use temporalio_protos::temporal::api::schedule::v1::{
    Schedule, ScheduleInfo, ScheduleListEntry, ScheduleListInfo, schedule_action,
};
use temporalio_protos::temporal::api::workflowservice::v1::*;

use super::clock::{opt_ts_millis, ts_from_millis};
use super::schedules::{LiveSchedule, ScheduleKey, list_search_attributes};
use super::{Core, Engine, Error, Result};
use crate::schedule::spec;
use crate::store::records::LogRecord;
use crate::store::records::{BufferedStart, ScheduleKeyRecord, ScheduleRecord, log_record};
use crate::visibility::query::Query;

const FUTURE_ACTIONS: usize = 10;
const MAX_MATCHING_TIMES: usize = 1000;
const MAX_BACKFILL_STARTS: usize = 1000;
pub const DEFAULT_PAGE: usize = 1000;

fn token_bytes(t: i64) -> Vec<u8> {
    t.to_be_bytes().to_vec()
}

fn token_of(bytes: &[u8]) -> Option<i64> {
    (bytes.len() == 8).then(|| i64::from_be_bytes(bytes.try_into().unwrap_or([0; 8])))
}

/// Checks a schedule and puts its spec in canonical form.
fn canonical(mut schedule: Schedule) -> Result<Schedule> {
    let spec_in = schedule.spec.clone().unwrap_or_default();
    let canonical = spec::canonicalize(&spec_in).map_err(Error::InvalidArgument)?;
    spec::CompiledSpec::compile(&canonical).map_err(Error::InvalidArgument)?;
    schedule.spec = Some(canonical);
    let Some(schedule_action::Action::StartWorkflow(action)) =
        schedule.action.as_ref().and_then(|a| a.action.as_ref())
    else {
        return Err(Error::InvalidArgument(
            "schedule action must start a workflow".into(),
        ));
    };
    if action.workflow_id.is_empty() {
        return Err(Error::InvalidArgument(
            "action workflow id is not set".into(),
        ));
    }
    if action
        .workflow_type
        .as_ref()
        .is_none_or(|t| t.name.is_empty())
    {
        return Err(Error::InvalidArgument(
            "action workflow type is not set".into(),
        ));
    }
    if action.task_queue.as_ref().is_none_or(|t| t.name.is_empty()) {
        return Err(Error::InvalidArgument(
            "action task queue is not set".into(),
        ));
    }
    let policies = schedule.policies.get_or_insert_with(Default::default);
    if policies.overlap_policy == ScheduleOverlapPolicy::Unspecified as i32 {
        policies.overlap_policy = ScheduleOverlapPolicy::Skip as i32;
    }
    // An unset catch-up window stays unset (describe shows it so, as Temporal's does); the
    // default of a year applies when it is used (`LiveSchedule::catchup_ms`).
    schedule.state.get_or_insert_with(Default::default);
    Ok(schedule)
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("schedule {id} not found"))
}

impl Core {
    /// The namespace's custom search attributes and a list filter over its schedules.
    fn schedule_query(
        &self,
        namespace: &str,
        text: &str,
    ) -> Result<(std::collections::BTreeMap<String, i32>, Query)> {
        self.check_namespace(namespace)?;
        let custom = self.custom_search_attributes(namespace);
        let query = Query::parse(text, &|name| {
            crate::visibility::search_attributes::lookup(&custom, name)
        })
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok((custom, query))
    }

    fn schedule_mut(&mut self, key: &ScheduleKey) -> Result<&mut LiveSchedule> {
        self.check_namespace(&key.0)?;
        self.schedules.get_mut(key).ok_or_else(|| not_found(&key.1))
    }

    /// Buffers a trigger or backfill start and runs the buffer.
    fn schedule_manual(&mut self, key: &ScheduleKey, starts: Vec<BufferedStart>) {
        if let Some(s) = self.schedules.get_mut(key) {
            s.record.buffered.extend(starts);
        }
        self.run_schedule_buffer(key);
    }

    fn apply_patch(
        &mut self,
        key: &ScheduleKey,
        patch: &temporalio_protos::temporal::api::schedule::v1::SchedulePatch,
    ) -> Result<()> {
        let now = self.now();
        let s = self.schedule_mut(key)?;
        let default_overlap = s.overlap_policy();
        let pick = |p: i32| if p == 0 { default_overlap } else { p };
        if !patch.pause.is_empty() || !patch.unpause.is_empty() {
            let sched = s.record.schedule.get_or_insert_with(Default::default);
            let state = sched.state.get_or_insert_with(Default::default);
            if !patch.pause.is_empty() {
                state.paused = true;
                state.notes = patch.pause.clone();
            } else {
                state.paused = false;
                state.notes = patch.unpause.clone();
            }
        }
        let mut starts = Vec::new();
        if let Some(t) = &patch.trigger_immediately {
            let at = t
                .scheduled_time
                .as_ref()
                .map(|_| opt_ts_millis(&t.scheduled_time))
                .unwrap_or(now);
            starts.push(BufferedStart {
                nominal_ms: at,
                actual_ms: now,
                overlap_policy: pick(t.overlap_policy),
                manual: true,
            });
        }
        for b in &patch.backfill_request {
            let (from, to) = (opt_ts_millis(&b.start_time), opt_ts_millis(&b.end_time));
            if to < from {
                return Err(Error::InvalidArgument(
                    "backfill end time is before its start time".into(),
                ));
            }
            // The range is inclusive: a time exactly at `from` counts.
            let mut t = from - 1;
            while let Some((nominal, _)) = s.spec.next(t, &s.seed()) {
                if nominal > to || starts.len() >= MAX_BACKFILL_STARTS {
                    break;
                }
                starts.push(BufferedStart {
                    nominal_ms: nominal,
                    actual_ms: now,
                    overlap_policy: pick(b.overlap_policy),
                    manual: true,
                });
                t = nominal;
            }
        }
        self.schedule_manual(key, starts);
        Ok(())
    }
}

impl Engine {
    pub async fn create_schedule(
        &self,
        req: CreateScheduleRequest,
    ) -> Result<CreateScheduleResponse> {
        self.transact(|core| {
            core.check_namespace(&req.namespace)?;
            if req.schedule_id.is_empty() {
                return Err(Error::InvalidArgument(
                    "ScheduleId is not set on request.".into(),
                ));
            }
            core.check_owned(&req.namespace, &req.schedule_id)?;
            let key = (req.namespace.clone(), req.schedule_id.clone());
            if core.schedules.contains_key(&key) {
                return Err(Error::ScheduleAlreadyExists(req.schedule_id.clone()));
            }
            let schedule = canonical(req.schedule.clone().unwrap_or_default())?;
            if let Some(sa) = &req.search_attributes {
                crate::visibility::search_attributes::validate(
                    &core.custom_search_attributes(&req.namespace),
                    sa,
                )
                .map_err(Error::InvalidArgument)?;
            }
            let now = self.now();
            let record = ScheduleRecord {
                namespace: req.namespace.clone(),
                schedule_id: req.schedule_id.clone(),
                schedule: Some(schedule),
                info: Some(ScheduleInfo {
                    create_time: Some(ts_from_millis(now)),
                    ..Default::default()
                }),
                memo: req.memo.clone(),
                search_attributes: req.search_attributes.clone(),
                conflict_token: 1,
                processed_until_ms: now,
                ..Default::default()
            };
            let live = LiveSchedule::new(record).map_err(Error::InvalidArgument)?;
            core.schedules.insert(key.clone(), live);
            if let Some(patch) = &req.initial_patch {
                core.apply_patch(&key, patch)?;
            }
            core.changed_schedule(&key);
            core.arm_schedule(&key);
            Ok(CreateScheduleResponse {
                conflict_token: token_bytes(1),
            })
        })
        .await
    }

    pub async fn describe_schedule(
        &self,
        req: DescribeScheduleRequest,
    ) -> Result<DescribeScheduleResponse> {
        self.transact(|core| {
            let key = (req.namespace.clone(), req.schedule_id.clone());
            let custom = core.custom_search_attributes(&req.namespace);
            let s = core.schedule_mut(&key)?;
            let now = self.now();
            let mut info = s.record.info.clone().unwrap_or_default();
            info.future_action_times = s
                .future_times(now, FUTURE_ACTIONS)
                .into_iter()
                .map(ts_from_millis)
                .collect();
            info.buffer_size = s.record.buffered.len() as i64;
            let mut schedule = s.record.schedule.clone();
            if let Some(spec) = schedule.as_mut().and_then(|s| s.spec.as_mut()) {
                *spec = spec::described(spec);
            }
            // The action's search attributes carry their registered types, also those the
            // client gave untyped (as Temporal describes them since 1.24).
            if let Some(schedule_action::Action::StartWorkflow(start)) = schedule
                .as_mut()
                .and_then(|s| s.action.as_mut())
                .and_then(|a| a.action.as_mut())
                && let Some(attrs) = start.search_attributes.as_mut()
            {
                *attrs = crate::visibility::search_attributes::with_type_metadata(&custom, attrs);
            }
            Ok(DescribeScheduleResponse {
                schedule,
                info: Some(info),
                memo: s.record.memo.clone(),
                search_attributes: s.record.search_attributes.clone(),
                conflict_token: token_bytes(s.record.conflict_token),
            })
        })
        .await
    }

    pub async fn update_schedule(
        &self,
        req: UpdateScheduleRequest,
    ) -> Result<UpdateScheduleResponse> {
        self.transact(|core| {
            let key = (req.namespace.clone(), req.schedule_id.clone());
            let schedule = canonical(req.schedule.clone().unwrap_or_default())?;
            let s = core.schedule_mut(&key)?;
            if let Some(token) = token_of(&req.conflict_token)
                && token != 0
                && token != s.record.conflict_token
            {
                return Err(Error::FailedPrecondition(
                    "mismatched conflict token: the schedule changed since it was read".into(),
                ));
            }
            let spec = spec::CompiledSpec::compile(&schedule.spec.clone().unwrap_or_default())
                .map_err(Error::InvalidArgument)?;
            s.record.schedule = Some(schedule);
            s.spec = spec;
            s.record.conflict_token += 1;
            if req.search_attributes.is_some() {
                s.record.search_attributes = req.search_attributes.clone();
            }
            s.info_mut().update_time = Some(self.now_ts());
            core.changed_schedule(&key);
            core.arm_schedule(&key);
            Ok(UpdateScheduleResponse {})
        })
        .await
    }

    pub async fn patch_schedule(&self, req: PatchScheduleRequest) -> Result<PatchScheduleResponse> {
        self.transact(|core| {
            let key = (req.namespace.clone(), req.schedule_id.clone());
            core.schedule_mut(&key)?;
            if let Some(patch) = &req.patch {
                core.apply_patch(&key, patch)?;
            }
            if let Some(s) = core.schedules.get_mut(&key) {
                s.info_mut().update_time = Some(self.now_ts());
            }
            core.changed_schedule(&key);
            core.arm_schedule(&key);
            Ok(PatchScheduleResponse {})
        })
        .await
    }

    pub async fn delete_schedule(
        &self,
        req: DeleteScheduleRequest,
    ) -> Result<DeleteScheduleResponse> {
        self.transact(|core| {
            let key = (req.namespace.clone(), req.schedule_id.clone());
            core.schedule_mut(&key)?;
            core.schedules.remove(&key);
            core.log(LogRecord {
                kind: Some(log_record::Kind::ScheduleDeleted(ScheduleKeyRecord {
                    namespace: key.0,
                    schedule_id: key.1,
                })),
            });
            Ok(DeleteScheduleResponse {})
        })
        .await
    }

    /// How many of the namespace's schedules (here) match the query.
    pub async fn count_schedules(
        &self,
        req: CountSchedulesRequest,
    ) -> Result<CountSchedulesResponse> {
        self.transact(|core| {
            let (custom, query) = core.schedule_query(&req.namespace, &req.query)?;
            let count = core
                .schedules
                .iter()
                .filter(|(k, _)| k.0 == req.namespace)
                .filter(|(_, s)| {
                    let sa = list_search_attributes(s);
                    query.matches(&ScheduleSearch {
                        sa: &sa,
                        custom: &custom,
                    })
                })
                .count();
            Ok(CountSchedulesResponse {
                count: count as i64,
                groups: Vec::new(),
            })
        })
        .await
    }

    pub async fn list_schedules(&self, req: ListSchedulesRequest) -> Result<ListSchedulesResponse> {
        self.transact(|core| {
            let (custom, query) = core.schedule_query(&req.namespace, &req.query)?;
            let mut ids: Vec<&ScheduleKey> = core
                .schedules
                .keys()
                .filter(|k| k.0 == req.namespace)
                .collect();
            ids.sort();
            let after = String::from_utf8_lossy(&req.next_page_token).into_owned();
            let page = if req.maximum_page_size > 0 {
                (req.maximum_page_size as usize).min(DEFAULT_PAGE)
            } else {
                DEFAULT_PAGE
            };
            let now = self.now();
            let mut out = Vec::new();
            let mut next_page_token = Vec::new();
            for k in ids.into_iter().filter(|k| after.is_empty() || k.1 > after) {
                let s = &core.schedules[k];
                let sa = list_search_attributes(s);
                let record = ScheduleSearch {
                    sa: &sa,
                    custom: &custom,
                };
                if !query.matches(&record) {
                    continue;
                }
                if out.len() == page {
                    next_page_token = out
                        .last()
                        .map(|e: &ScheduleListEntry| e.schedule_id.clone().into_bytes())
                        .unwrap_or_default();
                    break;
                }
                let sched = s.record.schedule.clone().unwrap_or_default();
                let state = sched.state.clone().unwrap_or_default();
                let workflow_type = match sched.action.as_ref().and_then(|a| a.action.as_ref()) {
                    Some(schedule_action::Action::StartWorkflow(a)) => a.workflow_type.clone(),
                    _ => None,
                };
                let info = s.record.info.clone().unwrap_or_default();
                out.push(ScheduleListEntry {
                    schedule_id: k.1.clone(),
                    memo: s.record.memo.clone(),
                    search_attributes: s.record.search_attributes.clone(),
                    info: Some(ScheduleListInfo {
                        spec: sched.spec.as_ref().map(spec::described),
                        workflow_type,
                        notes: state.notes,
                        paused: state.paused,
                        recent_actions: info.recent_actions,
                        future_action_times: s
                            .future_times(now, 5)
                            .into_iter()
                            .map(ts_from_millis)
                            .collect(),
                        ..Default::default()
                    }),
                });
            }
            Ok(ListSchedulesResponse {
                schedules: out,
                next_page_token,
            })
        })
        .await
    }

    pub async fn list_schedule_matching_times(
        &self,
        req: ListScheduleMatchingTimesRequest,
    ) -> Result<ListScheduleMatchingTimesResponse> {
        self.transact(|core| {
            let key = (req.namespace.clone(), req.schedule_id.clone());
            let s = core.schedule_mut(&key)?;
            let (from, to) = (opt_ts_millis(&req.start_time), opt_ts_millis(&req.end_time));
            let mut t = from;
            let mut times = Vec::new();
            while times.len() < MAX_MATCHING_TIMES {
                match s.spec.next(t, &s.seed()) {
                    Some((_, actual)) if actual <= to => {
                        times.push(ts_from_millis(actual));
                        t = actual;
                    }
                    _ => break,
                }
            }
            Ok(ListScheduleMatchingTimesResponse { start_time: times })
        })
        .await
    }
}

/// A schedule seen through the visibility query language.
struct ScheduleSearch<'a> {
    sa: &'a temporalio_protos::temporal::api::common::v1::SearchAttributes,
    custom: &'a std::collections::BTreeMap<String, i32>,
}

impl crate::visibility::query::Record for ScheduleSearch<'_> {
    fn get(&self, name: &str) -> Option<crate::visibility::query::Value> {
        let t = crate::visibility::search_attributes::lookup(self.custom, name)?;
        let payload = self.sa.indexed_fields.get(name)?;
        crate::visibility::search_attributes::decode(t, &payload.data)
    }
}
