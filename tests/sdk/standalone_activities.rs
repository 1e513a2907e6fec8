//! Standalone activities through the official Rust SDK (its `start_activity` client API and
//! an ordinary activity worker) against a real `durin`: an activity started by a client is
//! retried and completed by a worker, described, listed and counted; and started activities,
//! closed and still waiting, survive a SIGKILL of the server.

use crate::common;

use std::time::Duration;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use futures::StreamExt;
use temporalio_client::{
    ActivityDescribeOptions, ActivityExecutionInfoLike, ActivityExecutionStatus,
    ActivityStartOptions, Client,
};
use temporalio_common::{ActivityError, RetryPolicy};
use temporalio_macros::activities;
use temporalio_sdk::{ApplicationFailure, WorkerOptions, activities::ActivityContext};

pub struct ImageActivities;

#[activities]
impl ImageActivities {
    /// Fails its first attempt (a retryable failure), then succeeds.
    #[activity]
    pub async fn resize(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        if attempt == 1 {
            return Err(ApplicationFailure::new("image store busy").into());
        }
        Ok(format!("{name} resized on attempt {attempt}"))
    }

    #[activity]
    pub async fn thumbnail(_ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        Ok(format!("thumbnail of {name}"))
    }
}

fn options(task_queue: &str, id: &str) -> ActivityStartOptions {
    ActivityStartOptions::with_start_to_close_timeout(
        task_queue.to_string(),
        id.to_string(),
        Duration::from_secs(10),
    )
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_millis(100))
            .build(),
    )
    .build()
}

fn worker_options(task_queue: &str) -> WorkerOptions {
    WorkerOptions::new(task_queue.to_string())
        .register_activities(ImageActivities)
        .build()
}

async fn status_of(client: &Client, id: &str) -> ActivityExecutionStatus {
    client
        .get_untyped_activity_handle(id, None)
        .describe(ActivityDescribeOptions::default())
        .await
        .expect("describe")
        .status()
}

/// A client starts an activity with no workflow; a worker's first attempt fails, the server
/// retries it, the second completes; the result, the description, a list and a count all
/// say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_activity_is_retried_completed_and_listed() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-standalone");
    let id = unique("resize");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));

    with_worker(&mut worker, async {
        let handle = client
            .start_activity(ImageActivities::resize, "cat.png".into(), options(&tq, &id))
            .await
            .expect("start activity");
        assert_eq!(handle.activity_id(), id);
        let result = within(20, "activity result", handle.result())
            .await
            .expect("the retry completes");
        assert_eq!(result, "cat.png resized on attempt 2");

        let desc = handle
            .describe(ActivityDescribeOptions::default())
            .await
            .expect("describe");
        assert_eq!(desc.status(), ActivityExecutionStatus::Completed);
        assert_eq!(desc.attempt(), 2);
        assert_eq!(desc.activity_type(), "ImageActivities::resize");
        assert!(desc.last_started_time().is_some(), "an attempt started");

        let query = format!("ActivityId = '{id}'");
        let listed: Vec<_> = client
            .list_activities(query.clone(), Default::default())
            .collect()
            .await;
        assert_eq!(listed.len(), 1, "one activity has this id");
        let listed = listed.into_iter().next().unwrap().expect("list page");
        assert_eq!(listed.activity_id(), id);
        assert_eq!(listed.status(), ActivityExecutionStatus::Completed);
        let count = client
            .count_activities(query, Default::default())
            .await
            .expect("count");
        assert_eq!(count.count(), 1);
    })
    .await;
}

/// Activities started before a SIGKILL are still there after the restart: a completed one
/// keeps its result, one no worker took yet is dispatched to the next worker and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_activities_survive_a_sigkill() {
    let mut server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-standalone-durable");
    let done = unique("done");
    let waiting = unique("waiting");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    with_worker(&mut worker, async {
        let handle = client
            .start_activity(
                ImageActivities::thumbnail,
                "a.png".into(),
                options(&tq, &done),
            )
            .await
            .expect("start activity");
        within(20, "result before the kill", handle.result())
            .await
            .expect("completes");
    })
    .await;
    drop(worker);
    client
        .start_activity(
            ImageActivities::thumbnail,
            "b.png".into(),
            options(&tq, &waiting),
        )
        .await
        .expect("start the activity no worker takes yet");

    server.kill();
    server.restart().await;
    let client = server.client().await;

    assert_eq!(
        status_of(&client, &done).await,
        ActivityExecutionStatus::Completed
    );
    let kept = client
        .get_activity_handle(ImageActivities::thumbnail, done.clone(), None)
        .result()
        .await
        .expect("the result survives");
    assert_eq!(kept, "thumbnail of a.png");
    assert_eq!(
        status_of(&client, &waiting).await,
        ActivityExecutionStatus::Running
    );
    let mut worker = new_worker(&runtime, &client, worker_options(&tq));
    with_worker(&mut worker, async {
        let handle = client.get_activity_handle(ImageActivities::thumbnail, waiting.clone(), None);
        let result = within(20, "result after the restart", handle.result())
            .await
            .expect("dispatched after the restart");
        assert_eq!(result, "thumbnail of b.png");
    })
    .await;
}
