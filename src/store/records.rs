//! The records Durin persists, as protobuf messages (hand-written with `prost` derives so that
//! Temporal's own message types can be embedded without copying any `.proto` file).

use crate::engine::state::MutableState;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::workflowservice::v1::DescribeNamespaceResponse;

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    #[prost(oneof = "log_record::Kind", tags = "1, 2, 3, 4")]
    pub kind: Option<log_record::Kind>,
}

pub mod log_record {
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // records are encoded right away, never kept
    pub enum Kind {
        #[prost(message, tag = "1")]
        Namespace(super::NamespaceRecord),
        #[prost(message, tag = "2")]
        Execution(super::ExecutionRecord),
        /// Several changes that must survive a crash together (one engine operation that
        /// touched several runs, e.g. a parent and the child it started).
        #[prost(message, tag = "3")]
        Batch(super::RecordBatch),
        /// A closed run removed after its namespace's retention period.
        #[prost(message, tag = "4")]
        Deleted(super::DeletedRun),
    }
}

/// The full description of a namespace after a change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceRecord {
    #[prost(message, optional, tag = "1")]
    pub namespace: Option<DescribeNamespaceResponse>,
    /// Custom search attributes: name -> `temporal.api.enums.v1.IndexedValueType`.
    #[prost(btree_map = "string, int32", tag = "2")]
    pub custom_search_attributes: std::collections::BTreeMap<String, i32>,
}

/// One transaction on one workflow run: the run's mutable state after the change, plus the
/// history events the change appended (history is only ever appended, never rewritten).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionRecord {
    #[prost(message, optional, tag = "1")]
    pub state: Option<MutableState>,
    #[prost(message, repeated, tag = "2")]
    pub new_events: Vec<HistoryEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordBatch {
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeletedRun {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
}
