//! Commands that record markers and change the run's search attributes and memo. Each takes the run, the task's context and the command, stages its
//! events on the run, and reports what must happen outside the run.

use super::*;

/// Records a marker (side effects, versions, local activities).
pub(super) fn record_marker(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::RecordMarkerCommandAttributes,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    use WorkflowTaskFailedCause as C;
    if a.marker_name.is_empty() {
        return Err(bad(
            C::BadRecordMarkerAttributes,
            "MarkerName is not set on RecordMarkerCommand",
        ));
    }
    run.append(
        now,
        Attributes::MarkerRecordedEventAttributes(MarkerRecordedEventAttributes {
            marker_name: a.marker_name.clone(),
            details: a.details.clone(),
            workflow_task_completed_event_id: wtc_id,
            header: a.header.clone(),
            failure: a.failure.clone(),
        }),
    );
    Ok(())
}

/// Validates and merges search attributes into the run's.
pub(super) fn upsert_workflow_search_attributes(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::UpsertWorkflowSearchAttributesCommandAttributes,
) -> Result<(), CommandError> {
    let TaskContext {
        wtc_id,
        now,
        custom_search_attributes,
        ..
    } = cx;
    use WorkflowTaskFailedCause as C;
    let upsert = a.search_attributes.clone().unwrap_or_default();
    crate::visibility::search_attributes::validate(custom_search_attributes, &upsert)
        .map_err(|m| bad(C::BadSearchAttributes, m))?;
    merge_search_attributes(&mut run.ms.search_attributes, &upsert);
    run.append(
        now,
        Attributes::UpsertWorkflowSearchAttributesEventAttributes(
            UpsertWorkflowSearchAttributesEventAttributes {
                workflow_task_completed_event_id: wtc_id,
                search_attributes: Some(upsert),
            },
        ),
    );
    Ok(())
}

/// Merges memo fields into the run's.
pub(super) fn modify_workflow_properties(
    run: &mut Run,
    cx: TaskContext,
    a: &temporalio_protos::temporal::api::command::v1::ModifyWorkflowPropertiesCommandAttributes,
) -> Result<(), CommandError> {
    let TaskContext { wtc_id, now, .. } = cx;
    let upsert = a.upserted_memo.clone().unwrap_or_default();
    merge_memo(&mut run.ms.memo, &upsert);
    run.append(
        now,
        Attributes::WorkflowPropertiesModifiedEventAttributes(
            WorkflowPropertiesModifiedEventAttributes {
                workflow_task_completed_event_id: wtc_id,
                upserted_memo: Some(upsert),
            },
        ),
    );
    Ok(())
}
