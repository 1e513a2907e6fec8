//! Generates tonic server stubs for Temporal's services from the descriptor set that the
//! `temporalio-protos` crate exports, so no Temporal `.proto` file is copied into Durin, and
//! stubs for Durin's own protocol in `proto/`.
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH")
        .map_err(|_| "temporalio-protos did not export its descriptor set")?;
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(&path)?;
    let mut fds = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    // Only the services Durin serves; their message types come from `temporalio_protos`.
    let wanted = [
        "temporal/api/workflowservice/v1/service.proto",
        "temporal/api/operatorservice/v1/service.proto",
    ];
    let mut keep = Vec::new();
    for f in fds.file.drain(..) {
        let name = f.name.clone().unwrap_or_default();
        let is_service = !f.service.is_empty();
        if !is_service || wanted.contains(&name.as_str()) {
            keep.push(f);
        }
    }
    fds.file = keep;
    let mut known = rpc_paths(&fds);
    let mut cfg = tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true);
    for pkg in [
        ".temporal",
        ".coresdk",
        ".google.rpc",
        ".grpc",
        ".nexusannotations",
    ] {
        cfg = cfg.extern_path(pkg, format!("::temporalio_protos{pkg}").replace('.', "::"));
    }
    cfg.compile_fds(fds)?;

    // Durin's own replica-to-replica protocol.
    println!("cargo:rerun-if-changed=proto");
    let own = protox::compile(["durin/cluster/v1/cluster.proto"], ["proto"])?;
    known.extend(rpc_paths(&own));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(own)?;

    // Every method path served, so metrics label a call by its method only when it is one
    // (a label per unknown path would let any client grow the metrics without bound).
    known.extend([
        "/grpc.health.v1.Health/Check".into(),
        "/grpc.health.v1.Health/Watch".into(),
    ]);
    known.sort();
    commit();
    let out = std::path::Path::new(&std::env::var("OUT_DIR")?).join("rpc_paths.rs");
    std::fs::write(
        out,
        format!(
            "/// Every gRPC method path Durin's services declare, sorted.\npub const RPC_PATHS: &[&str] = &{known:?};\n"
        ),
    )?;
    Ok(())
}

/// `/package.Service/Method` of every method of every service in `fds`.
fn rpc_paths(fds: &prost_types::FileDescriptorSet) -> Vec<String> {
    let mut paths = Vec::new();
    for file in &fds.file {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    paths
}

/// `DURIN_COMMIT` for `durin --version`: the environment's (a build from a source archive), or
/// the checkout's `git rev-parse HEAD`; `unknown` without either. (Not marked dirty: that would
/// need a rerun on every index change, and a rebuild of every test binary with it.)
fn commit() {
    println!("cargo:rerun-if-env-changed=DURIN_COMMIT");
    // A new commit or checkout moves HEAD or the branch it names.
    if std::path::Path::new(".git/HEAD").exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
    }
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        // A packed ref (after `git gc`) lives in packed-refs; naming a missing file would
        // rerun this script on every build.
        let loose = format!(".git/{reference}");
        for path in [loose.as_str(), ".git/packed-refs"] {
            if std::path::Path::new(path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = std::env::var("DURIN_COMMIT").ok().or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=DURIN_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
