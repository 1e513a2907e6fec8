//! Durin: durable execution on Kubernetes.
//!
//! Request flow: `api` (gRPC services, request validation and error mapping) calls into
//! `engine` (in-memory mutable state, history and task state machines, matching, timers),
//! which persists every change through `store` (an append-only log with group commit) before
//! any reply is sent.

pub mod allocator;
pub mod api;
pub mod batch;
pub mod cli;
pub mod cluster;
pub mod connections;
pub mod engine;
pub mod go_duration;
pub mod metrics;
pub mod operator;
pub mod proto;
pub mod rpc;
pub mod schedule;
pub mod stable_hash;
pub mod store;
pub mod time;
pub mod tls;
pub mod visibility;
