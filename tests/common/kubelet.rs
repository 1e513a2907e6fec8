//! A stand-in for the kubelet, which the test clusters here do not run: for the Deployments a
//! label selector picks, it runs one worker process per Deployment that wants pods (the
//! official Python SDK, `tests/k8s/versioned_worker.py`, with the pod template's environment)
//! and writes the status a Deployment controller would.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

use super::kube_env::KubeEnv;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Stands in for the kubelet, in the background: one worker process per Deployment (of those
/// `selector` picks) that wants pods, started with the environment of its pod template;
/// stopped as soon as the Deployment is scaled to zero or deleted.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    pub fn start(kube: &KubeEnv, selector: &str) -> Self {
        let kubectl = Kubectl {
            bin: kube.kubectl.clone(),
            config: kube.kubeconfig.clone(),
            selector: selector.to_string(),
        };
        let task = tokio::spawn(async move {
            let mut pods = HashMap::new();
            loop {
                kubectl.sync(&mut pods).await;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
        Kubelet { task }
    }
}

impl Drop for Kubelet {
    /// The task's pods are killed as it is dropped (`kill_on_drop`).
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Kubectl {
    bin: PathBuf,
    config: PathBuf,
    selector: String,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Option<Vec<u8>> {
        let out = tokio::process::Command::new(&self.bin)
            .arg("--kubeconfig")
            .arg(&self.config)
            .args(args)
            .output()
            .await
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    async fn sync(&self, pods: &mut HashMap<String, tokio::process::Child>) {
        let Some(listed) = self
            .run(&["get", "deployments", "-l", &self.selector, "-o", "json"])
            .await
        else {
            return;
        };
        let list: Value = serde_json::from_slice(&listed).unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let wanted: Vec<&Value> = items
            .iter()
            .filter(|d| d["spec"]["replicas"].as_i64().unwrap_or(1) > 0)
            .collect();
        let names: Vec<&str> = wanted
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap_or(""))
            .collect();
        pods.retain(|name, _| names.contains(&name.as_str()));
        for d in wanted {
            let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
            pods.entry(name).or_insert_with(|| run_pod(d));
            self.report_ready(d).await;
        }
    }

    /// Writes the status a Deployment controller would once the pods run.
    async fn report_ready(&self, d: &Value) {
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        if d["status"]["readyReplicas"].as_i64() == Some(replicas)
            && d["status"]["observedGeneration"].as_i64() == Some(generation)
        {
            return;
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let condition = |type_: &str| {
            serde_json::json!({"type": type_, "status": "True", "reason": "Kubelet",
                "lastTransitionTime": now, "lastUpdateTime": now})
        };
        let status = serde_json::json!({"status": {
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [condition("Available"), condition("Progressing")]}});
        let name = d["metadata"]["name"].as_str().unwrap_or("");
        let patch = status.to_string();
        let args = [
            "patch",
            "deployment",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ];
        self.run(&args).await;
    }
}

/// Runs a Deployment's pod: its container's environment, and the code its image tag names.
fn run_pod(d: &Value) -> tokio::process::Child {
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    let image = container["image"].as_str().unwrap_or("");
    let code = image.rsplit(':').next().unwrap_or("");
    let mut cmd = tokio::process::Command::new(format!("{ROOT}/.venv/bin/python"));
    cmd.arg(format!("{ROOT}/tests/k8s/versioned_worker.py"))
        .env("PYTHONPATH", format!("{ROOT}/tests/python"))
        .env("WORKER_CODE", code)
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for var in container["env"].as_array().into_iter().flatten() {
        cmd.env(
            var["name"].as_str().unwrap_or(""),
            var["value"].as_str().unwrap_or(""),
        );
    }
    cmd.spawn()
        .expect("run the versioned worker (scripts/python-env makes .venv)")
}
