//! The table of RPCs against the handlers, the service stack and the documentation.

use std::sync::Arc;
use std::time::Duration;

use super::{OPERATOR_RPCS, WORKFLOW_RPCS, parse_grpc_timeout};

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `snake_case` to `CamelCase`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The RPC methods a handler file implements (its `async fn`s inside the service impl).
fn handler_methods(path: &str) -> Vec<String> {
    read(path)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("async fn "))
        .map(|rest| {
            camel(
                &rest
                    .chars()
                    .take_while(|c| *c == '_' || c.is_ascii_alphanumeric())
                    .collect::<String>(),
            )
        })
        .collect()
}

#[test]
fn every_handler_method_is_in_the_table_and_every_row_has_a_handler() {
    for (file, table) in [
        ("src/api/workflow_service.rs", WORKFLOW_RPCS),
        ("src/api/operator_service.rs", OPERATOR_RPCS),
    ] {
        let mut handled = handler_methods(file);
        handled.sort();
        let mut rows: Vec<String> = table.iter().map(|s| s.to_string()).collect();
        rows.sort();
        assert_eq!(
            handled, rows,
            "{file} implements exactly the RPCs of the table in src/rpc/mod.rs"
        );
    }
}

#[test]
fn the_compatibility_document_lists_exactly_the_table_as_supported() {
    let doc = read("docs/compatibility.md");
    let (supported, rest) = doc
        .split_once("## Not yet supported")
        .expect("a 'Not yet supported' section");
    for name in WORKFLOW_RPCS.iter().chain(OPERATOR_RPCS) {
        assert!(
            supported.contains(&format!("`{name}`")),
            "docs/compatibility.md does not list {name} as supported"
        );
        assert!(
            !rest.contains(&format!("`{name}`")),
            "docs/compatibility.md lists {name} as not yet supported"
        );
    }
}

/// Every row answers through the whole stack (checks, routing, handler), and an RPC outside
/// the table answers UNIMPLEMENTED: a default request gets the handler's own verdict.
#[tokio::test]
async fn every_row_is_served_by_the_whole_stack() {
    use crate::api::authz::Guarded;
    use crate::api::workflow_service::WorkflowHandler;
    use crate::cluster::route::{Routed, dispatch};
    let dir = tempfile::tempdir().unwrap();
    let wal = crate::store::wal::Wal::open(dir.path()).unwrap();
    let engine = crate::engine::Engine::open(wal, Default::default()).unwrap();
    engine.ensure_namespace("default").await.unwrap();
    let stack: Arc<Guarded<Routed<WorkflowHandler>>> = Arc::new(Guarded::new(
        Routed::new(WorkflowHandler::new(engine, None), None),
        None,
        None,
    ));
    for name in WORKFLOW_RPCS {
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            dispatch(&*stack, name, &[], Default::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("{name} did not answer a default request"));
        if let Err(status) = answer {
            assert_ne!(
                status.code(),
                tonic::Code::Unimplemented,
                "{name}: {status:?}"
            );
        }
    }
    let outside = dispatch(
        &*stack,
        "UpdateWorkerBuildIdCompatibility",
        &[],
        Default::default(),
    )
    .await;
    assert_eq!(
        outside.map(|_| ()).unwrap_err().code(),
        tonic::Code::Unimplemented
    );
}

#[test]
fn parses_grpc_timeouts() {
    assert_eq!(parse_grpc_timeout("70000m"), Some(Duration::from_secs(70)));
    assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
    assert_eq!(parse_grpc_timeout("x"), None);
    assert_eq!(parse_grpc_timeout("12Q"), None);
}
