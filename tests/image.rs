//! The container image: `scripts/image durin` builds it (no Docker daemon), and these tests take
//! the OCI archive it wrote, unpack it with umoci, and run what is inside — `durin --version`,
//! then `durin dev` in the image's root filesystem as the image's user — answering an official
//! SDK worker and client. They also keep the Dockerfiles in step with the script, and lint the
//! release workflow that builds with it.

mod common;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{new_worker, sdk_runtime, unique, with_worker, within};
use serde_json::Value;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkerOptions, WorkflowContext, WorkflowResult};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const NONROOT: u32 = 65532;
/// The issue's budget for the compressed image.
const MAX_COMPRESSED_BYTES: u64 = 30 * 1024 * 1024;

/// What `scripts/image durin` printed, and the image unpacked.
struct Built {
    reference: String,
    archive: PathBuf,
    compressed_bytes: u64,
    /// The image's config (`config` of the OCI image configuration).
    config: Value,
    rootfs: PathBuf,
    _dir: tempfile::TempDir,
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn app_version() -> String {
    common::chart_field("appVersion")
}

/// Builds the durin image once per test process (an incremental release build when nothing
/// changed).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| build_image("durin", &app_version()))
}

/// Runs `scripts/image <which>` and unpacks the image it wrote (tagged `tag`).
fn build_image(which: &str, tag: &str) -> Built {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut script = Command::new(format!("{ROOT}/scripts/image"));
    script
        .args(["--out", out.to_str().unwrap(), which])
        .stderr(Stdio::inherit());
    // What `cargo test` sets for its tests (ring's build script tracks OUT_DIR, for one)
    // would change the release build's fingerprint and rebuild it from scratch each time
    // the script runs from here after a shell, or the other way round.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let cargo_test_only = (key.starts_with("CARGO") && key != "CARGO_HOME")
            || ["OUT_DIR", "LD_LIBRARY_PATH"].contains(&&*key);
        if cargo_test_only {
            script.env_remove(&*key);
        }
    }
    // The musl release build's dependencies are compiled once per machine, not per clone
    // (cargo rebuilds what changed; only Durin's own crates differ between clones).
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| std::path::PathBuf::from(format!("{ROOT}/target")));
    script.env("DURIN_IMAGE_TARGET_DIR", cache.join("durin/image-target"));
    let printed = run(&mut script, &format!("scripts/image {which}"));
    let fields: Vec<&str> = printed.split_whitespace().collect();
    let [reference, archive, digest, size] = fields[..] else {
        panic!("scripts/image printed {printed:?}");
    };
    assert!(digest.starts_with("sha256:"), "{printed}");
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run(
        Command::new("tar").args(["-xf", archive, "-C", layout.to_str().unwrap()]),
        "unpack the OCI archive",
    );
    let bundle = dir.path().join("bundle");
    run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle),
        "umoci unpack",
    );
    Built {
        reference: reference.to_string(),
        archive: PathBuf::from(archive),
        compressed_bytes: size.parse().expect("size"),
        config: image_config(&layout),
        rootfs: bundle.join("rootfs"),
        _dir: dir,
    }
}

/// The `config` object of the image's configuration blob, read through index and manifest.
fn image_config(layout: &Path) -> Value {
    let read = |p: PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
            .expect("json")
    };
    let blob = |digest: &Value| {
        let (algo, hex) = digest.as_str().unwrap().split_once(':').unwrap();
        layout.join("blobs").join(algo).join(hex)
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    read(blob(&manifest["config"]["digest"]))["config"].clone()
}

/// True if the ELF file asks for a program interpreter (a dynamic loader), i.e. needs libc.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF binary");
    assert_eq!(elf[4], 2, "64-bit");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == PT_INTERP
    })
}

/// `durin <args>` inside the image's root filesystem, as the image's user.
fn in_image(built: &Built, args: &[&str]) -> Command {
    let mut cmd = Command::new(on_path("chroot"));
    cmd.arg(format!("--userspec={NONROOT}:{NONROOT}"))
        .arg(&built.rootfs)
        .arg("/usr/local/bin/durin")
        .args(args)
        .env_clear();
    cmd
}

/// A program on this PATH (children here get a cleared environment, so they cannot look).
fn on_path(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} on PATH"))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[workflow]
#[derive(Default)]
pub struct ImageGreeting;

#[workflow_methods]
impl ImageGreeting {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        Ok(format!("Hello, {name}!"))
    }
}

