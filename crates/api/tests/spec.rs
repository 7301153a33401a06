//! The AsyncAPI spec (`docs/asyncapi.yaml`) held against the code, so the two cannot
//! drift: every frame the real server sends validates against the JSON Schema of its
//! message in the spec, every example in the spec validates against its own schema,
//! and every client example is a request `parse_request` accepts as written.
//!
//! The spec's `components/schemas` become the `definitions` of one draft-07 document
//! (their `$ref`s rewritten), validated with the `jsonschema` crate. Which messages
//! go which way is read from the spec's operations: `receive` operations name what
//! clients send, `send` operations and replies what the server sends.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use jsonschema::Validator;
use ratecast_api::{ServerConfig, SessionConfig};
use ratecast_core::{
    AssetList,
    protocol::{ClientRequest, ErrorCode, parse_request},
    time::unix_now_secs,
};
use ratecast_testkit::{Client, point};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use support::ApiServer;

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/asyncapi.yaml");
/// The default `ASSET_LIST`, which the spec's examples use.
const ASSETS: &str = "EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD";
const COMPONENT_SCHEMAS: &str = "#/components/schemas/";

/// One message of the spec, ready to validate frames.
struct SpecMessage {
    /// Its key under `components/messages`, for failure reports.
    name: String,
    /// The `action` its payload schema pins with `const`.
    action: String,
    /// The payload schema's key under `components/schemas`.
    schema: String,
    validator: Validator,
    /// The `payload` of each of its examples.
    examples: Vec<Value>,
}

impl SpecMessage {
    /// Fails the test with the frame and every validation error unless it matches.
    fn assert_matches(&self, frame: &Value) {
        let errors = self.errors(frame);
        assert!(
            errors.is_empty(),
            "{frame}\ndoes not match schema {} of message {} in docs/asyncapi.yaml:\n{}",
            self.schema,
            self.name,
            errors.join("\n")
        );
    }

    fn errors(&self, frame: &Value) -> Vec<String> {
        self.validator
            .iter_errors(frame)
            .map(|error| format!("  at {:?}: {error}", error.instance_path().as_str()))
            .collect()
    }
}

/// The spec, its messages indexed by `action`, one map per direction.
struct Spec {
    doc: Value,
    to_server: BTreeMap<String, SpecMessage>,
    to_client: BTreeMap<String, SpecMessage>,
}

impl Spec {
    fn load() -> Self {
        let text = std::fs::read_to_string(SPEC_PATH).expect("docs/asyncapi.yaml is readable");
        let doc: Value = serde_saphyr::from_str(&text).expect("docs/asyncapi.yaml is valid YAML");
        assert_eq!(doc["asyncapi"], "3.0.0", "an AsyncAPI 3.0 document");
        let definitions = doc
            .pointer("/components/schemas")
            .cloned()
            .map(rewrite_refs)
            .expect("the spec has components/schemas");
        let (mut to_server, mut to_client) = (BTreeMap::new(), BTreeMap::new());
        let operations = doc["operations"]
            .as_object()
            .expect("the spec has operations");
        for (operation_name, operation) in operations {
            let (requests, sent) = match operation["action"].as_str() {
                Some("receive") => (&mut to_server, &mut to_client),
                Some("send") => (&mut to_client, &mut to_server),
                other => panic!("operation {operation_name} has action {other:?}"),
            };
            for reference in listed(&operation["messages"]) {
                insert(requests, spec_message(&doc, &definitions, reference));
            }
            for reference in listed(&operation["reply"]["messages"]) {
                insert(sent, spec_message(&doc, &definitions, reference));
            }
        }
        Self {
            doc,
            to_server,
            to_client,
        }
    }

    fn all_messages(&self) -> impl Iterator<Item = &SpecMessage> {
        self.to_server.values().chain(self.to_client.values())
    }

    /// The spec's message for a frame the server sent, by its `action`.
    fn server_message(&self, frame: &Value) -> &SpecMessage {
        let action = frame["action"]
            .as_str()
            .unwrap_or_else(|| panic!("server frame without a string action: {frame}"));
        self.to_client.get(action).unwrap_or_else(|| {
            panic!("the spec has no server message for action {action:?}: {frame}")
        })
    }

