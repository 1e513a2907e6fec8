//! The Kubernetes face of Durin: custom resources and the controllers that reconcile them
//! into executions on the engine.

pub mod apply;
pub mod conditions;
pub mod connection;
pub mod context;
pub mod crd;
pub mod frontend;
pub mod leader;
pub mod nexus_endpoint_controller;
pub mod reconcile;
pub mod run;
pub mod schedule_actions;
pub mod schedule_controller;
pub mod tenancy;
pub mod translate;
pub mod worker_controller;
pub mod worker_rollout;
pub mod workflow_actions;
pub mod workflow_controller;
pub mod workflow_status;