#[test]
fn the_image_is_static_nonroot_shell_free_and_small() {
    let built = built();
    assert_eq!(
        built.reference,
        format!("ghcr.io/durin-dev/durin:{}", app_version()),
        "the tag follows the chart's appVersion, so the chart's defaults name this image"
    );
    assert!(built.archive.is_file());
    let config = &built.config;
    assert_eq!(config["User"], format!("{NONROOT}:{NONROOT}"));
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/durin"])
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["operator", "--data-dir=/data"])
    );
    assert!(config["ExposedPorts"]["7233/tcp"].is_object(), "{config}");
    assert!(config["Volumes"]["/data"].is_object(), "{config}");

    let binary = std::fs::read(built.rootfs.join("usr/local/bin/durin")).expect("durin");
    assert!(
        !has_interpreter(&binary),
        "durin must be static: the image has no libc"
    );
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_durin")).expect("the test build of durin");
    assert!(
        has_interpreter(&dynamic),
        "the check tells a dynamic binary"
    );
    for shell in ["bin/sh", "bin/bash", "usr/bin/sh"] {
        assert!(
            !built.rootfs.join(shell).exists(),
            "no shell in the image: {shell}"
        );
    }
    let data = std::fs::metadata(built.rootfs.join("data")).expect("/data");
    assert_eq!(
        (data.uid(), data.gid()),
        (NONROOT, NONROOT),
        "/data is the user's"
    );

    println!(
        "image {}: {} bytes compressed ({:.1} MiB), binary {} bytes",
        built.reference,
        built.compressed_bytes,
        built.compressed_bytes as f64 / 1048576.0,
        binary.len()
    );
    assert!(
        built.compressed_bytes < MAX_COMPRESSED_BYTES,
        "{} bytes compressed",
        built.compressed_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durin_dev_runs_inside_the_image_and_answers_the_sdk() {
    let built = built();
    let version = run(&mut in_image(built, &["--version"]), "durin --version");
    assert!(
        version.contains(&app_version()),
        "the binary is the chart's appVersion: {version}"
    );

    let port = common::free_port();
    let mut server = Killed(
        in_image(
            built,
            &[
                "dev",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--data-dir",
                "/data",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn durin dev in the image"),
    );
    let url: temporalio_client::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match common::connect_client(url.clone()).await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(status)) = server.0.try_wait() {
                    let mut err = String::new();
                    server
                        .0
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .ok();
                    panic!("durin dev exited with {status} in the image: {err}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("durin dev in the image never answered: {e}"),
        }
    };

    let runtime = sdk_runtime();
    let tq = unique("image");
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<ImageGreeting>()
            .unwrap()
            .build(),
    );
    let result = with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                ImageGreeting::run,
                "image".to_string(),
                WorkflowStartOptions::new(tq.clone(), unique("greet")).build(),
            )
            .await
            .expect("start a workflow on the image's durin");
        within(
            30,
            "the workflow's result",
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .expect("result")
    })
    .await;
    assert_eq!(result, "Hello, image!");

    // What it stored is in the image's /data, written as the image's user.
    let stored: Vec<_> = std::fs::read_dir(built.rootfs.join("data"))
        .expect("/data")
        .map(|e| e.unwrap().metadata().unwrap())
        .collect();
    assert!(!stored.is_empty(), "durin dev wrote nothing to /data");
    assert!(
        stored.iter().all(|m| m.uid() == NONROOT),
        "files owned by uid {NONROOT}"
    );
}

