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
}
