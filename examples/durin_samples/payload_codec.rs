//! payload-codec: a custom `PayloadCodec` "encrypts" every payload (XOR with a key, a stand-in
//! for real encryption) before it leaves the process, and decrypts payloads coming back. The
//! client and the worker share it through the client's `DataConverter`, so workflow code and
//! activities see plain values while the server only ever stores encoded bytes, as the history
//! fetched at the end shows.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::{Result, bail, ensure};
use futures::{FutureExt, future::BoxFuture};
use prost::Message;
use serde::{Deserialize, Serialize};
use temporalio_common::{
    data_converters::{
        DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError,
        PayloadConverter, SerializationContextData,
    },
    protos::temporal::api::{
        common::v1::{Payload, Payloads},
        history::v1::{HistoryEvent, history_event::Attributes},
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, history, start_options, unique, with_worker, within};

/// The `encoding` metadata value that marks payloads this codec produced.
const ENCODING: &str = "binary/xor-demo";

/// XORs the whole serialized payload (metadata and data) with a key. Use real encryption (and
/// a key service) in production; the shape of the codec stays the same.
pub struct XorCodec {
    key: Vec<u8>,
    key_id: String,
    encoded: AtomicUsize,
    decoded: AtomicUsize,
}

impl XorCodec {
    pub fn new(key: &[u8], key_id: &str) -> Self {
        XorCodec {
            key: key.to_vec(),
            key_id: key_id.to_string(),
            encoded: AtomicUsize::new(0),
            decoded: AtomicUsize::new(0),
        }
    }

    fn xor(&self, bytes: &[u8]) -> Vec<u8> {
        bytes
            .iter()
            .zip(self.key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect()
    }

    fn encode_one(&self, payload: &Payload) -> Payload {
        self.encoded.fetch_add(1, Ordering::Relaxed);
        Payload {
            metadata: HashMap::from([
                ("encoding".to_string(), ENCODING.as_bytes().to_vec()),
                (
                    "encryption-key-id".to_string(),
                    self.key_id.as_bytes().to_vec(),
                ),
            ]),
            data: self.xor(&payload.encode_to_vec()),
            ..Default::default()
        }
    }

    /// Payloads not produced by this codec pass through unchanged.
    fn decode_one(&self, payload: Payload) -> Result<Payload, PayloadConversionError> {
        if payload.metadata.get("encoding").map(Vec::as_slice) != Some(ENCODING.as_bytes()) {
            return Ok(payload);
        }
        self.decoded.fetch_add(1, Ordering::Relaxed);
        Payload::decode(self.xor(&payload.data).as_slice())
            .map_err(|e| PayloadConversionError::EncodingError(Box::new(e)))
    }
}

impl PayloadCodec for XorCodec {
    fn encode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let encoded = payloads.iter().map(|p| self.encode_one(p)).collect();
        async move { Ok(encoded) }.boxed()
    }

    fn decode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let decoded = payloads
            .into_iter()
            .map(|p| self.decode_one(p))
            .collect::<Result<Vec<_>, _>>();
        async move { decoded }.boxed()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CardDetails {
    pub holder: String,
    pub number: String,
}

pub struct CardActivities;

#[activities]
impl CardActivities {
    #[activity]
    pub async fn mask_card(
        _ctx: ActivityContext,
        card: CardDetails,
    ) -> Result<String, ActivityError> {
        let last4 = &card.number[card.number.len().saturating_sub(4)..];
        Ok(format!("card of {} ending in {last4}", card.holder))
    }
}

#[workflow]
#[derive(Default)]
pub struct CardWorkflow;

#[workflow_methods]
impl CardWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, card: CardDetails) -> WorkflowResult<String> {
        // Workflow code sees plain values: the codec runs at the edge of the process.
        let masked = ctx
            .execute_activity(
                CardActivities::mask_card,
                card,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(format!("stored {masked}"))
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let codec = Arc::new(XorCodec::new(b"not-a-real-key", "demo-key-1"));
    let data_converter = DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        codec.clone(),
    );
    // The worker built from this client encodes and decodes with the same codec.
    let client = env.client_with(data_converter).await?;
    let task_queue = unique("payload-codec");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<CardWorkflow>()?
            .register_activities(CardActivities)
            .build(),
    )?;
    let card = CardDetails {
        holder: "Ada Lovelace".to_string(),
        number: "4111 1111 1111 1234".to_string(),
    };

    let workflow_id = unique("card");
    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                CardWorkflow::run,
                card.clone(),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started CardWorkflow {workflow_id} with {card:?}");
        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result (decoded by the codec): {result:?}");
        ensure!(result == "stored card of Ada Lovelace ending in 1234");
        Ok(())
    })
    .await?;
    println!(
        "codec calls: {} payloads encoded, {} decoded (client and worker together)",
        codec.encoded.load(Ordering::Relaxed),
        codec.decoded.load(Ordering::Relaxed)
    );

    // What the server stored: every payload in history is encoded.
    let events = history(&client, &workflow_id, None).await?;
    let stored = payloads_in(&events);
    println!("payloads in the workflow's history, as stored by the server:");
    for (event, payload) in &stored {
        let encoding =
            String::from_utf8_lossy(payload.metadata.get("encoding").map_or(&[][..], |v| v));
        let plain = codec.decode_one(payload.clone())?;
        println!(
            "  {event}: encoding {encoding}, data {}",
            hex_preview(&payload.data)
        );
        println!(
            "      decoded with the key: {}",
            String::from_utf8_lossy(&plain.data)
        );
        ensure!(
            encoding == ENCODING,
            "{event} holds a payload that was not encoded"
        );
        for secret in [&card.number, &card.holder] {
            ensure!(
                !contains(&payload.data, secret.as_bytes()),
                "{event} holds {secret:?} in clear"
            );
        }
    }
    ensure!(
        stored.len() >= 4,
        "expected at least 4 payloads in history, found {}",
        stored.len()
    );

    // Without the codec, the result cannot be read.
    let plain_client = env.client().await?;
    let outcome = plain_client
        .get_workflow_handle::<CardWorkflow>(workflow_id.clone())
        .get_result(Default::default())
        .await;
    match outcome {
        Err(e) => println!("a client without the codec cannot read the result: {e}"),
        Ok(v) => bail!("a client without the codec read the result {v:?}"),
    }
    Ok(())
}

/// `(event type, payload)` for the payloads carried by the events this sample produces.
fn payloads_in(events: &[HistoryEvent]) -> Vec<(String, Payload)> {
    let mut out = Vec::new();
    for event in events {
        let payloads: Option<&Payloads> = match &event.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.as_ref(),
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => a.input.as_ref(),
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => a.result.as_ref(),
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => a.result.as_ref(),
            _ => None,
        };
        for p in payloads.map(|p| p.payloads.as_slice()).unwrap_or_default() {
            out.push((format!("{:?}", event.event_type()), p.clone()));
        }
    }
    out
}

fn hex_preview(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}... ({} bytes)", bytes.len())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
