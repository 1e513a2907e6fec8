//! Nexus task queues, the handler side of Nexus. Until Durin dispatches Nexus operations
//! (no endpoint routes one to a queue yet) a poll waits out its deadline and answers empty,
//! as on a server where no caller has scheduled an operation; the poller is seen by
//! DescribeTaskQueue under the Nexus type. SDK workers poll Nexus queues for their own
//! purposes too: the worker-commands queue each process polls once the namespace
//! advertises worker heartbeats.

use std::sync::Arc;

use temporalio_protos::temporal::api::workflowservice::v1::{
    PollNexusTaskQueueRequest, PollNexusTaskQueueResponse,
};

use super::matching::{QueueKey, QueueKind};
use super::{Engine, Result};

impl Engine {
    pub async fn poll_nexus_task(
        self: &Arc<Self>,
        req: PollNexusTaskQueueRequest,
        deadline: tokio::time::Instant,
    ) -> Result<PollNexusTaskQueueResponse> {
        let queue_name = self.poll_target(&req.namespace, &req.task_queue).await?;
        let queue = QueueKey::new(&req.namespace, &queue_name, QueueKind::Nexus);
        let poller = super::Poller {
            identity: req.identity.clone(),
            forwarded: false,
            instance_key: req.worker_instance_key.clone(),
        };
        // Nothing enqueues Nexus tasks yet: a task taken here would be a bug, and is dropped.
        self.poll_queue(queue, &poller, deadline, |_, _| {
            Ok(None::<PollNexusTaskQueueResponse>)
        })
        .await?;
        Ok(PollNexusTaskQueueResponse::default())
    }
}
