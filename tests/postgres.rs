//! The PostgreSQL store on a real PostgreSQL server (Debian's packages; `scripts/pg-env`):
//! schema migrations run safely from many replicas at once, and a shard's lease fences a
//! stale owner — a replica paused past its lease, whose shards another replica took over,
//! cannot commit anything as their owner once it resumes, because the database rejects its
//! epoch.
//!
//! The SDK suites also run against PostgreSQL: `scripts/test` runs them a second time with
//! `DURIN_TEST_STORE=postgres`.

mod common;

use std::time::Duration;

use common::DurinServer;
use common::pg_env::PgServer;
use durin::proto::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, DescribeWorkflowExecutionRequest,
        StartWorkflowExecutionRequest,
    },
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::{Code, Request};

type Client = WorkflowServiceClient<tonic::transport::Channel>;

use common::grpc_client as client;

async fn start(c: &mut Client, id: &str) -> Result<String, tonic::Status> {
    start_once(c, id, &uuid::Uuid::new_v4().to_string()).await
}

/// A start with the request id a client would retry it with.
async fn start_once(c: &mut Client, id: &str, request_id: &str) -> Result<String, tonic::Status> {
    c.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "W".into() }),
        task_queue: Some(TaskQueue {
            name: "pg-test".into(),
            ..Default::default()
        }),
        request_id: request_id.to_string(),
        ..Default::default()
    }))
    .await
    .map(|r| r.into_inner().run_id)
}

async fn describe(c: &mut Client, id: &str) -> Result<String, Code> {
    c.describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
    }))
    .await
    .map(|r| {
        r.into_inner()
            .workflow_execution_info
            .and_then(|i| i.execution)
            .map(|e| e.run_id)
            .unwrap_or_default()
    })
    .map_err(|s| s.code())
}

/// Counts across replicas (None while one that just died is still listed as a member).
async fn try_count(c: &mut Client) -> Option<i64> {
    c.count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
        namespace: "default".into(),
        query: String::new(),
    }))
    .await
    .ok()
    .map(|r| r.into_inner().count)
}

async fn count(c: &mut Client) -> i64 {
    try_count(c).await.expect("count")
}

fn replica(db: &str, id: &str) -> Vec<String> {
    [
        "dev",
        "--postgres",
        db,
        "--replica-id",
        id,
        "--lease-ttl",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// Retries a describe while the shard moves (UNAVAILABLE, or an owner that does not answer).
async fn describe_settled(c: &mut Client, id: &str) -> Result<String, Code> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), describe(c, id)).await;
        match attempt {
            Ok(Err(Code::Unavailable)) | Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(r) => return r,
            Err(_) => panic!("describe {id} never answered"),
        }
    }
}

