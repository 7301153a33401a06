//! Fuzzes `ratecast_core::protocol::parse_request` with well-formed JSON frames
//! built from typed fields, so the fuzzer spends its time on the values (ids,
//! times, ranges at the integer limits) rather than on getting JSON syntax right.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const ACTIONS: [&str; 4] = ["assets", "subscribe", "unsubscribe", "history"];

/// One member value; `Absent` leaves the member out.
#[derive(Arbitrary, Debug)]
enum Field {
    Absent,
    Null,
    /// An integer at or next to a limit of the types the parser converts to.
    Limit(Limit),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Text(String),
    Bool(bool),
    List(Vec<i64>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Limit {
    Zero,
    I64Max,
    I64Min,
    U64Max,
    U32Max,
    U32MaxPlusOne,
    /// One day of seconds, the widest `history` range.
    Day,
}

impl Limit {
    fn value(self) -> Value {
        match self {
            Self::Zero => 0.into(),
            Self::I64Max => i64::MAX.into(),
            Self::I64Min => i64::MIN.into(),
            Self::U64Max => u64::MAX.into(),
            Self::U32Max => u32::MAX.into(),
            Self::U32MaxPlusOne => (u64::from(u32::MAX) + 1).into(),
            Self::Day => 86_400.into(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Frame {
    /// Modulo 5, an index into [`ACTIONS`]; 4 sends `other_action` instead.
    action: u8,
    other_action: String,
    asset_id: Field,
    since: Field,
    from: Field,
    to: Field,
    extra: Option<(String, Field)>,
    /// Sends `message` as this value instead of the object, when set.
    message_override: Option<Field>,
}

fn insert(map: &mut Map<String, Value>, key: &str, field: Field) {
    let value = match field {
        Field::Absent => return,
        Field::Null => Value::Null,
        Field::Limit(limit) => limit.value(),
        Field::Signed(n) => n.into(),
        Field::Unsigned(n) => n.into(),
        // Non-finite floats become null, as serde_json writes them.
        Field::Float(x) => x.into(),
        Field::Text(s) => s.into(),
        Field::Bool(b) => b.into(),
        Field::List(items) => items.into(),
    };
    map.insert(key.to_owned(), value);
}

fuzz_target!(|frame: Frame| {
    let mut message = Map::new();
    insert(&mut message, "assetId", frame.asset_id);
    insert(&mut message, "since", frame.since);
    insert(&mut message, "from", frame.from);
    insert(&mut message, "to", frame.to);
    if let Some((key, field)) = frame.extra {
        insert(&mut message, &key, field);
    }
    let action = ACTIONS
        .get(usize::from(frame.action % 5))
        .map_or(frame.other_action, |a| (*a).to_owned());
    let mut envelope = Map::new();
    envelope.insert("action".into(), action.into());
    match frame.message_override {
        Some(field) => insert(&mut envelope, "message", field),
        None => {
            envelope.insert("message".into(), message.into());
        }
    }
    let text = Value::Object(envelope).to_string();
    ratecast_core_fuzz::check_frame(&text);
});
