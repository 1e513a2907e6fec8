//! Task tokens: what a worker gets with each task and sends back to complete, fail or
//! heartbeat it. A token names its run and task, and carries an HMAC of itself keyed by the
//! store's token secret, so only tokens Durin issued are accepted; it acts only in the
//! namespace the request names, which is the one authorization checked.
//!
//! A Nexus task's token names the caller's run but is answered from the handler's namespace,
//! which it records; it travels as base64url text, since SDKs print Nexus tokens as strings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prost::Message;
use ring::hmac;

use super::state::{TOKEN_MAGIC, TaskToken};
use super::{Error, Result, RunKey};

/// Issues and checks task tokens with one secret (the same on every replica of a store).
pub struct TokenSigner {
    key: hmac::Key,
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn signature(&self, token: &TaskToken) -> Vec<u8> {
        hmac::sign(&self.key, &token.encode_to_vec())
            .as_ref()
            .to_vec()
    }

    /// A signed token for a Nexus task dispatched in `handler_namespace` for the operation
    /// `scheduled_event_id` of the caller's run `key` (its start, or its cancellation).
    pub fn issue_nexus(
        &self,
        key: &RunKey,
        scheduled_event_id: i64,
        attempt: i32,
        handler_namespace: &str,
        cancel: bool,
    ) -> Vec<u8> {
        let mut token = new_token(key, scheduled_event_id, attempt, 0, "");
        token.nexus_namespace = handler_namespace.to_string();
        token.nexus_cancel = cancel;
        token.signature = self.signature(&token);
        URL_SAFE_NO_PAD.encode(token.encode_to_vec()).into_bytes()
    }

    /// A signed token for a task of the run `key`.
    pub fn issue(
        &self,
        key: &RunKey,
        scheduled_event_id: i64,
        attempt: i32,
        started_event_id: i64,
        query_id: &str,
    ) -> Vec<u8> {
        let mut token = new_token(key, scheduled_event_id, attempt, started_event_id, query_id);
        token.signature = self.signature(&token);
        token.encode_to_vec()
    }

    /// Checks a token sent with a request for `namespace`: issued by Durin with this secret,
    /// and of that namespace.
    pub fn check(&self, namespace: &str, bytes: &[u8]) -> Result<(RunKey, TaskToken)> {
        let (key, mut token) = parse_token(bytes)?;
        let signature = std::mem::take(&mut token.signature);
        if hmac::verify(&self.key, &token.encode_to_vec(), &signature).is_err() {
            return Err(Error::InvalidArgument(
                "Task token is not one this server issued.".into(),
            ));
        }
        let issued_in = if token.nexus_namespace.is_empty() {
            &key.namespace
        } else {
            &token.nexus_namespace
        };
        if issued_in != namespace {
            return Err(Error::InvalidArgument(
                "Operation requested with a token from a different namespace.".into(),
            ));
        }
        Ok((key, token))
    }
}

fn new_token(
    key: &RunKey,
    scheduled_event_id: i64,
    attempt: i32,
    started_event_id: i64,
    query_id: &str,
) -> TaskToken {
    TaskToken {
        namespace: key.namespace.clone(),
        workflow_id: key.workflow_id.clone(),
        run_id: key.run_id.clone(),
        scheduled_event_id,
        attempt,
        query_id: query_id.to_string(),
        started_event_id,
        nexus_namespace: String::new(),
        nexus_cancel: false,
        signature: Vec::new(),
        magic: TOKEN_MAGIC,
    }
}

/// Decodes a task token without checking it (for routing it to its shard's owner, which
/// checks it).
pub fn parse_token(bytes: &[u8]) -> Result<(RunKey, TaskToken)> {
    if bytes.is_empty() {
        return Err(Error::InvalidArgument(
            "Task token not set on request.".into(),
        ));
    }
    // A Nexus token is base64url text; an encoded token starts with a byte no base64
    // alphabet has (its first field's key).
    let decoded = URL_SAFE_NO_PAD.decode(bytes).ok();
    let token = TaskToken::decode(decoded.as_deref().unwrap_or(bytes))
        .ok()
        .filter(|t| t.magic == TOKEN_MAGIC)
        .ok_or_else(|| Error::InvalidArgument("Error deserializing task token.".into()))?;
    let key = RunKey {
        namespace: token.namespace.clone(),
        workflow_id: token.workflow_id.clone(),
        run_id: token.run_id.clone(),
    };
    Ok((key, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunKey {
        RunKey {
            namespace: "team-a".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
        }
    }

    #[test]
    fn a_token_is_accepted_only_as_issued_and_in_its_namespace() {
        let signer = TokenSigner::new(b"secret");
        let bytes = signer.issue(&run(), 5, 2, 6, "");
        let (key, token) = signer.check("team-a", &bytes).expect("as issued");
        assert_eq!(
            (key, token.scheduled_event_id, token.attempt),
            (run(), 5, 2)
        );

        let err = signer.check("team-b", &bytes).unwrap_err().to_string();
        assert!(err.contains("different namespace"), "{err}");

        // Forged: the same fields for another run, re-encoded without the secret.
        let (_, mut forged) = parse_token(&bytes).expect("parses");
        forged.run_id = "someone-elses".into();
        let err = signer
            .check("team-a", &forged.encode_to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not one this server issued"), "{err}");

        // Another server's secret.
        let err = TokenSigner::new(b"other")
            .check("team-a", &bytes)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not one this server issued"), "{err}");
    }

    #[test]
    fn a_nexus_token_is_text_and_answered_from_the_handlers_namespace() {
        let signer = TokenSigner::new(b"secret");
        let bytes = signer.issue_nexus(&run(), 5, 1, "handlers", false);
        assert!(std::str::from_utf8(&bytes).is_ok_and(|s| s.is_ascii()));
        let (key, token) = signer.check("handlers", &bytes).expect("as issued");
        assert_eq!((key, token.scheduled_event_id), (run(), 5));
        let err = signer.check("team-a", &bytes).unwrap_err().to_string();
        assert!(err.contains("different namespace"), "{err}");
        assert_eq!(parse_token(&bytes).unwrap().0, run());
    }
}
