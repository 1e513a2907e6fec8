//! Activity task answers from workers: heartbeats, completions, failures and cancellations,
//! by task token or by workflow and activity id (the engine side is `engine/activity.rs`).

use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Status};

use super::{Reply, WorkflowHandler, ok};
use crate::engine::activity::{ActivityRef, AttemptEnd};

impl WorkflowHandler {
    pub(super) async fn activity_heartbeat(
        &self,
        req: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatResponse> {
        let r = req.into_inner();
        let cancel = self
            .engine
            .heartbeat(
                ActivityRef::Token {
                    namespace: &r.namespace,
                    token: &r.task_token,
                },
                r.details,
            )
            .await;
        ok(cancel.map(|answer| RecordActivityTaskHeartbeatResponse {
            cancel_requested: answer.cancel_requested,
            activity_paused: answer.paused,
            activity_reset: answer.reset,
        }))
    }

    pub(super) async fn activity_heartbeat_by_id(
        &self,
        req: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Reply<RecordActivityTaskHeartbeatByIdResponse> {
        let r = req.into_inner();
        let activity = ActivityRef::Id {
            namespace: &r.namespace,
            workflow_id: &r.workflow_id,
            run_id: &r.run_id,
            activity_id: &r.activity_id,
        };
        let cancel = self.engine.heartbeat(activity, r.details.clone()).await;
        ok(
            cancel.map(|answer| RecordActivityTaskHeartbeatByIdResponse {
                cancel_requested: answer.cancel_requested,
                activity_paused: answer.paused,
                activity_reset: answer.reset,
            }),
        )
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
        ok(self
            .engine
            .end_activity_attempt(
                ActivityRef::Token {
                    namespace: &r.namespace,
                    token: &r.task_token,
                },
                end,
            )
            .await
            .map(|_| Default::default()))
    }

    pub(super) async fn activity_completed_by_id(
        &self,
        req: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Reply<RespondActivityTaskCompletedByIdResponse> {
        let r = req.into_inner();
        let activity = ActivityRef::Id {
            namespace: &r.namespace,
            workflow_id: &r.workflow_id,
            run_id: &r.run_id,
            activity_id: &r.activity_id,
        };
        let end = AttemptEnd::Completed {
            result: r.result.clone(),
            identity: r.identity.clone(),
        };
        ok(self
            .engine
            .end_activity_attempt(activity, end)
            .await
            .map(|_| Default::default()))
    }

    pub(super) async fn activity_failed(
        &self,
        req: Request<RespondActivityTaskFailedRequest>,
    ) -> Reply<RespondActivityTaskFailedResponse> {
        let r = req.into_inner();
        let failure = r
            .failure
            .ok_or_else(|| Status::invalid_argument("Failure is not set on request."))?;
        let end = AttemptEnd::Failed {
            failure: Box::new(failure),
            last_heartbeat_details: r.last_heartbeat_details,
            identity: r.identity,
        };
        ok(self
            .engine
            .end_activity_attempt(
                ActivityRef::Token {
                    namespace: &r.namespace,
                    token: &r.task_token,
                },
                end,
            )
            .await
            .map(|_| Default::default()))
    }

    pub(super) async fn activity_failed_by_id(
        &self,
        req: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Reply<RespondActivityTaskFailedByIdResponse> {
        let r = req.into_inner();
        let failure = r
            .failure
            .clone()
            .ok_or_else(|| Status::invalid_argument("Failure is not set on request."))?;
        let activity = ActivityRef::Id {
            namespace: &r.namespace,
            workflow_id: &r.workflow_id,
            run_id: &r.run_id,
            activity_id: &r.activity_id,
        };
        let end = AttemptEnd::Failed {
            failure: Box::new(failure),
            last_heartbeat_details: r.last_heartbeat_details.clone(),
            identity: r.identity.clone(),
        };
        ok(self
            .engine
            .end_activity_attempt(activity, end)
            .await
            .map(|_| Default::default()))
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
        ok(self
            .engine
            .end_activity_attempt(
                ActivityRef::Token {
                    namespace: &r.namespace,
                    token: &r.task_token,
                },
                end,
            )
            .await
            .map(|_| Default::default()))
    }

    pub(super) async fn activity_canceled_by_id(
        &self,
        req: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Reply<RespondActivityTaskCanceledByIdResponse> {
        let r = req.into_inner();
        let activity = ActivityRef::Id {
            namespace: &r.namespace,
            workflow_id: &r.workflow_id,
            run_id: &r.run_id,
            activity_id: &r.activity_id,
        };
        let end = AttemptEnd::Canceled {
            details: r.details.clone(),
            identity: r.identity.clone(),
        };
        ok(self
            .engine
            .end_activity_attempt(activity, end)
            .await
            .map(|_| Default::default()))
    }
}