    /// The spec's message for a client frame, by its `action`.
    fn client_message(&self, frame: &Value) -> &SpecMessage {
        let action = frame["action"].as_str().unwrap_or_default();
        self.to_server.get(action).unwrap_or_else(|| {
            panic!("the spec has no client message for action {action:?}: {frame}")
        })
    }
}

/// The `$ref` strings of an operation's `messages` list (absent: none).
fn listed(messages: &Value) -> impl Iterator<Item = &str> {
    messages
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["$ref"].as_str().expect("operation messages are $refs"))
}

/// Adds a message under its action; one action names one message per direction.
fn insert(messages: &mut BTreeMap<String, SpecMessage>, message: SpecMessage) {
    if let Some(known) = messages.get(&message.action) {
        assert_eq!(
            known.name, message.name,
            "two messages for action {:?} in one direction",
            message.action
        );
        return;
    }
    messages.insert(message.action.clone(), message);
}

/// Follows a local `$ref` (and any `$ref` it lands on) to what it names; returns
/// that value and the last pointer followed.
fn follow<'a>(doc: &'a Value, reference: &str) -> (&'a Value, String) {
    let mut pointer = reference.to_owned();
    for _ in 0..8 {
        let local = pointer
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs are supported, got {pointer}"));
        let value = doc
            .pointer(local)
            .unwrap_or_else(|| panic!("{pointer} names nothing in docs/asyncapi.yaml"));
        match value.get("$ref").and_then(Value::as_str) {
            Some(next) => pointer = next.to_owned(),
            None => return (value, pointer),
        }
    }
    panic!("$ref chain from {reference} is too long");
}

/// Builds the validator and collects the examples of the message `reference` names.
fn spec_message(doc: &Value, definitions: &Value, reference: &str) -> SpecMessage {
    let (message, pointer) = follow(doc, reference);
    let name = pointer
        .strip_prefix("#/components/messages/")
        .unwrap_or_else(|| panic!("{reference} should lead to components/messages, got {pointer}"))
        .to_owned();
    let payload = message["payload"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("message {name}: payload should $ref a component schema"));
    let schema = payload
        .strip_prefix(COMPONENT_SCHEMAS)
        .unwrap_or_else(|| {
            panic!("message {name}: payload {payload} is not under components/schemas")
        })
        .to_owned();
    let action = definitions[&schema]["properties"]["action"]["const"]
        .as_str()
        .unwrap_or_else(|| panic!("schema {schema} should pin its action with const"))
        .to_owned();
    let root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": definitions,
        "allOf": [{"$ref": format!("#/definitions/{schema}")}],
    });
    let validator = jsonschema::draft7::new(&root)
        .unwrap_or_else(|error| panic!("schema {schema} is not valid draft-07: {error}"));
    let examples = message["examples"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|example| example["payload"].clone())
        .collect();
    SpecMessage {
        name,
        action,
        schema,
        validator,
        examples,
    }
}

/// Points every `$ref` under `components/schemas` at the `definitions` instead.
fn rewrite_refs(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        let name = reference
                            .strip_prefix(COMPONENT_SCHEMAS)
                            .unwrap_or_else(|| {
                                panic!("schema $ref {reference} is not under components/schemas")
                            });
                        (key, Value::String(format!("#/definitions/{name}")))
                    }
                    (_, value) => (key, rewrite_refs(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rewrite_refs).collect()),
        other => other,
    }
}

/// Receives frames for a client, checks each against the spec, and remembers which
/// actions and error codes it saw.
struct CheckedReceiver<'s> {
    spec: &'s Spec,
    actions: BTreeSet<String>,
    codes: BTreeSet<String>,
}

impl<'s> CheckedReceiver<'s> {
    fn new(spec: &'s Spec) -> Self {
        Self {
            spec,
            actions: BTreeSet::new(),
            codes: BTreeSet::new(),
        }
    }

