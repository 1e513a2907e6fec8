//! Nexus task polls: long polls of a handler's queue, fetched from the other replicas too
//! (an operation's attempt waits in the queue of the replica that owns its caller's run).
//! The answers route by task token (`crate::rpc`) and are recorded by `engine/nexus/`.

use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::Request;

use super::{Reply, WorkflowHandler, ok};
use crate::cluster::fetch::PollTemplate;

impl WorkflowHandler {
    pub(super) async fn poll_nexus(
        &self,
        req: Request<PollNexusTaskQueueRequest>,
    ) -> Reply<PollNexusTaskQueueResponse> {
        let deadline = self.poll_deadline(&req, self.engine.config.long_poll_timeout);
        let forwarded =
            self.forwarded_or_fetch(&req, || PollTemplate::Nexus(req.get_ref().clone()));
        ok(self
            .engine
            .poll_nexus_task(req.into_inner(), deadline, forwarded)
            .await)
    }
}
