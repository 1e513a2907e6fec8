//! Size limits, at Temporal's default values: payloads over 2 MiB are refused, histories past
//! 51,200 events or 50 MiB end the run (workers are told to continue-as-new well before, see
//! `suggest_continue_as_new`).

use temporalio_protos::temporal::api::common::v1::Payloads;

pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_HISTORY_EVENTS: i64 = 51_200;
pub const MAX_HISTORY_BYTES: i64 = 50 * 1024 * 1024;
/// Signals one run accepts (Temporal's default per-execution signal limit); past it a signal
/// is refused, which also bounds the request ids a run keeps for de-duplication.
pub const MAX_SIGNALS_PER_RUN: i64 = 10_000;
/// Updates of one run admitted but not completed (Temporal's default); past it an update is
/// refused with RESOURCE_EXHAUSTED, which clients retry.
pub const MAX_IN_FLIGHT_UPDATES: usize = 10;
/// Updates one run accepts in all (their outcomes are kept for de-duplication).
pub const MAX_TOTAL_UPDATES: usize = 2000;

/// Work one run may have pending at once (Temporal's defaults): past a cap, the workflow
/// task that asks for more fails with a `Pending…LimitExceeded` cause and is retried once
/// some of the pending work is done, so a runaway loop cannot grow a run without bound.
pub const MAX_PENDING_ACTIVITIES: usize = 2000;
pub const MAX_PENDING_CHILDREN: usize = 2000;
pub const MAX_PENDING_EXTERNAL_SIGNALS: usize = 2000;
pub const MAX_PENDING_CANCEL_REQUESTS: usize = 2000;

/// An error message if `what` (one of `kind`) encodes to more than `limit` bytes.
fn check_size<M: prost::Message>(
    what: &str,
    kind: &str,
    value: &Option<M>,
    limit: usize,
) -> Result<(), String> {
    let size = value.as_ref().map(M::encoded_len).unwrap_or(0);
    if size > limit {
        return Err(format!(
            "{what} is {size} bytes; {kind} are limited to {limit} bytes"
        ));
    }
    Ok(())
}

pub fn check_payloads(what: &str, payloads: &Option<Payloads>) -> Result<(), String> {
    check_size(what, "payloads", payloads, MAX_PAYLOAD_BYTES)
}

pub const MAX_MEMO_BYTES: usize = 2 * 1024 * 1024;
/// Temporal's default limit on the total size of a workflow's search attributes.
pub const MAX_SEARCH_ATTRIBUTES_BYTES: usize = 40 * 1024;

pub fn check_memo(
    memo: &Option<temporalio_protos::temporal::api::common::v1::Memo>,
) -> Result<(), String> {
    check_size("memo", "memos", memo, MAX_MEMO_BYTES)
}

pub fn check_search_attributes(
    attrs: &Option<temporalio_protos::temporal::api::common::v1::SearchAttributes>,
) -> Result<(), String> {
    check_size(
        "search attributes",
        "search attributes",
        attrs,
        MAX_SEARCH_ATTRIBUTES_BYTES,
    )
}

/// Why a history must end, if it grew past the hard limits.
pub fn history_over_limit(events: i64, bytes: i64) -> Option<String> {
    if events > MAX_HISTORY_EVENTS {
        return Some(format!(
            "Workflow history count exceeds limit ({events} events, limit {MAX_HISTORY_EVENTS})."
        ));
    }
    if bytes > MAX_HISTORY_BYTES {
        return Some(format!(
            "Workflow history size exceeds limit ({bytes} bytes, limit {MAX_HISTORY_BYTES})."
        ));
    }
    None
}
