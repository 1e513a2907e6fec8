//! The CRD reference in Markdown, generated from the same schemas the API server enforces
//! (`durin crds --reference`; `docs/crd-reference.md` is checked to be current).

use std::fmt::Write as _;

use serde_json::Value;

use super::all;

/// The whole reference document.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Custom resource reference\n\n\
         Generated from the CRD schemas by `durin crds --reference`; do not edit by hand.\n\
         API group `durin.dev`, version `v1alpha1`. Durations are Go-style strings (`30s`,\n\
         `1h30m`); times are RFC 3339.\n",
    );
    for crd in all() {
        let Ok(doc) = serde_json::to_value(&crd) else {
            continue;
        };
        let spec = &doc["spec"];
        let kind = spec["names"]["kind"].as_str().unwrap_or_default();
        let version = &spec["versions"][0];
        let schema = &version["schema"]["openAPIV3Schema"];
        let _ = write!(out, "\n## {kind}\n\n");
        if let Some(d) = schema["description"].as_str() {
            let _ = writeln!(out, "{d}.\n");
        }
        let shorts: Vec<&str> = spec["names"]["shortNames"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- Plural `{}`, short names {}, {} scope.",
            spec["names"]["plural"].as_str().unwrap_or_default(),
            shorts
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", "),
            spec["scope"].as_str().unwrap_or_default().to_lowercase()
        );
        let subresources: Vec<&str> = version["subresources"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let _ = writeln!(out, "- Subresources: {}.", subresources.join(", "));
        if let Some(cols) = version["additionalPrinterColumns"].as_array() {
            let names: Vec<String> = cols
                .iter()
                .map(|c| {
                    let wide = if c["priority"].as_i64().unwrap_or(0) > 0 {
                        " (wide)"
                    } else {
                        ""
                    };
                    format!("{}{wide}", c["name"].as_str().unwrap_or_default())
                })
                .collect();
            let _ = writeln!(out, "- `kubectl get` columns: {}.", names.join(", "));
        }
        for part in ["spec", "status"] {
            let node = &schema["properties"][part];
            let _ = write!(out, "\n### {kind} `.{part}`\n\n");
            let _ = writeln!(out, "| Field | Type | Description |\n|---|---|---|");
            fields(&mut out, node, part);
            if let Some(rules) = node["x-kubernetes-validations"].as_array() {
                let _ = write!(out, "\nRules checked by the API server:\n\n");
                for r in rules {
                    let _ = writeln!(out, "- {}", r["message"].as_str().unwrap_or_default());
                }
            }
        }
    }
    out
}

fn type_of(node: &Value) -> String {
    if node["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) && node["type"].is_null() {
        return "any JSON".into();
    }
    let base = node["type"].as_str().unwrap_or("object");
    match base {
        "array" => format!("list of {}", type_of(&node["items"])),
        "object" if node["additionalProperties"].is_object() => {
            format!("map of {}", type_of(&node["additionalProperties"]))
        }
        _ => base.to_string(),
    }
}

fn fields(out: &mut String, node: &Value, path: &str) {
    let Some(props) = node["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = node["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, child) in props {
        let full = format!("{path}.{name}");
        let mut notes = Vec::new();
        if required.contains(&name.as_str()) {
            notes.push("Required.".to_string());
        }
        if let Some(d) = child["description"].as_str() {
            notes.push(d.replace('\n', " ").replace('|', "\\|"));
        }
        if let Some(e) = child["enum"].as_array() {
            let values: Vec<String> = e
                .iter()
                .filter_map(Value::as_str)
                .map(|v| format!("`{v}`"))
                .collect();
            notes.push(format!("One of {}.", values.join(", ")));
        }
        if child["pattern"].is_string() && child["maxLength"] == 64 {
            notes.push("A duration.".into());
        }
        let _ = writeln!(
            out,
            "| `{full}` | {} | {} |",
            type_of(child),
            notes.join(" ")
        );
        let items = &child["items"];
        if is_pod_template(child) {
            // Kubernetes documents its own type; the reference says where to read it.
            let _ = writeln!(
                out,
                "| `{full}.*` | | The fields of a `core/v1` PodTemplateSpec, checked by the \
                 API server: `kubectl explain worker.{full}`. |"
            );
        } else if items["properties"].is_object() {
            fields(out, items, &format!("{full}[]"));
        } else {
            fields(out, child, &full);
        }
    }
}

fn is_pod_template(node: &Value) -> bool {
    node["properties"]["spec"]["properties"]["containers"].is_object()
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_reference_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/crd-reference.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::markdown(),
            "docs/crd-reference.md is stale: run `cargo run -- crds --reference > docs/crd-reference.md`"
        );
    }
}
