//! Size limits, at Temporal's default values: payloads over 2 MiB are refused, histories past
//! 51,200 events or 50 MiB end the run (workers are told to continue-as-new well before, see
//! `suggest_continue_as_new`).

use temporalio_protos::temporal::api::common::v1::Payloads;

pub const MAX_PAYLOAD_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_HISTORY_EVENTS: i64 = 51_200;
pub const MAX_HISTORY_BYTES: i64 = 50 * 1024 * 1024;

/// An error message if `payloads` is over the limit.
pub fn check_payloads(what: &str, payloads: &Option<Payloads>) -> Result<(), String> {
    let size = payloads
        .as_ref()
        .map(prost::Message::encoded_len)
        .unwrap_or(0);
    if size > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "{what} is {size} bytes; payloads are limited to {MAX_PAYLOAD_BYTES} bytes"
        ));
    }
    Ok(())
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
