//! Access to the gRPC port: TLS and mutual TLS from certificate files (re-read when they
//! change), bearer tokens with per-namespace authorization. Refused clients: no TLS, no
//! client certificate, a certificate from another CA, no token, a wrong token, a token used
//! on a namespace it does not list.

mod common;

use std::time::{Duration, Instant};

use common::DurinServer;
use common::certs::{Ca, write};
use rcgen::ExtendedKeyUsagePurpose;
use temporalio_client::{
    ClientTlsOptions, Connection, ConnectionOptions, TlsOptions, Url,
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, RegisterNamespaceRequest,
};

fn ca(name: &str) -> Ca {
    Ca::new(name)
}

/// (certificate PEM, key PEM) for localhost, as a server's or a client's certificate.
fn leaf(ca: &Ca, name: &str, server: bool) -> (String, String) {
    let usage = if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    };
    ca.leaf(name, &["localhost", "127.0.0.1"], &[usage])
}

async fn connect(
    port: u16,
    server_ca: Option<&str>,
    client: Option<&(String, String)>,
    token: Option<&str>,
) -> Result<temporalio_client::Connection, String> {
    let scheme = if server_ca.is_some() { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://localhost:{port}")).expect("url");
    let tls = server_ca.map(|ca| {
        TlsOptions::builder()
            .server_root_ca_cert(ca.as_bytes().to_vec())
            .domain("localhost".to_string())
            .maybe_client_tls_options(client.map(|(c, k)| {
                ClientTlsOptions::builder()
                    .client_cert(c.as_bytes().to_vec())
                    .client_private_key(k.as_bytes().to_vec())
                    .build()
            }))
            .build()
    });
    let opts = ConnectionOptions::new(url)
        .identity("security-test".to_string())
        .maybe_tls_options(tls)
        .maybe_api_key(token.map(str::to_string))
        .connect_timeout(Duration::from_secs(3))
        .build();
    match tokio::time::timeout(Duration::from_secs(10), Connection::connect(opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timed out".into()),
    }
}

/// A `durin dev` with TLS (server certificate from `server_ca`), mutual TLS (clients from
/// `client_ca`) and two bearer tokens: `admin-token-0123456789` for every namespace and
/// `team-a-token-0123456789` for `team-a`.
struct Secured {
    server: DurinServer,
    server_ca: Ca,
    client_ca: Ca,
    files: tempfile::TempDir,
}

impl Secured {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let server_ca = ca("server-ca");
        let client_ca = ca("client-ca");
        let (scert, skey) = leaf(&server_ca, "durin", true);
        let cert_path = write(d, "server.crt", &scert);
        let key_path = write(d, "server.key", &skey);
        let client_ca_path = write(d, "clients.crt", &client_ca.pem);
        let auth_path = write(
            d,
            "tokens.yaml",
            "tokens:\n  - name: admin\n    token: admin-token-0123456789\n    namespaces: [\"*\"]\n  - name: team-a\n    token: team-a-token-0123456789\n    namespaces: [team-a]\n",
        );
        let server = DurinServer::start_listening(vec![
            "dev".into(),
            format!("--tls-cert={cert_path}"),
            format!("--tls-key={key_path}"),
            format!("--tls-client-ca={client_ca_path}"),
            format!("--auth-file={auth_path}"),
        ])
        .await;
        Self {
            server,
            server_ca,
            client_ca,
            files: dir,
        }
    }

    /// Where the server's certificate and key are (rewritten to rotate them).
    fn dir(&self) -> &std::path::Path {
        self.files.path()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mtls_and_tokens_refuse_who_does_not_belong() {
    let secured = Secured::start().await;
    let (server, server_ca) = (&secured.server, &secured.server_ca);
    let d = secured.dir();
    let rogue_ca = ca("rogue-ca");
    let good = leaf(&secured.client_ca, "worker", false);
    let rogue = leaf(&rogue_ca, "intruder", false);
    let port = server.port();
    let admin = Some("admin-token-0123456789");

    // Refused: plaintext, TLS without a client certificate, a certificate from another CA.
    assert!(
        connect(port, None, None, None).await.is_err(),
        "plaintext must be refused"
    );
    assert!(
        connect(port, Some(&server_ca.pem), None, admin)
            .await
            .is_err(),
        "no client cert"
    );
    assert!(
        connect(port, Some(&server_ca.pem), Some(&rogue), admin)
            .await
            .is_err(),
        "rogue CA"
    );
    // Refused: mutual TLS but no token, or a token nobody issued.
    let err = connect(port, Some(&server_ca.pem), Some(&good), None)
        .await
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("Unauthenticated") || err.contains("token"),
        "{err}"
    );
    let err = connect(
        port,
        Some(&server_ca.pem),
        Some(&good),
        Some("made-up-token-xyz"),
    )
    .await
    .err()
    .unwrap_or_default();
    assert!(
        err.contains("Unauthenticated") || err.contains("token"),
        "{err}"
    );

    // Admitted: the admin token creates team-a; the team-a token may use team-a only.
    let mut svc = connect(port, Some(&server_ca.pem), Some(&good), admin)
        .await
        .expect("admin connects");
    WorkflowService::register_namespace(
        &mut svc,
        Request::new(RegisterNamespaceRequest {
            namespace: "team-a".into(),
            workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                seconds: 86400,
                nanos: 0,
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("admin registers team-a");
    let mut svc = connect(
        port,
        Some(&server_ca.pem),
        Some(&good),
        Some("team-a-token-0123456789"),
    )
    .await
    .expect("team-a connects");
    WorkflowService::describe_namespace(
        &mut svc,
        Request::new(DescribeNamespaceRequest {
            namespace: "team-a".into(),
            ..Default::default()
        }),
    )
    .await
    .expect("team-a may use team-a");
    let denied = WorkflowService::describe_namespace(
        &mut svc,
        Request::new(DescribeNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        }),
    )
    .await
    .expect_err("team-a may not use default");
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Rotation: new server certificate from a new CA, picked up without a restart.
    let server_ca2 = ca("server-ca-2");
    let (scert2, skey2) = leaf(&server_ca2, "durin", true);
    std::fs::write(d.join("server.key"), &skey2).expect("rotate key");
    std::fs::write(d.join("server.crt"), &scert2).expect("rotate cert");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if connect(port, Some(&server_ca2.pem), Some(&good), admin)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotated certificate never served\n{}",
            server.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        connect(port, Some(&server_ca.pem), Some(&good), admin)
            .await
            .is_err(),
        "the old CA no longer verifies the server"
    );
}

/// `durin apply` against a server with mutual TLS and tokens, configured the way the
/// `temporal` CLI is: `TEMPORAL_*` variables or the same flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_speaks_mutual_tls_and_api_keys_like_the_temporal_cli() {
    let secured = Secured::start().await;
    let server = &secured.server;
    let d = secured.dir();
    let (ccert, ckey) = leaf(&secured.client_ca, "deployer", false);
    let server_ca_path = write(d, "server-ca.crt", &secured.server_ca.pem);
    let client_cert_path = write(d, "client.crt", &ccert);
    let client_key_path = write(d, "client.key", &ckey);
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/k8s/hello-workflow.yaml"
    );
    let apply = |env: &[(&str, &str)], flags: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_durin"))
            .args(["apply", "-f", manifest])
            .args(flags)
            .env("TEMPORAL_ADDRESS", format!("localhost:{}", server.port()))
            .envs(env.iter().copied())
            .output()
            .expect("run durin apply");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let tls_env = [
        ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", server_ca_path.as_str()),
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", client_cert_path.as_str()),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", client_key_path.as_str()),
    ];

    // Refused: plaintext; TLS without the client certificate; mutual TLS without a key.
    let (ok, text) = apply(&[], &[]);
    assert!(!ok, "plaintext must be refused: {text}");
    let (ok, text) = apply(&tls_env[..1], &["--api-key", "admin-token-0123456789"]);
    assert!(!ok, "no client certificate: {text}");
    let (ok, text) = apply(&tls_env, &[]);
    assert!(!ok, "no API key: {text}");
    assert!(text.contains("token"), "{text}");
    // A key for team-a may not start workflows in default.
    let mut team_a = tls_env.to_vec();
    team_a.push(("TEMPORAL_API_KEY", "team-a-token-0123456789"));
    let (ok, text) = apply(&team_a, &[]);
    assert!(!ok, "team-a's key in default: {text}");

    // Admitted: the environment...
    let mut admin = tls_env.to_vec();
    admin.push(("TEMPORAL_API_KEY", "admin-token-0123456789"));
    let (ok, text) = apply(&admin, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("workflow.durin.dev/hello applied"), "{text}");
    // ...or the flags, with the server's name given where the address does not carry it.
    let (ok, text) = apply(
        &[],
        &[
            "--address",
            &format!("127.0.0.1:{}", server.port()),
            "--tls-server-name",
            "localhost",
            "--tls-ca-path",
            &server_ca_path,
            "--tls-cert-path",
            &client_cert_path,
            "--tls-key-path",
            &client_key_path,
            "--api-key",
            "admin-token-0123456789",
        ],
    );
    assert!(ok, "{text}");
}
