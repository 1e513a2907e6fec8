//! Standard `metav1.Condition` bookkeeping: a condition's transition time moves only when
//! its status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" };
    let (reason, message) = (reason.to_string(), message.to_string());
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = now.clone();
        }
        c.status = status.to_string();
        c.reason = reason;
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    conditions.push(Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    });
}

pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Where a resource stands overall, written as the conditions health checks read: `Ready`
/// (Flux, Argo CD health scripts, `kubectl wait --for=condition=Ready`) and kstatus's
/// `Reconciling` and `Stalled` (kpt, Flux's kstatus checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub state: State,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// What the spec asks for is in place.
    Ready,
    /// On the way there: nothing is wrong, it takes time.
    Progressing,
    /// It will not get there without a change by the user.
    Stalled,
}

impl Standing {
    pub fn new(state: State, reason: &str, message: &str) -> Self {
        Standing {
            state,
            reason: reason.to_string(),
            message: message.to_string(),
        }
    }
}

/// The standing of a resource the operator refused (`Accepted=False`): stalled until its spec
/// (or a namespace grant) changes.
pub fn refusal(conditions: &[Condition]) -> Option<Standing> {
    find(conditions, "Accepted")
        .filter(|c| c.status == "False")
        .map(|c| Standing::new(State::Stalled, &c.reason, &c.message))
}

/// Writes `standing` as the `Ready`, `Reconciling` and `Stalled` conditions.
pub fn set_standing(
    conditions: &mut Vec<Condition>,
    standing: &Standing,
    generation: Option<i64>,
    now: &Time,
) {
    let Standing {
        state,
        reason,
        message,
    } = standing;
    for (type_, when, idle) in [
        ("Ready", State::Ready, None),
        ("Reconciling", State::Progressing, Some("Idle")),
        ("Stalled", State::Stalled, Some("NotStalled")),
    ] {
        let on = *state == when;
        // Ready explains itself either way; the others carry a reason only while true.
        let (reason, message) = match idle {
            Some(idle) if !on => (idle, ""),
            _ => (reason.as_str(), message.as_str()),
        };
        set(conditions, type_, on, reason, message, generation, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let t0 = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(200).unwrap());
        let mut list = Vec::new();
        set(&mut list, "Running", true, "Started", "", Some(1), &t0);
        set(&mut list, "Running", true, "Started", "again", Some(2), &t1);
        assert_eq!(list[0].last_transition_time, t0);
        set(&mut list, "Running", false, "Closed", "", Some(2), &t1);
        assert_eq!(list[0].last_transition_time, t1);
        assert!(!is_true(&list, "Running"));
    }

    #[test]
    fn standing_sets_exactly_one_of_ready_reconciling_stalled() {
        let t = Time(k8s_openapi::jiff::Timestamp::from_second(100).unwrap());
        let mut list = Vec::new();
        let cases = [
            (
                Standing::new(State::Progressing, "Running", ""),
                "Reconciling",
            ),
            (Standing::new(State::Stalled, "Failed", "boom"), "Stalled"),
            (Standing::new(State::Ready, "Completed", ""), "Ready"),
        ];
        for (standing, true_one) in cases {
            set_standing(&mut list, &standing, Some(3), &t);
            for type_ in ["Ready", "Reconciling", "Stalled"] {
                assert_eq!(
                    is_true(&list, type_),
                    type_ == true_one,
                    "{standing:?}: {type_}"
                );
            }
        }
        assert_eq!(find(&list, "Stalled").unwrap().message, "");
        assert_eq!(find(&list, "Ready").unwrap().reason, "Completed");
    }
}
