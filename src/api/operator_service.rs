//! OperatorService. Search-attribute management arrives with visibility; until then every
//! call answers UNIMPLEMENTED through the generated default stubs.

use std::sync::Arc;

use crate::engine::Engine;
use crate::proto::operatorservice::operator_service_server::OperatorService;

pub struct OperatorHandler {
    #[allow(dead_code)]
    engine: Arc<Engine>,
}

impl OperatorHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl OperatorService for OperatorHandler {}