/// The example worker's image (`scripts/image worker`) polls a Durin and runs the example
/// workflows. Ignored by the test command: its release build of the SDK takes ~8 minutes on two
/// cores; run it with `cargo test --test image -- --ignored` when the worker or the script
/// changes (the release workflow builds the same image).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: a release build of the example worker; cargo test --test image -- --ignored"]
async fn the_worker_image_runs_the_example_workflows() {
    let built = build_image("worker", "latest");
    assert_eq!(built.reference, "ghcr.io/durin-dev/durin-examples:latest");
    assert_eq!(built.config["User"], format!("{NONROOT}:{NONROOT}"));
    println!(
        "worker image: {} bytes compressed ({})",
        built.compressed_bytes,
        built.archive.display()
    );
    let engine = common::DurinServer::start().await;
    // As a container runtime would run it: its own PID namespace with /proc mounted (the SDK
    // reads the cgroup memory limit there), the image's user, only the given environment.
    std::fs::create_dir_all(built.rootfs.join("proc")).expect("/proc in the rootfs");
    let _worker = Killed(
        Command::new(on_path("unshare"))
            .args(["--pid", "--fork", "--mount", "--kill-child"])
            .arg(format!(
                "--mount-proc={}",
                built.rootfs.join("proc").display()
            ))
            .arg(on_path("chroot"))
            .arg(format!("--userspec={NONROOT}:{NONROOT}"))
            .arg(&built.rootfs)
            .arg("/usr/local/bin/k8s-worker")
            .env_clear()
            .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", engine.port()))
            .env("TEMPORAL_NAMESPACE", "default")
            .env("TEMPORAL_TASK_QUEUE", "durin-k8s-examples")
            .spawn()
            .expect("run the worker image"),
    );
    let applied = Command::new(env!("CARGO_BIN_EXE_durin"))
        .args([
            "apply",
            "--address",
            &format!("127.0.0.1:{}", engine.port()),
        ])
        .args([
            "-f",
            &format!("{ROOT}/examples/k8s/hello-workflow.yaml"),
            "--wait",
        ])
        .output()
        .expect("durin apply");
    let printed = String::from_utf8_lossy(&applied.stdout);
    assert!(
        applied.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(printed.contains("Hello, Kubernetes!"), "{printed}");
}

/// The paths a Dockerfile's `COPY` lines take from the build context.
fn copied_paths(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--from"))
        .flat_map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The build flags `scripts/image` uses (its `CARGO_FLAGS`, with `$TARGET` filled in).
fn script_cargo_flags() -> String {
    let script = std::fs::read_to_string(format!("{ROOT}/scripts/image")).unwrap();
    let var = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name}= in scripts/image"))
            .to_string()
    };
    let target = var("TARGET");
    var("CARGO_FLAGS")
        .trim_start_matches('(')
        .trim_end_matches(')')
        .replace("\"$TARGET\"", &target)
}

#[test]
fn the_dockerfiles_build_what_the_script_builds() {
    let flags = script_cargo_flags();
    assert!(
        flags.contains(r#"--target "$(uname -m)-unknown-linux-musl""#),
        "{flags}"
    );
    for (dockerfile, target, entrypoint) in [
        ("Dockerfile", "--bin durin", "/usr/local/bin/durin"),
        (
            "examples/k8s_worker/Dockerfile",
            "--example k8s-worker",
            "/usr/local/bin/k8s-worker",
        ),
    ] {
        let text = std::fs::read_to_string(format!("{ROOT}/{dockerfile}")).unwrap();
        for path in copied_paths(&text) {
            assert!(
                Path::new(ROOT).join(&path).exists(),
                "{dockerfile} copies {path}, which does not exist"
            );
        }
        for needed in ["build.rs", "proto", "src", "Cargo.lock"] {
            assert!(
                copied_paths(&text)
                    .iter()
                    .any(|p| p.trim_end_matches('/') == needed),
                "{dockerfile} must copy {needed} (build.rs compiles proto/)"
            );
        }
        assert!(
            text.contains(&format!("cargo build {flags} {target}")),
            "{dockerfile} builds with scripts/image's flags: cargo build {flags} {target}"
        );
        assert!(text.contains("FROM scratch"), "{dockerfile}: from scratch");
        assert!(
            text.contains(&format!("USER {NONROOT}:{NONROOT}")),
            "{dockerfile}"
        );
        assert!(
            text.contains(&format!("ENTRYPOINT [\"{entrypoint}\"]")),
            "{dockerfile}: entrypoint {entrypoint}"
        );
    }
    let durin = std::fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    assert!(durin.contains(r#"CMD ["operator", "--data-dir=/data"]"#));
    let script = std::fs::read_to_string(format!("{ROOT}/scripts/image")).unwrap();
    assert!(script.contains("--config.cmd operator --config.cmd --data-dir=/data"));
}

/// The release pipeline (`.github/workflows/release.yml`) cannot run here; actionlint (built
/// from its Go module by `scripts/lint-workflows`) checks it, and that it uses this script.
#[test]
fn the_release_workflow_passes_actionlint() {
    let workflow =
        std::fs::read_to_string(format!("{ROOT}/.github/workflows/release.yml")).unwrap();
    assert!(
        workflow.contains("scripts/image"),
        "releases build with scripts/image"
    );
    assert!(
        workflow.contains("helm push"),
        "the chart is pushed as an OCI artifact"
    );
    let out = Command::new(format!("{ROOT}/scripts/lint-workflows"))
        .current_dir(ROOT)
        .output()
        .expect("run scripts/lint-workflows");
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
