//! Schema pieces schemars cannot derive in the shape the API server wants.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// Any JSON value (object, array or scalar), kept as written.
pub fn any_json(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// A list of arbitrary JSON values (workflow arguments).
pub fn json_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A map of names to arbitrary JSON values (memo, search attributes).
pub fn json_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A Go-style duration string (`90s`, `1h30m`, `250ms`), the form `kubectl` users know.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$",
        "maxLength": 64
    })
}

/// Standard `metav1.Condition` list, merged by type.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": { "type": "string", "maxLength": 316 },
                "status": { "type": "string", "enum": ["True", "False", "Unknown"] },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0 },
                "lastTransitionTime": { "type": "string", "format": "date-time" },
                "reason": { "type": "string", "maxLength": 1024 },
                "message": { "type": "string", "maxLength": 32768 }
            }
        }
    })
}

/// A `core/v1` PodTemplateSpec with its real structure, so `kubectl explain` documents it and
/// the API server refuses misspelt fields. Kept small: the template's metadata is cut to labels
/// and annotations (the rest is set by the Deployment), and descriptions are kept only where
/// users write — the pod spec's own fields and each container's.
pub fn pod_template(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = generator.subschema_for::<PodTemplateSpec>().to_value();
    if let Some(fields) = schema
        .pointer_mut("/properties/metadata/properties")
        .and_then(Value::as_object_mut)
    {
        fields.retain(|name, _| name == "labels" || name == "annotations");
    }
    // What the controller needs to build a Deployment, refused at admission rather than later.
    schema["required"] = serde_json::json!(["spec"]);
    // A Deployment's pods cannot carry ephemeral containers; leaving the field out refuses it.
    if let Some(fields) = schema
        .pointer_mut("/properties/spec/properties")
        .and_then(Value::as_object_mut)
    {
        fields.remove("ephemeralContainers");
    }
    if let Some(containers) = schema.pointer_mut("/properties/spec/properties/containers") {
        containers["minItems"] = 1.into();
    }
    trim_descriptions(&mut schema, &mut Vec::new());
    Schema::try_from(schema).expect("a pod template's schema is an object")
}

/// Drops `description` below the pod spec's fields, except on each container's fields.
fn trim_descriptions(node: &mut Value, path: &mut Vec<String>) {
    let keep = path.len() <= 2
        || (path.len() == 3 && matches!(path[1].as_str(), "containers" | "initContainers"));
    let Some(object) = node.as_object_mut() else {
        return;
    };
    if !keep {
        object.remove("description");
    }
    for (key, child) in object.iter_mut() {
        match key.as_str() {
            "properties" => {
                for (name, property) in child.as_object_mut().into_iter().flatten() {
                    path.push(name.clone());
                    trim_descriptions(property, path);
                    path.pop();
                }
            }
            "items" => trim_descriptions(child, path),
            // Map values (quantities, label values) repeat their type's long text.
            "additionalProperties" => {
                path.push(String::new());
                path.push(String::new());
                trim_descriptions(child, path);
                path.truncate(path.len() - 2);
            }
            _ => {}
        }
    }
}
