//! The rollout's next move, decided from the spec, what the engine's worker deployment
//! routes now, and the step the controller recorded. Pure: the clock is passed in, and the
//! caller carries the move out.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::go_duration;
use crate::operator::crd::worker::{Rollout, RolloutStrategy};
use crate::operator::translate::InvalidSpec;

/// The engine's worker deployment as the rollout needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineView {
    pub current: Option<String>,
    /// The ramping build id and its percentage.
    pub ramping: Option<(String, f32)>,
    /// Registered versions (a worker of them polled), by build id.
    pub versions: BTreeMap<String, EngineVersion>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineVersion {
    /// `Inactive`, `Ramping`, `Current`, `Draining` or `Drained`.
    pub status: String,
    /// It was the current version once: going back to it is a rollback.
    pub was_current: bool,
}

/// Where the target version's gate workflow stands.
#[derive(Debug, Clone, PartialEq)]
pub enum GateState {
    /// No gate is configured.
    None,
    NotStarted,
    Running,
    Passed,
    Failed(String),
}

/// The Progressive step a target version is on, as recorded in status.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub build_id: String,
    pub step: u32,
    pub started_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// The target version is current and nothing else ramps.
    Done,
    /// Nothing to change now.
    Hold {
        reason: &'static str,
        message: String,
    },
    /// Start the target version's gate workflow.
    StartGate,
    /// Make the target current (`reason` says why now).
    Promote { reason: &'static str },
    /// Ramp the target at a step's percentage.
    Ramp { step: u32, percentage: f32 },
    /// End the ramp of a version that is no longer the target (a rollback mid-ramp).
    StopRamp { build_id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub step: Move,
    /// When to look again, if sooner than the usual refresh (a step's pause ends).
    pub recheck: Option<Duration>,
}

impl Plan {
    fn now(step: Move) -> Self {
        Plan {
            step,
            recheck: None,
        }
    }

    fn hold(reason: &'static str, message: String) -> Self {
        Plan::now(Move::Hold { reason, message })
    }
}

pub fn next(
    rollout: &Rollout,
    target: &str,
    engine: &EngineView,
    progress: Option<&Progress>,
    gate: &GateState,
    now_ms: i64,
) -> Result<Plan, InvalidSpec> {
    let manual = rollout.strategy == RolloutStrategy::Manual;
    if engine.current.as_deref() == Some(target) {
        return Ok(match &engine.ramping {
            Some((other, _)) if !manual && other != target => Plan::now(Move::StopRamp {
                build_id: other.clone(),
            }),
            _ => Plan::now(Move::Done),
        });
    }
    let Some(version) = engine.versions.get(target) else {
        return Ok(Plan::hold(
            "WaitingForPollers",
            format!("no worker of build {target} has polled yet"),
        ));
    };
    if manual {
        return Ok(Plan::hold(
            "Manual",
            format!("build {target} is registered; strategy Manual leaves routing to you"),
        ));
    }
    if rollout.paused {
        return Ok(Plan::hold("Paused", "spec.rollout.paused is set".into()));
    }
    if version.was_current {
        return Ok(Plan::now(Move::Promote {
            reason: "RolledBack",
        }));
    }
    match gate {
        GateState::None | GateState::Passed => {}
        GateState::NotStarted => return Ok(Plan::now(Move::StartGate)),
        GateState::Running => {
            let message = format!("the gate workflow runs on build {target}");
            return Ok(Plan::hold("GateRunning", message));
        }
        GateState::Failed(why) => {
            let message = format!("the gate workflow on build {target} {why}");
            return Ok(Plan::hold("GateFailed", message));
        }
    }
    if engine.current.is_none() {
        return Ok(Plan::now(Move::Promote {
            reason: "FirstVersion",
        }));
    }
    if rollout.strategy == RolloutStrategy::AllAtOnce || rollout.steps.is_empty() {
        return Ok(Plan::now(Move::Promote {
            reason: "AllAtOnce",
        }));
    }
    progressive(rollout, target, engine, progress, now_ms)
}

fn progressive(
    rollout: &Rollout,
    target: &str,
    engine: &EngineView,
    progress: Option<&Progress>,
    now_ms: i64,
) -> Result<Plan, InvalidSpec> {
    let first = Move::Ramp {
        step: 0,
        percentage: rollout.steps[0].ramp_percentage as f32,
    };
    let Some((_, percentage)) = engine.ramping.as_ref().filter(|(b, _)| b == target) else {
        return Ok(Plan::now(first));
    };
    // The recorded step, else (status lost) the step whose percentage is ramping, from now.
    let (step, started_ms) = match progress.filter(|p| p.build_id == target) {
        Some(p) => (p.step as usize, p.started_ms),
        None => {
            let at = rollout
                .steps
                .iter()
                .position(|s| s.ramp_percentage as f32 == *percentage);
            (at.unwrap_or(0), now_ms)
        }
    };
    let Some(current_step) = rollout.steps.get(step) else {
        return Ok(Plan::now(first));
    };
    let field = format!("spec.rollout.steps[{step}].pauseDuration");
    let pause = go_duration::parse_millis(&current_step.pause_duration)
        .ok_or_else(|| InvalidSpec(format!("{field} is not a duration")))?;
    let left = started_ms + pause - now_ms;
    if left > 0 {
        return Ok(Plan {
            step: Move::Hold {
                reason: "Ramping",
                message: format!(
                    "build {target} takes {percentage}% of new workflows (step {} of {})",
                    step + 1,
                    rollout.steps.len()
                ),
            },
            recheck: Some(Duration::from_millis(left as u64)),
        });
    }
    Ok(Plan::now(match rollout.steps.get(step + 1) {
        Some(s) => Move::Ramp {
            step: step as u32 + 1,
            percentage: s.ramp_percentage as f32,
        },
        None => Move::Promote {
            reason: "RampCompleted",
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::crd::worker_rollout::RolloutStep;

    fn rollout(strategy: RolloutStrategy) -> Rollout {
        Rollout {
            strategy,
            steps: vec![
                RolloutStep {
                    ramp_percentage: 10,
                    pause_duration: "30s".into(),
                },
                RolloutStep {
                    ramp_percentage: 50,
                    pause_duration: "1m".into(),
                },
            ],
            ..Default::default()
        }
    }

    fn engine(
        current: Option<&str>,
        ramping: Option<(&str, f32)>,
        registered: &[&str],
    ) -> EngineView {
        EngineView {
            current: current.map(str::to_string),
            ramping: ramping.map(|(b, p)| (b.to_string(), p)),
            versions: registered
                .iter()
                .map(|b| (b.to_string(), EngineVersion::default()))
                .collect(),
        }
    }

    fn progress(step: u32, started_ms: i64) -> Progress {
        Progress {
            build_id: "v2".into(),
            step,
            started_ms,
        }
    }

    #[test]
    fn progressive_ramps_step_by_step_then_promotes() {
        let r = rollout(RolloutStrategy::Progressive);
        let waiting = engine(Some("v1"), None, &["v1"]);
        assert!(matches!(
            next(&r, "v2", &waiting, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Hold {
                reason: "WaitingForPollers",
                ..
            }
        ));
        let registered = engine(Some("v1"), None, &["v1", "v2"]);
        assert_eq!(
            next(&r, "v2", &registered, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Ramp {
                step: 0,
                percentage: 10.0
            }
        );
        let ramping = engine(Some("v1"), Some(("v2", 10.0)), &["v1", "v2"]);
        let held = next(
            &r,
            "v2",
            &ramping,
            Some(&progress(0, 1_000)),
            &GateState::None,
            21_000,
        )
        .unwrap();
        assert_eq!(held.recheck, Some(Duration::from_secs(10)));
        assert_eq!(
            next(
                &r,
                "v2",
                &ramping,
                Some(&progress(0, 1_000)),
                &GateState::None,
                31_000
            )
            .unwrap()
            .step,
            Move::Ramp {
                step: 1,
                percentage: 50.0
            }
        );
        let last = engine(Some("v1"), Some(("v2", 50.0)), &["v1", "v2"]);
        assert_eq!(
            next(
                &r,
                "v2",
                &last,
                Some(&progress(1, 0)),
                &GateState::None,
                60_000
            )
            .unwrap()
            .step,
            Move::Promote {
                reason: "RampCompleted"
            }
        );
        let done = engine(Some("v2"), None, &["v1", "v2"]);
        assert_eq!(
            next(&r, "v2", &done, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Done
        );
    }

    #[test]
    fn a_lost_step_is_recovered_from_the_ramping_percentage() {
        let r = rollout(RolloutStrategy::Progressive);
        let ramping = engine(Some("v1"), Some(("v2", 50.0)), &["v1", "v2"]);
        let plan = next(&r, "v2", &ramping, None, &GateState::None, 5_000).unwrap();
        assert_eq!(
            plan.recheck,
            Some(Duration::from_secs(60)),
            "step 2 from now"
        );
    }

    #[test]
    fn first_version_rollback_and_all_at_once_promote_at_once() {
        let r = rollout(RolloutStrategy::Progressive);
        let first = engine(None, None, &["v1"]);
        assert_eq!(
            next(&r, "v1", &first, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Promote {
                reason: "FirstVersion"
            }
        );
        let mut back = engine(Some("v2"), None, &["v1", "v2"]);
        back.versions.get_mut("v1").unwrap().was_current = true;
        assert_eq!(
            next(&r, "v1", &back, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Promote {
                reason: "RolledBack"
            }
        );
        let all = rollout(RolloutStrategy::AllAtOnce);
        let registered = engine(Some("v1"), None, &["v1", "v2"]);
        assert_eq!(
            next(&all, "v2", &registered, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Promote {
                reason: "AllAtOnce"
            }
        );
    }

    #[test]
    fn a_rollback_mid_ramp_ends_the_ramp() {
        let r = rollout(RolloutStrategy::Progressive);
        let abandoned = engine(Some("v1"), Some(("v2", 10.0)), &["v1", "v2"]);
        assert_eq!(
            next(&r, "v1", &abandoned, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::StopRamp {
                build_id: "v2".into()
            }
        );
    }

    #[test]
    fn a_gate_runs_before_any_traffic_and_a_failed_one_holds() {
        let r = rollout(RolloutStrategy::Progressive);
        let registered = engine(Some("v1"), None, &["v1", "v2"]);
        let at = |gate: GateState| next(&r, "v2", &registered, None, &gate, 0).unwrap().step;
        assert_eq!(at(GateState::NotStarted), Move::StartGate);
        assert!(matches!(
            at(GateState::Running),
            Move::Hold {
                reason: "GateRunning",
                ..
            }
        ));
        assert!(matches!(
            at(GateState::Failed("failed".into())),
            Move::Hold {
                reason: "GateFailed",
                ..
            }
        ));
        assert_eq!(
            at(GateState::Passed),
            Move::Ramp {
                step: 0,
                percentage: 10.0
            }
        );
        let mut back = registered.clone();
        back.versions.get_mut("v2").unwrap().was_current = true;
        assert_eq!(
            next(&r, "v2", &back, None, &GateState::NotStarted, 0)
                .unwrap()
                .step,
            Move::Promote {
                reason: "RolledBack"
            },
            "a rollback needs no gate"
        );
    }

    #[test]
    fn paused_and_manual_hold() {
        let mut r = rollout(RolloutStrategy::Progressive);
        r.paused = true;
        let ramping = engine(Some("v1"), Some(("v2", 10.0)), &["v1", "v2"]);
        let hold = |plan: Plan| match plan.step {
            Move::Hold { reason, .. } => reason,
            other => panic!("expected a hold, got {other:?}"),
        };
        assert_eq!(
            hold(
                next(
                    &r,
                    "v2",
                    &ramping,
                    Some(&progress(0, 0)),
                    &GateState::None,
                    1 << 40
                )
                .unwrap()
            ),
            "Paused"
        );
        let manual = rollout(RolloutStrategy::Manual);
        assert_eq!(
            hold(next(&manual, "v2", &ramping, None, &GateState::None, 0).unwrap()),
            "Manual"
        );
        let done = engine(Some("v2"), Some(("v3", 5.0)), &["v2", "v3"]);
        assert_eq!(
            next(&manual, "v2", &done, None, &GateState::None, 0)
                .unwrap()
                .step,
            Move::Done
        );
    }
}
