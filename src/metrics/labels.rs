//! Label values (namespaces, task queues) interned once: a metric is recorded on every RPC and
//! task, and looking its series up by a small id instead of an owned string keeps that free of
//! allocations. The number of distinct values is bounded; the rest share `_other_`.

use std::collections::BTreeMap;

/// Most distinct values named in labels; the rest share [`OTHER`].
const MAX_VALUES: usize = 1000;
/// Temporal's label for a call without a (known) namespace.
const UNKNOWN: &str = "_unknown_";
const OTHER: &str = "_other_";

/// The id of an interned label value.
pub(super) type LabelId = u32;
pub(super) const UNKNOWN_ID: LabelId = 0;
const OTHER_ID: LabelId = 1;

/// The values one label has taken.
pub(super) struct LabelValues {
    ids: BTreeMap<String, LabelId>,
    names: Vec<String>,
}

impl Default for LabelValues {
    fn default() -> Self {
        Self {
            ids: BTreeMap::new(),
            names: vec![UNKNOWN.to_string(), OTHER.to_string()],
        }
    }
}

impl LabelValues {
    /// The id of `value` if it is already a label value, or may become one (`admit`) while
    /// there is room; otherwise `_unknown_` (not admitted) or `_other_` (no room).
    pub(super) fn id(&mut self, value: &str, admit: bool) -> LabelId {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        if !admit {
            return UNKNOWN_ID;
        }
        if self.ids.len() >= MAX_VALUES {
            return OTHER_ID;
        }
        let id = self.names.len() as LabelId;
        self.names.push(value.to_string());
        self.ids.insert(value.to_string(), id);
        id
    }

    pub(super) fn name(&self, id: LabelId) -> &str {
        self.names.get(id as usize).map_or(UNKNOWN, String::as_str)
    }
}