    /// The next frame, which must match the spec and have this `action`; returns its `message`.
    async fn expect(&mut self, client: &mut Client, action: &str) -> Value {
        let frame = client.next_json().await;
        self.spec.server_message(&frame).assert_matches(&frame);
        self.actions.insert(action_of(&frame));
        if let Some(code) = frame["message"]["code"].as_str() {
            self.codes.insert(code.to_owned());
        }
        assert_eq!(frame["action"], action, "unexpected frame {frame}");
        frame["message"].clone()
    }

    /// Sends `text` and checks that the reply is an `error` with this code.
    async fn expect_error_for(&mut self, client: &mut Client, text: &str, code: &str) {
        client.send_text(text).await;
        let error = self.expect(client, "error").await;
        assert_eq!(error["code"], code, "the reply to {text:?}");
    }
}

fn action_of(frame: &Value) -> String {
    frame["action"].as_str().unwrap_or_default().to_owned()
}

fn points_in(message: &Value) -> usize {
    message["points"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn every_kind_of_frame_the_server_sends_matches_the_schema_of_its_message_in_the_spec() {
    let spec = Spec::load();
    let server = ApiServer::start(ASSETS).await;
    let now = unix_now_secs();
    server
        .insert(&[
            point(1, "EURUSD", now - 3, 1.0912),
            point(1, "EURUSD", now - 2, 1.091185),
            point(2, "USDJPY", now - 2, 150.5),
        ])
        .await;
    let mut client = server.client().await;
    let mut seen = CheckedReceiver::new(&spec);

    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    let assets = seen.expect(&mut client, "assets").await;
    assert_eq!(assets["assets"].as_array().map(Vec::len), Some(5));

    client
        .send_text(r#"{"action":"subscribe","message":{"assetId":1}}"#)
        .await;
    let history = seen.expect(&mut client, "asset_history").await;
    assert_eq!(points_in(&history), 2, "the window's points: {history}");

    server.insert(&[point(1, "EURUSD", now - 1, 1.0913)]).await;
    let live = seen.expect(&mut client, "point").await;
    assert_eq!(live["time"], now - 1);

    let range = format!(
        r#"{{"action":"history","message":{{"assetId":1,"from":{},"to":{now}}}}}"#,
        now - 60
    );
    client.send_text(&range).await;
    let stored = seen.expect(&mut client, "history").await;
    assert_eq!(points_in(&stored), 3, "the stored points: {stored}");

    let candles = format!(
        r#"{{"action":"candles","message":{{"assetId":1,"interval":"5s","from":{},"to":{now}}}}}"#,
        now - 60
    );
    client.send_text(&candles).await;
    let summarised = seen.expect(&mut client, "candles").await;
    let counted: i64 = summarised["candles"]
        .as_array()
        .expect("candles")
        .iter()
        .filter_map(|c| c["count"].as_i64())
        .sum();
    assert_eq!(counted, 3, "the stored points, in candles: {summarised}");

    // Candles of a day: its running candle does not close while the test runs
    // (but at midnight UTC).
    client
        .send_text(r#"{"action":"subscribe","message":{"assetId":1,"candles":"1d"}}"#)
        .await;
    let day = seen.expect(&mut client, "candle_history").await;
    assert_eq!(day["interval"], "1d", "{day}");
    server.insert(&[point(1, "EURUSD", now, 1.0914)]).await;
    let running = seen.expect(&mut client, "candle").await;
    assert_eq!(running["close"], 1.0914, "{running}");

    let since = format!(
        r#"{{"action":"subscribe","message":{{"assetId":2,"since":{}}}}}"#,
        now - 3
    );
    client.send_text(&since).await;
    let missed = seen.expect(&mut client, "asset_history").await;
    assert_eq!(points_in(&missed), 1, "only points after since: {missed}");

    for expected in [json!(2), Value::Null] {
        client
            .send_text(r#"{"action":"unsubscribe","message":{}}"#)
            .await;
        let unsubscribed = seen.expect(&mut client, "unsubscribed").await;
        assert_eq!(unsubscribed["assetId"], expected);
    }

    for (text, code) in [
        ("hello", "invalid_json"),
        ("", "invalid_json"),
        ("[]", "invalid_request"),
        (r#"{"action":"assets"}"#, "invalid_request"),
        (r#"{"action":7,"message":{}}"#, "invalid_request"),
        (r#"{"action":"nope","message":{}}"#, "unknown_action"),
        (
            r#"{"action":"subscribe","message":{"assetId":"1"}}"#,
            "invalid_asset_id",
        ),
        (
            r#"{"action":"subscribe","message":{"assetId":9}}"#,
            "unknown_asset",
        ),
        (
            r#"{"action":"subscribe","message":{"assetId":1,"since":-1}}"#,
            "invalid_range",
        ),
        (
            r#"{"action":"history","message":{"assetId":1,"from":200,"to":100}}"#,
            "invalid_range",
        ),
        (
            r#"{"action":"history","message":{"assetId":1,"from":0,"to":86400}}"#,
            "invalid_range",
        ),
        (
            r#"{"action":"candles","message":{"assetId":1,"interval":"1M","from":0,"to":60}}"#,
            "invalid_interval",
        ),
    ] {
        seen.expect_error_for(&mut client, text, code).await;
    }
    client.send(Message::binary(vec![0u8, 1, 2])).await;
    let binary = seen.expect(&mut client, "error").await;
    assert_eq!(binary["code"], "binary_not_supported");

    let described: BTreeSet<String> = spec.to_client.keys().cloned().collect();
    assert_eq!(
        seen.actions, described,
        "every server message of the spec was received"
    );
    let exercised = [
        "binary_not_supported",
        "invalid_asset_id",
        "invalid_interval",
        "invalid_json",
        "invalid_range",
        "invalid_request",
        "unknown_action",
        "unknown_asset",
    ];
    assert_eq!(
        seen.codes,
        exercised.map(String::from).into(),
        "error codes"
    );
}

#[tokio::test]
async fn a_request_over_the_rate_limit_is_refused_with_an_error_frame_that_matches_the_spec() {
    let spec = Spec::load();
    // One message a second and no burst: the second of two back-to-back requests is
    // over the limit (unless a whole second passes between them).
    let config = ServerConfig {
        session: SessionConfig {
            rate_per_second: 1,
            rate_burst: 1,
            ..SessionConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = ApiServer::start_with(ASSETS, config).await;
    let mut client = server.client().await;
    let mut seen = CheckedReceiver::new(&spec);
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    client
        .send_text(r#"{"action":"assets","message":{}}"#)
        .await;
    seen.expect(&mut client, "assets").await;
    let error = seen.expect(&mut client, "error").await;
    assert_eq!(error["code"], "rate_limited");
}

#[test]
fn every_message_in_the_spec_has_examples_that_match_its_own_schema() {
    let spec = Spec::load();
    assert_eq!(
        spec.to_server.keys().collect::<Vec<_>>(),
        [
            "add",
            "assets",
            "candles",
            "history",
            "remove",
            "subscribe",
            "unsubscribe"
        ]
    );
    assert_eq!(
        spec.to_client.keys().collect::<Vec<_>>(),
        [
            "asset_history",
            "assets",
            "candle",
            "candle_history",
            "candles",
            "error",
            "history",
            "point",
            "unsubscribed"
        ]
    );
    for message in spec.all_messages() {
        assert!(
            !message.examples.is_empty(),
            "message {} has no example",
            message.name
        );
        for example in &message.examples {
            message.assert_matches(example);
        }
    }
}

#[test]
fn every_client_example_in_the_spec_is_a_request_the_server_accepts_as_written() {
    let spec = Spec::load();
    let assets: AssetList = ASSETS.parse().expect("the default asset list is valid");
    for message in spec.to_server.values() {
        for example in &message.examples {
            let request = parse_request(&example.to_string(), &assets)
                .unwrap_or_else(|error| panic!("example {example} is refused: {error}"));
            // The parsed request, written back in the wire shape, is the example.
            let parsed = match request {
                ClientRequest::Assets => json!({"action":"assets","message":{}}),
                ClientRequest::Subscribe { asset, since } => {
                    let mut message = json!({"assetId": asset.id.0});
                    if let Some(since) = since {
                        message["since"] = json!(since);
                    }
                    json!({"action":"subscribe","message":message})
                }
                ClientRequest::SubscribeMany(follows) => {
                    let ids: Vec<u32> = follows.iter().map(|f| f.asset.id.0).collect();
                    let mut message = json!({"assetIds": ids});
                    let since: serde_json::Map<String, serde_json::Value> = follows
                        .iter()
                        .filter_map(|f| Some((f.asset.id.0.to_string(), json!(f.since?))))
                        .collect();
                    if !since.is_empty() {
                        message["since"] = serde_json::Value::Object(since);
                    }
                    json!({"action":"subscribe","message":message})
                }
                ClientRequest::Add(follow) => {
                    let mut message = json!({"assetId": follow.asset.id.0});
                    if let Some(since) = follow.since {
                        message["since"] = json!(since);
                    }
                    json!({"action":"add","message":message})
                }
                ClientRequest::SubscribeCandles { follows, interval } => {
                    let mut message = match &follows[..] {
                        [one] => json!({"assetId": one.asset.id.0}),
                        many => {
                            json!({"assetIds": many.iter().map(|f| f.asset.id.0).collect::<Vec<_>>()})
                        }
                    };
                    message["candles"] = json!(interval.as_str());
                    if let Some(since) = follows[0].since {
                        message["since"] = json!(since);
                    }
                    json!({"action":"subscribe","message":message})
                }
                ClientRequest::AddCandles { follow, interval } => {
                    let mut message =
                        json!({"assetId": follow.asset.id.0, "candles": interval.as_str()});
                    if let Some(since) = follow.since {
                        message["since"] = json!(since);
                    }
                    json!({"action":"add","message":message})
                }
                ClientRequest::Remove(asset) => {
                    json!({"action":"remove","message":{"assetId": asset.id.0}})
                }
                ClientRequest::Unsubscribe => json!({"action":"unsubscribe","message":{}}),
                ClientRequest::History { asset, from, to } => json!({
                    "action":"history",
                    "message":{"assetId": asset.id.0, "from": from, "to": to},
                }),
                ClientRequest::Candles {
                    asset,
                    interval,
                    from,
                    to,
                } => json!({
                    "action":"candles",
                    "message":{"assetId": asset.id.0, "interval": interval.as_str(), "from": from, "to": to},
                }),
            };
            assert_eq!(&parsed, example, "example of message {}", message.name);
        }
    }
}

#[test]
fn client_schemas_ignore_unknown_members_and_refuse_what_the_parser_refuses() {
    let spec = Spec::load();
    let assets: AssetList = ASSETS.parse().expect("the default asset list is valid");
    // The schemas cannot express every rule (`from <= to`, the span, which ids
    // exist, `1.0` as an id); these are the cases they can.
    for text in [
        r#"{"action":"assets","message":{},"id":"x"}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"extra":true}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"since":null}}"#,
        r#"{"action":"subscribe","message":{"assetId":"1"}}"#,
        r#"{"action":"subscribe","message":{"assetId":0}}"#,
        r#"{"action":"subscribe","message":{"assetId":4294967296}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"since":-1}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"since":"5"}}"#,
        r#"{"action":"subscribe","message":{}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1,3],"since":{"1":5,"3":null}}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[2],"since":7}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[]}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1,1]}}"#,
        r#"{"action":"subscribe","message":{"assetIds":["1"]}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1],"assetId":1}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1],"since":{"1":-1}}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1],"since":{"x":1}}}"#,
        r#"{"action":"add","message":{"assetId":2,"since":null}}"#,
        r#"{"action":"add","message":{"assetId":0}}"#,
        r#"{"action":"add","message":{}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"candles":"1m"}}"#,
        r#"{"action":"subscribe","message":{"assetIds":[1,2],"candles":"5s","since":60}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"candles":"2m"}}"#,
        r#"{"action":"subscribe","message":{"assetId":1,"candles":60}}"#,
        r#"{"action":"add","message":{"assetId":2,"candles":"1h","since":3600}}"#,
        r#"{"action":"add","message":{"assetId":2,"candles":"1M"}}"#,
        r#"{"action":"remove","message":{"assetId":2}}"#,
        r#"{"action":"remove","message":{"assetId":"2"}}"#,
        r#"{"action":"unsubscribe","message":{"assetId":1}}"#,
        r#"{"action":"unsubscribe","message":[]}"#,
        r#"{"action":"assets"}"#,
        r#"{"action":"history","message":{"assetId":1,"from":0,"to":10,"x":[]}}"#,
        r#"{"action":"history","message":{"assetId":1,"from":0}}"#,
        r#"{"action":"history","message":{"assetId":1,"from":0,"to":null}}"#,
        r#"{"action":"history","message":{"assetId":1,"from":"0","to":10}}"#,
        r#"{"action":"history","message":{"assetId":1,"from":-5,"to":10}}"#,
        r#"{"action":"candles","message":{"assetId":1,"interval":"1m","from":0,"to":10,"x":1}}"#,
        r#"{"action":"candles","message":{"assetId":1,"from":0,"to":10}}"#,
        r#"{"action":"candles","message":{"assetId":1,"interval":"2m","from":0,"to":10}}"#,
        r#"{"action":"candles","message":{"assetId":1,"interval":60,"from":0,"to":10}}"#,
        r#"{"action":"candles","message":{"assetId":1,"interval":"1m","from":0}}"#,
    ] {
        let frame: Value = serde_json::from_str(text).expect("test frames are JSON");
        let schema_accepts = spec.client_message(&frame).errors(&frame).is_empty();
        let parser_accepts = parse_request(text, &assets).is_ok();
        assert_eq!(
            schema_accepts, parser_accepts,
            "{text}: the schema and parse_request disagree"
        );
    }
}

#[test]
fn server_schemas_refuse_members_the_server_never_sends() {
    let spec = Spec::load();
    for message in spec.to_client.values() {
        let mut example = message.examples[0].clone();
        example["message"]["extra"] = json!(1);
        assert!(
            !message.errors(&example).is_empty(),
            "schema {} accepts an undocumented member",
            message.schema
        );
    }
}

#[test]
fn the_error_schema_lists_every_error_code_with_an_example_of_each() {
    let spec = Spec::load();
    let every_code = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownAction,
        ErrorCode::InvalidAssetId,
        ErrorCode::UnknownAsset,
        ErrorCode::BinaryNotSupported,
        ErrorCode::InvalidRange,
        ErrorCode::InvalidInterval,
        ErrorCode::Unavailable,
        ErrorCode::RateLimited,
        ErrorCode::Busy,
        ErrorCode::Backpressure,
    ];
    // A new variant fails to compile here: add it to the list above and to the spec.
    for code in every_code {
        match code {
            ErrorCode::InvalidJson
            | ErrorCode::InvalidRequest
            | ErrorCode::UnknownAction
            | ErrorCode::InvalidAssetId
            | ErrorCode::UnknownAsset
            | ErrorCode::BinaryNotSupported
            | ErrorCode::InvalidRange
            | ErrorCode::InvalidInterval
            | ErrorCode::Unavailable
            | ErrorCode::RateLimited
            | ErrorCode::Busy
            | ErrorCode::Backpressure => {}
        }
    }
    let codes: BTreeSet<&str> = every_code.iter().map(|c| c.as_str()).collect();
    let listed: BTreeSet<&str> = spec.doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(listed, codes, "the ErrorCode enum of the spec");
    let examples: BTreeSet<&str> = spec.to_client["error"]
        .examples
        .iter()
        .filter_map(|e| e["message"]["code"].as_str())
        .collect();
    assert_eq!(examples, codes, "one error example per code");
}

#[test]
fn the_channel_describes_every_close_code_the_server_sends() {
    let spec = Spec::load();
    let description = spec.doc["channels"]["root"]["description"]
        .as_str()
        .expect("the channel has a description");
    for (code, reason) in [
        ("1000", "idle timeout"),
        ("1001", "going away: server shutting down"),
        ("1002", "protocol violation"),
        ("1007", "invalid UTF-8"),
        ("1008", "slow consumer"),
        ("1008", "rate limit exceeded"),
        ("1009", "message too big"),
    ] {
        assert!(
            description
                .lines()
                .any(|line| line.contains(&format!("| {code} |")) && line.contains(reason)),
            "close {code} ({reason}) is described in channels/root"
        );
    }
}
