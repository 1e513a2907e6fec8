//! Log records that leave out what did not change. Every change of a run logs its mutable
//! state, but a few of its largest fields — the start event's attributes, the auto-reset
//! points, the memo and the search attributes — rarely change after the start. A run's record
//! leaves each of them out while it is as the run's previous record in the log wrote it, and
//! says so in `MutableState::kept_fields`; replaying the record takes it from the previous one.
//!
//! What was written is known by a fingerprint per field (SHA-256, 128 bits) kept on the run,
//! not by tracking who changes the fields, so no code path can change one unseen. A run that
//! did not come from its own records in this log (new, faulted in from the archive, loaded
//! after a restart or a shard move) has no fingerprints: its next record is whole. Compaction
//! writes whole records, so the fingerprints stay true after it.

use prost::Message;

use crate::store::state::MutableState;

const STARTED: u32 = 1;
const RESET_POINTS: u32 = 2;
const MEMO: u32 = 4;
const SEARCH_ATTRIBUTES: u32 = 8;

/// Fingerprints of the fields as the log last wrote them for a run (0: not known).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct LoggedFields([u128; 4]);

/// The fields taken out of a state while its record is encoded.
#[derive(Default)]
pub(crate) struct Elided {
    started: Option<
        Box<temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes>,
    >,
    reset_points: Option<temporalio_protos::temporal::api::workflow::v1::ResetPoints>,
    memo: Option<temporalio_protos::temporal::api::common::v1::Memo>,
    search_attributes: Option<temporalio_protos::temporal::api::common::v1::SearchAttributes>,
}

fn fingerprint(field: &impl Message) -> u128 {
    let digest = ring::digest::digest(&ring::digest::SHA256, &field.encode_to_vec());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    // Never 0, which means "not known".
    u128::from_le_bytes(first) | 1
}

/// Takes `field` out when the log holds it as it is (setting `bit` in `kept`); otherwise
/// notes its fingerprint as what this record writes.
fn take_if_logged<T: Message>(
    field: &mut Option<T>,
    logged: &mut u128,
    bit: u32,
    kept: &mut u32,
) -> Option<T> {
    let Some(value) = field.as_ref() else {
        *logged = 0;
        return None;
    };
    let now = fingerprint(value);
    if now == *logged {
        *kept |= bit;
        return field.take();
    }
    *logged = now;
    None
}

impl LoggedFields {
    /// Takes out of `ms` the fields the log already holds as they are, for one record; the
    /// caller puts them back with [`put_back`] once the record is encoded.
    pub(crate) fn elide(&mut self, ms: &mut MutableState) -> Elided {
        let mut kept = 0;
        let [started, resets, memo, attrs] = &mut self.0;
        let elided = Elided {
            started: take_if_logged(&mut ms.started, started, STARTED, &mut kept),
            reset_points: take_if_logged(
                &mut ms.auto_reset_points,
                resets,
                RESET_POINTS,
                &mut kept,
            ),
            memo: take_if_logged(&mut ms.memo, memo, MEMO, &mut kept),
            search_attributes: take_if_logged(
                &mut ms.search_attributes,
                attrs,
                SEARCH_ATTRIBUTES,
                &mut kept,
            ),
        };
        ms.kept_fields = kept;
        elided
    }
}

/// Restores the fields [`LoggedFields::elide`] took out.
pub(crate) fn put_back(ms: &mut MutableState, elided: Elided) {
    ms.kept_fields = 0;
    if elided.started.is_some() {
        ms.started = elided.started;
    }
    if elided.reset_points.is_some() {
        ms.auto_reset_points = elided.reset_points;
    }
    if elided.memo.is_some() {
        ms.memo = elided.memo;
    }
    if elided.search_attributes.is_some() {
        ms.search_attributes = elided.search_attributes;
    }
}

/// Replaying a record: fills the fields it left out from the run's previous record (`None`:
/// the log holds no earlier record of the run, which is damage).
pub(crate) fn restore(
    ms: &mut MutableState,
    previous: Option<&MutableState>,
) -> Result<(), String> {
    let kept = std::mem::take(&mut ms.kept_fields);
    if kept == 0 {
        return Ok(());
    }
    let Some(previous) = previous else {
        return Err(format!(
            "the log's record of run {}/{}/{} refers to an earlier record of it that the log \
             does not hold",
            ms.namespace, ms.workflow_id, ms.run_id
        ));
    };
    if kept & STARTED != 0 {
        ms.started = previous.started.clone();
    }
    if kept & RESET_POINTS != 0 {
        ms.auto_reset_points = previous.auto_reset_points.clone();
    }
    if kept & MEMO != 0 {
        ms.memo = previous.memo.clone();
    }
    if kept & SEARCH_ATTRIBUTES != 0 {
        ms.search_attributes = previous.search_attributes.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;

    fn state(attempt: i32) -> MutableState {
        MutableState {
            workflow_id: "wf".into(),
            started: Some(Box::new(WorkflowExecutionStartedEventAttributes {
                attempt,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn an_unchanged_field_is_left_out_and_restored_from_the_previous_record() {
        let mut logged = LoggedFields::default();
        let mut ms = state(1);
        // First record: whole.
        let elided = logged.elide(&mut ms);
        assert_eq!(ms.kept_fields, 0);
        assert!(ms.started.is_some());
        let first = ms.clone();
        put_back(&mut ms, elided);
        // Second, unchanged: left out, and replay restores it.
        let elided = logged.elide(&mut ms);
        let mut second = ms.clone();
        assert_eq!(
            (second.kept_fields, second.started.is_none()),
            (STARTED, true)
        );
        put_back(&mut ms, elided);
        assert_eq!(ms, state(1));
        restore(&mut second, Some(&first)).unwrap();
        assert_eq!(second, state(1));
        // Changed: written again.
        ms.started.as_mut().unwrap().attempt = 2;
        let elided = logged.elide(&mut ms);
        assert_eq!(
            (ms.kept_fields, ms.started.as_ref().map(|s| s.attempt)),
            (0, Some(2))
        );
        put_back(&mut ms, elided);
    }

    #[test]
    fn a_record_whose_previous_record_is_missing_is_damage() {
        let mut logged = LoggedFields::default();
        let mut ms = state(1);
        let _ = logged.elide(&mut ms);
        let mut record = ms.clone();
        let _ = logged.elide(&mut record);
        assert!(
            restore(&mut record, None)
                .unwrap_err()
                .contains("does not hold")
        );
    }
}
