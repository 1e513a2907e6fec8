//! Visibility: listing and counting workflow executions with Temporal's query language.

pub mod query;
pub mod search_attributes;
