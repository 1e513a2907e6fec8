//! Activity task answers from workers: heartbeats, completions, failures and cancellations,
//! by task token or by workflow and activity id (the engine side is `engine/activity.rs`).

use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Status};

use super::{Reply, WorkflowHandler, ok};
use crate::engine::activity::{ActivityRef, AttemptEnd};

/// The activity a by-id request names.
fn by_id<'a>(
    namespace: &'a str,
    workflow_id: &'a str,
    run_id: &'a str,
    activity_id: &'a str,
) -> ActivityRef<'a> {
    ActivityRef::Id {
        namespace,
        workflow_id,
        run_id,
        activity_id,
    }
}

/// The activity a task token names.
fn by_token<'a>(namespace: &'a str, token: &'a [u8]) -> ActivityRef<'a> {
    ActivityRef::Token { namespace, token }
}

fn required(failure: Option<Failure>) -> Result<Box<Failure>, Status> {
    failure
        .map(Box::new)
        .ok_or_else(|| Status::invalid_argument("Failure is not set on request."))
}

impl WorkflowHandler {
    /// Ends the activity's attempt as the worker said; the answer is empty.
    async fn end_attempt<T: Default + prost::Message>(
        &self,
        activity: ActivityRef<'_>,
        end: AttemptEnd,
    ) -> Reply<T> {
        ok(self
            .engine
            .end_activity_attempt(activity, end)
            .await
            .map(|_| T::default()))
    }

    pub(super) async fn activity_heartbeat(
        &self,
        req: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatResponse> {
        let r = req.into_inner();
        let activity = by_token(&r.namespace, &r.task_token);
        let answer = self.engine.heartbeat(activity, r.details).await;
        ok(answer.map(|a| RecordActivityTaskHeartbeatResponse {
            cancel_requested: a.cancel_requested,
            activity_paused: a.paused,
            activity_reset: a.reset,
        }))
    }

    pub(super) async fn activity_heartbeat_by_id(
        &self,
        req: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatByIdResponse> {
        let r = req.into_inner();
        let activity = by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id);
        let answer = self.engine.heartbeat(activity, r.details.clone()).await;
        ok(answer.map(|a| RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: a.cancel_requested,
            activity_paused: a.paused,
            activity_reset: a.reset,
        }))
    }

    pub(super) async fn activity_completed(
        &self,
        req: Request<RespondActivityTaskCompletedRequest>,
    ) -> Reply<RespondActivityTaskCompletedResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Completed {
            result: r.result,
            identity: r.identity,
        };
        self.end_attempt(by_token(&r.namespace, &r.task_token), end)
            .await
    }

    pub(super) async fn activity_completed_by_id(
        &self,
        req: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<RespondActivityTaskCompletedByIdResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Completed {
            result: r.result.clone(),
            identity: r.identity.clone(),
        };
        let activity = by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id);
        self.end_attempt(activity, end).await
    }

    pub(super) async fn activity_failed(
        &self,
        req: Request<RespondActivityTaskFailedRequest>,
    ) -> Reply<RespondActivityTaskFailedResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Failed {
            failure: required(r.failure)?,
            last_heartbeat_details: r.last_heartbeat_details,
            identity: r.identity,
        };
        self.end_attempt(by_token(&r.namespace, &r.task_token), end)
            .await
    }

    pub(super) async fn activity_failed_by_id(
        &self,
        req: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<RespondActivityTaskFailedByIdResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Failed {
            failure: required(r.failure.clone())?,
            last_heartbeat_details: r.last_heartbeat_details.clone(),
            identity: r.identity.clone(),
        };
        let activity = by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id);
        self.end_attempt(activity, end).await
    }

    pub(super) async fn activity_canceled(
        &self,
        req: Request<RespondActivityTaskCanceledRequest>,
    ) -> Reply<RespondActivityTaskCanceledResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Canceled {
            details: r.details,
            identity: r.identity,
        };
        self.end_attempt(by_token(&r.namespace, &r.task_token), end)
            .await
    }

    pub(super) async fn activity_canceled_by_id(
        &self,
        req: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<RespondActivityTaskCanceledByIdResponse> {
        let r = req.into_inner();
        let end = AttemptEnd::Canceled {
            details: r.details.clone(),
            identity: r.identity.clone(),
        };
        let activity = by_id(&r.namespace, &r.workflow_id, &r.run_id, &r.activity_id);
        self.end_attempt(activity, end).await
    }
}