/// Retries a start with its request id `id` until a replica serves it.
async fn retry_until_served(c: &mut Client, id: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout(Duration::from_secs(2), start_once(c, id, id)).await {
            Ok(Ok(run_id)) => return run_id,
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("retried start of {id} never served: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_cannot_commit_after_another_replica_took_its_shard() {
    let pg = PgServer::start();
    let db = pg.new_database("fencing");
    let mut a = DurinServer::start_with(replica(&db, "replica-a"), Vec::new()).await;
    let mut ca = client(a.port()).await;
    let first = start(&mut ca, "before-pause").await.expect("start on a");

    // Pause A (as a long GC pause or a frozen VM would) until its leases have run out, with
    // starts in flight: some answered before the pause, some caught inside A by it.
    let a_pid = a.pid().expect("pid");
    let in_flight = 10;
    let mut caught = Vec::new();
    for i in 0..in_flight {
        let mut c = ca.clone();
        caught.push(tokio::spawn(async move {
            let id = format!("in-flight-{i}");
            let answer = start_once(&mut c, &id, &id).await;
            (id, answer)
        }));
    }
    tokio::time::sleep(Duration::from_millis(3)).await;
    signal(a_pid, libc::SIGSTOP);
    let paused = std::time::Instant::now();
    let b = DurinServer::start_with(replica(&db, "replica-b"), Vec::new()).await;
    let mut cb = client(b.port()).await;
    // B joins at once and takes A's shards when their leases expire.
    assert_eq!(describe_settled(&mut cb, "before-pause").await, Ok(first));
    let takeover = paused.elapsed();
    start(&mut cb, "on-b").await.expect("start on b");

    // A wakes up, still believing it owns its shards. Whatever it answers now, it cannot
    // commit as their owner: the database refuses its epoch. A start it acknowledges was
    // served by B (A forwards once it has noticed); one it refuses left no trace anywhere.
    signal(a_pid, libc::SIGCONT);
    // What A acknowledged is there, with the run it named; what it did not may or may not
    // have committed before the pause, and the client's retry (same request id, now to B)
    // gets that one run, never a second.
    let mut acknowledged = 0;
    for call in caught {
        let (id, answer) = tokio::time::timeout(Duration::from_secs(30), call)
            .await
            .expect("a call caught by the pause is answered after it")
            .expect("join");
        let run_id = match answer {
            Ok(run_id) => {
                acknowledged += 1;
                run_id
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{id}: {status:?}");
                retry_until_served(&mut cb, &id).await
            }
        };
        assert_eq!(describe_settled(&mut cb, &id).await, Ok(run_id), "{id}");
    }
    eprintln!("starts in flight at the pause: {acknowledged} of {in_flight} acknowledged by A");
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..20 {
        let id = format!("stale-{i}");
        let answer = tokio::time::timeout(Duration::from_secs(20), start(&mut ca, &id))
            .await
            .expect("a write to a stale owner is answered, not left hanging");
        match answer {
            Ok(run_id) => {
                assert_eq!(describe_settled(&mut cb, &id).await, Ok(run_id));
                accepted += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert_eq!(describe_settled(&mut cb, &id).await, Err(Code::NotFound));
                refused += 1;
            }
        }
    }
    assert_eq!(count(&mut cb).await, 2 + in_flight + accepted);
    let log = a.log_tail(200);
    assert!(log.contains("another replica"), "{log}");
    eprintln!(
        "takeover after pausing the owner: {takeover:?} (lease 2 s); after resuming, the stale \
         owner refused {refused} writes and forwarded {accepted}"
    );
    assert!(
        takeover < Duration::from_secs(15),
        "takeover took {takeover:?}"
    );

    // B restarting keeps everything (same replica id: it takes its shards back at once).
    drop(cb);
    a.kill();
    let mut b = b;
    b.restart().await;
    let mut cb = client(b.port()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while try_count(&mut cb).await != Some(2 + in_flight + accepted) {
        assert!(
            std::time::Instant::now() < deadline,
            "B lost workflows over a restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_from_many_replicas_at_once_apply_each_version_once() {
    let pg = PgServer::start();
    let db = pg.new_database("migrate");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let (mut client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            durin::store::postgres::migrate(&mut client)
                .await
                .expect("migrate")
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.expect("task"));
    }
    assert!(versions.iter().all(|v| *v == versions[0] && *v >= 1));
    let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT version FROM durin_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .expect("versions");
    let applied: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(applied, (1..=versions[0]).collect::<Vec<_>>());
}

/// Runs `durin dev --postgres <url> <extra>` and expects it to refuse to start; returns what
/// it printed.
fn refused_start(url: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["dev", "--port", "0", "--postgres", url];
    let data_dir = dir.path().display().to_string();
    args.extend(["--data-dir", &data_dir]);
    args.extend(extra);
    common::refused_start(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_to_postgres_use_verified_tls() {
    let pg = PgServer::start();
    let db = pg.new_database("durin_tls");
    let url = format!("{db}?sslmode=require&application_name=durin-tls");
    let ca = pg.ca_file().display().to_string();

    let server = DurinServer::start_with(
        vec![
            "dev".into(),
            "--postgres".into(),
            url.clone(),
            "--postgres-ca".into(),
            ca,
        ],
        Vec::new(),
    )
    .await;
    let mut c = client(server.port()).await;
    start(&mut c, "over-tls").await.expect("start over TLS");
    // Every connection Durin holds is encrypted.
    let sessions = PgServer::psql(
        &db,
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'durin-tls'",
    );
    assert!(!sessions.is_empty(), "no connection of Durin's seen");
    assert!(
        sessions.lines().all(|l| l == "t"),
        "plaintext connections: {sessions:?}"
    );
    drop(server);

    // sslmode=require without the CA to verify the server with: refused with the way out.
    let err = refused_start(&url, &[]);
    assert!(err.contains("--postgres-ca"), "{err}");
    // A server certificate from another CA: refused.
    let rogue = rcgen::generate_simple_self_signed(vec!["rogue".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let rogue_ca = dir.path().join("rogue.crt");
    std::fs::write(&rogue_ca, rogue.cert.pem()).expect("write");
    let err = refused_start(&url, &["--postgres-ca", &rogue_ca.display().to_string()]);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
