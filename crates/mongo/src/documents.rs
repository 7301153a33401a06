//! Every BSON document and driver option the Mongo store sends: point and asset
//! documents, filters, sorts, index specifications, the candle aggregation, the
//! change-stream pipeline, and the options of the window read, the history read,
//! the candle read, the stream's start and the sessions they run in.
//!
//! They are built here, in plain functions, so unit tests can assert their exact
//! shape without a server; the store's reads, writes, indexes and stream use what
//! these functions return (only the asset list's seeding upsert and the
//! retention lookup in `setup.rs` build their small filters in place). What the
//! store does with them (the order of the calls) is in `lib.rs` and `start.rs`.

use std::time::Duration;

use mongodb::{
    IndexModel,
    bson::{Bson, DateTime, Document, Timestamp, doc},
    options::{
        AggregateOptions, ChangeStreamOptions, FindOptions, IndexOptions, ReadConcern,
        SessionOptions,
    },
};
use ratecast_core::{
    Asset, AssetId, Candle, Interval, Point,
    candle::{self},
};

pub const POINTS: &str = "points";
pub const ASSETS: &str = "assets";

/// The server-side limit of one `history` read (`maxTimeMS`). The API wraps its own
/// 5 s deadline around store calls; the server gives up first, so an abandoned
/// query does not keep running there.
pub const HISTORY_MAX_TIME: Duration = Duration::from_secs(4);
/// The server-side limit of the window read of `follow` (every tracked asset's
/// last 30 minutes), far below the 300 s a snapshot read may last
/// (`minSnapshotHistoryWindowInSeconds`).
pub const WINDOW_MAX_TIME: Duration = Duration::from_secs(30);

/// `{_id: {a, t}, assetId, assetName, time, value, at}`: `_id` makes (asset,
/// time) unique, `at` (the point's time as a Date) drives the TTL index.
pub fn point_document(point: &Point) -> Document {
    doc! {
        "_id": { "a": i64::from(point.asset_id.0), "t": point.time },
        "assetId": i64::from(point.asset_id.0),
        "assetName": point.asset_name.as_ref(),
        "time": point.time,
        "value": point.value,
        "at": DateTime::from_millis(point.time.saturating_mul(1000)),
    }
}

/// Why a stored document is not a point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed point document: {0}")]
pub struct MalformedPoint(pub String);

/// Reads a point document back. Numbers are accepted as any BSON numeric type,
/// since other writers (a shell, an import) may store `int32` or `double`.
pub fn parse_point(document: &Document) -> Result<Point, MalformedPoint> {
    let integer = |field: &str| -> Result<i64, MalformedPoint> {
        match document.get(field) {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Double(x)) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(*x as i64),
            other => Err(MalformedPoint(format!("{field} is {other:?}"))),
        }
    };
    let asset_id = u32::try_from(integer("assetId")?)
        .map_err(|_| MalformedPoint("assetId out of range".into()))?;
    let value = match document.get("value") {
        Some(Bson::Double(x)) => *x,
        Some(Bson::Int32(n)) => f64::from(*n),
        Some(Bson::Int64(n)) => *n as f64,
        other => return Err(MalformedPoint(format!("value is {other:?}"))),
    };
    if !(value.is_finite() && value > 0.0) {
        return Err(MalformedPoint(format!(
            "value {value} is not a positive number"
        )));
    }
    let asset_name = document
        .get_str("assetName")
        .map_err(|_| MalformedPoint("assetName is not a string".into()))?;
    Ok(Point {
        asset_id: AssetId(asset_id),
        asset_name: asset_name.into(),
        time: integer("time")?,
        value,
    })
}

/// Points of one asset with `from <= time <= to`; served by [`asset_time_index`].
pub fn history_filter(asset: AssetId, from: i64, to: i64) -> Document {
    doc! { "assetId": i64::from(asset.0), "time": { "$gte": from, "$lte": to } }
}

/// The window of every tracked asset since `since`, in one query served by
/// [`asset_time_index`] (`$in` on the asset, range on time).
pub fn window_filter(assets: &[AssetId], since: i64) -> Document {
    let ids: Vec<i64> = assets.iter().map(|a| i64::from(a.0)).collect();
    doc! { "assetId": { "$in": ids }, "time": { "$gte": since } }
}

/// Per asset, ascending by time.
pub fn window_sort() -> Document {
    doc! { "assetId": 1, "time": 1 }
}

/// Ascending by time.
pub fn history_sort() -> Document {
    doc! { "time": 1 }
}

/// The `history` read: ascending by time, stopped by the server after
/// [`HISTORY_MAX_TIME`] (code 50, a transient error). The read concern is the
/// collection's (majority).
pub fn history_find_options() -> FindOptions {
    FindOptions::builder()
        .sort(history_sort())
        .max_time(HISTORY_MAX_TIME)
        .build()
}

/// The candle read: the points of `asset` in the whole intervals starting in
/// `[from, to]`, summarised by the database. `$match` and `$sort` are served by
/// [`asset_time_index`] (equality on the asset, range and order on time), so
/// `$first`/`$last` see each interval's points in time order; the interval start
/// is integer arithmetic on `time` (`time - time % secs`, the same UTC alignment
/// as `Interval::start_of` for the non-negative times the API accepts); empty
/// intervals have no group, hence no candle. At most `limit` candles, ascending.
pub fn candles_pipeline(
    asset: AssetId,
    interval: Interval,
    from: i64,
    to: i64,
    limit: usize,
) -> Vec<Document> {
    let (first, last) = candle::point_range(interval, from, to);
    let secs = interval.secs();
    vec![
        doc! { "$match": history_filter(asset, first, last) },
        doc! { "$sort": history_sort() },
        doc! { "$group": {
            "_id": { "$subtract": ["$time", { "$mod": ["$time", secs] }] },
            "open": { "$first": "$value" },
            "high": { "$max": "$value" },
            "low": { "$min": "$value" },
            "close": { "$last": "$value" },
            "count": { "$sum": 1 },
            "lastTime": { "$last": "$time" },
        } },
        doc! { "$sort": { "_id": 1 } },
        doc! { "$limit": i64::try_from(limit).unwrap_or(i64::MAX) },
    ]
}

/// The candle read, stopped by the server after [`HISTORY_MAX_TIME`] like
/// `history`. The read concern is the collection's (majority).
pub fn candles_aggregate_options() -> AggregateOptions {
    AggregateOptions::builder()
        .max_time(HISTORY_MAX_TIME)
        .build()
}

/// Why a document of the candle read's reply is not a candle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed candle document: {0}")]
pub struct MalformedCandle(pub String);

/// Reads one group of [`candles_pipeline`] back, judged closed at `now`.
/// Numbers are accepted as any BSON numeric type (`$sum` answers `int32`, a
/// value stored by a shell may be an integer); anything else is an error.
pub fn parse_candle(
    document: &Document,
    interval: Interval,
    now: i64,
) -> Result<Candle, MalformedCandle> {
    let number = |field: &str| -> Result<f64, MalformedCandle> {
        match document.get(field) {
            Some(Bson::Double(x)) if x.is_finite() => Ok(*x),
            Some(Bson::Int32(n)) => Ok(f64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n as f64),
            other => Err(MalformedCandle(format!("{field} is {other:?}"))),
        }
    };
    let integer = |field: &str| -> Result<i64, MalformedCandle> {
        match document.get(field) {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Double(x)) if x.fract() == 0.0 && x.abs() < 9e15 => Ok(*x as i64),
            other => Err(MalformedCandle(format!("{field} is {other:?}"))),
        }
    };
    let time = integer("_id")?;
    if interval.start_of(time) != time {
        return Err(MalformedCandle(format!(
            "_id {time} is not the start of a {interval} interval"
        )));
    }
    let count = u64::try_from(integer("count")?)
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| MalformedCandle("count is not positive".into()))?;
    let last_time = integer("lastTime")?;
    if interval.start_of(last_time) != time {
        return Err(MalformedCandle(format!(
            "lastTime {last_time} is not in the {interval} interval of {time}"
        )));
    }
    Ok(Candle {
        time,
        open: number("open")?,
        high: number("high")?,
        low: number("low")?,
        close: number("close")?,
        count,
        closed: interval.is_closed(time, now),
        last_time,
    })
}

/// The session of the window read: a snapshot session, so every read in it
/// (the `find` and its `getMore`s) sees one majority-committed point in time and
/// the session learns that time (`atClusterTime`) from the first reply.
/// Snapshot and causal consistency are mutually exclusive; the latter stays unset.
pub fn snapshot_session_options() -> SessionOptions {
    SessionOptions::builder().snapshot(true).build()
}

/// The window read in the snapshot session. The read concern is set on the read
/// itself: `points` carries `majority`, and the driver keeps a read concern that
/// is already there, so without this the `find` would go out as a majority read,
/// the reply would carry no `atClusterTime` and there would be no time to start
/// the stream at.
pub fn snapshot_window_find_options() -> FindOptions {
    FindOptions::builder()
        .sort(window_sort())
        .read_concern(ReadConcern::snapshot())
        .max_time(WINDOW_MAX_TIME)
        .build()
}

/// The session of the fallback start (a server that reports no snapshot time):
/// causally consistent, so the driver sends the window read with
/// `afterClusterTime` = the operation time of the session's previous command.
pub fn causal_session_options() -> SessionOptions {
    SessionOptions::builder().causal_consistency(true).build()
}

/// The window read in the causal session: at majority, which with
/// `afterClusterTime` waits until the majority-committed snapshot has reached
/// that time.
pub fn causal_window_find_options() -> FindOptions {
    FindOptions::builder()
        .sort(window_sort())
        .read_concern(ReadConcern::majority())
        .max_time(WINDOW_MAX_TIME)
        .build()
}

/// The command whose reply's `operationTime` is the fallback start time.
pub fn ping_command() -> Document {
    doc! { "ping": 1 }
}

/// The command whose reply gives the server's clock (`localTime`) and its wire
/// version (`maxWireVersion`).
pub fn hello_command() -> Document {
    doc! { "hello": 1 }
}

/// The oldest wire version ratecast runs on: 13 is MongoDB 5.0, the first with
/// snapshot reads, on which the gapless start of a follow rests (`start.rs`). The
/// driver refuses a snapshot read on an older server before sending it
/// ("Snapshot reads require MongoDB 5.0 or later").
pub const MIN_WIRE_VERSION: i32 = 13;

/// What the store reads from a `hello` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The server's clock when it answered, in Unix milliseconds.
    pub local_time_ms: i64,
    /// The newest wire protocol the server speaks.
    pub max_wire_version: i32,
}

/// A `hello` reply that lacks a field the store needs.
#[derive(Debug, thiserror::Error)]
#[error("unexpected hello reply: {0}")]
pub struct MalformedHello(String);

/// Reads `localTime` (a date) and `maxWireVersion` from a `hello` reply.
pub fn parse_hello(reply: &Document) -> Result<Hello, MalformedHello> {
    let local_time_ms = match reply.get("localTime") {
        Some(Bson::DateTime(time)) => time.timestamp_millis(),
        other => return Err(MalformedHello(format!("localTime is {other:?}"))),
    };
    let max_wire_version = match reply.get("maxWireVersion") {
        Some(Bson::Int32(n)) => *n,
        Some(Bson::Int64(n)) => i32::try_from(*n).unwrap_or(i32::MAX),
        other => return Err(MalformedHello(format!("maxWireVersion is {other:?}"))),
    };
    Ok(Hello {
        local_time_ms,
        max_wire_version,
    })
}

/// A new change stream that returns every change at or after `start` (the body of
/// its `$changeStream` stage is exactly `{startAtOperationTime: start}`).
pub fn stream_start_options(start: Timestamp) -> ChangeStreamOptions {
    ChangeStreamOptions::builder()
        .start_at_operation_time(start)
        .build()
}

/// Serves [`history_filter`] with [`history_sort`]: equality on the asset, range
/// and order on time.
pub fn asset_time_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "assetId": 1, "time": 1 })
        .options(
            IndexOptions::builder()
                .name("assetId_time".to_owned())
                .build(),
        )
        .build()
}

/// Deletes points whose `at` is older than `retention`.
pub fn ttl_index(retention: Duration) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "at": 1 })
        .options(
            IndexOptions::builder()
                .name("at_ttl".to_owned())
                .expire_after(retention)
                .build(),
        )
        .build()
}

/// Changes the TTL of the existing `at` index, when `ttl_index` conflicts with it.
pub fn ttl_update_command(retention: Duration) -> Document {
    doc! {
        "collMod": POINTS,
        "index": { "keyPattern": { "at": 1 }, "expireAfterSeconds": retention.as_secs() as i64 },
    }
}

/// An asset name maps to one id forever: a second id for a name is refused.
pub fn asset_name_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "name": 1 })
        .options(
            IndexOptions::builder()
                .name("name_unique".to_owned())
                .unique(true)
                .build(),
        )
        .build()
}

/// The asset document `{_id: id, name}`.
pub fn asset_document(asset: &Asset) -> Document {
    doc! { "_id": i64::from(asset.id.0), "name": asset.name.as_ref() }
}

/// The change-stream pipeline. It must never change while a deployment runs:
/// resume tokens are only valid with the pipeline that produced them.
pub fn change_stream_pipeline() -> Vec<Document> {
    vec![doc! { "$match": { "operationType": "insert" } }]
}

#[cfg(test)]
mod tests {
    use mongodb::bson::to_document;

    use super::*;

    fn point() -> Point {
        Point {
            asset_id: AssetId(2),
            asset_name: "USDJPY".into(),
            time: 1_700_000_000,
            value: 150.125,
        }
    }

    #[test]
    fn point_documents_have_the_documented_fields() {
        assert_eq!(
            point_document(&point()),
            doc! {
                "_id": { "a": 2_i64, "t": 1_700_000_000_i64 },
                "assetId": 2_i64,
                "assetName": "USDJPY",
                "time": 1_700_000_000_i64,
                "value": 150.125,
                "at": DateTime::from_millis(1_700_000_000_000),
            }
        );
    }

    #[test]
    fn point_documents_round_trip_and_other_numeric_types_are_read() {
        assert_eq!(parse_point(&point_document(&point())), Ok(point()));
        let shell_written = doc! { "assetId": 2_i32, "assetName": "USDJPY", "time": 1_700_000_000.0, "value": 150_i32 };
        let parsed = parse_point(&shell_written).expect("numeric types are accepted");
        assert_eq!(
            (parsed.asset_id, parsed.time, parsed.value),
            (AssetId(2), 1_700_000_000, 150.0)
        );
    }

    #[test]
    fn malformed_point_documents_are_errors_not_panics() {
        for bad in [
            doc! {},
            doc! { "assetId": "2", "assetName": "X", "time": 1_i64, "value": 1.0 },
            doc! { "assetId": -1_i64, "assetName": "X", "time": 1_i64, "value": 1.0 },
            doc! { "assetId": 1_i64, "assetName": 5, "time": 1_i64, "value": 1.0 },
            doc! { "assetId": 1_i64, "assetName": "X", "time": 1.5, "value": 1.0 },
            doc! { "assetId": 1_i64, "assetName": "X", "time": 1_i64, "value": f64::NAN },
            doc! { "assetId": 1_i64, "assetName": "X", "time": 1_i64, "value": -3.0 },
            doc! { "assetId": 1_i64, "assetName": "X", "time": 1_i64, "value": "1.0" },
        ] {
            assert!(parse_point(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn history_query_is_exact() {
        assert_eq!(
            history_filter(AssetId(3), 100, 200),
            doc! { "assetId": 3_i64, "time": { "$gte": 100_i64, "$lte": 200_i64 } }
        );
        assert_eq!(history_sort(), doc! { "time": 1 });
        assert_eq!(
            window_filter(&[AssetId(1), AssetId(2)], 500),
            doc! { "assetId": { "$in": [1_i64, 2_i64] }, "time": { "$gte": 500_i64 } }
        );
        assert_eq!(window_sort(), doc! { "assetId": 1, "time": 1 });
    }

    #[test]
    fn the_candle_pipeline_is_exact() {
        // Candles starting in [61, 130] cover the points of [120, 179].
        assert_eq!(
            candles_pipeline(AssetId(3), Interval::M1, 61, 130, 1000),
            vec![
                doc! { "$match": { "assetId": 3_i64, "time": { "$gte": 120_i64, "$lte": 179_i64 } } },
                doc! { "$sort": { "time": 1 } },
                doc! { "$group": {
                    "_id": { "$subtract": ["$time", { "$mod": ["$time", 60_i64] }] },
                    "open": { "$first": "$value" },
                    "high": { "$max": "$value" },
                    "low": { "$min": "$value" },
                    "close": { "$last": "$value" },
                    "count": { "$sum": 1 },
                    "lastTime": { "$last": "$time" },
                } },
                doc! { "$sort": { "_id": 1 } },
                doc! { "$limit": 1000_i64 },
            ]
        );
        let day = candles_pipeline(AssetId(1), Interval::D1, 86_400, 86_400, 5);
        assert_eq!(
            day[0],
            doc! { "$match": { "assetId": 1_i64, "time": { "$gte": 86_400_i64, "$lte": 172_799_i64 } } }
        );
        assert_eq!(
            day[2].get_document("$group").expect("a group").get("_id"),
            Some(&Bson::Document(
                doc! { "$subtract": ["$time", { "$mod": ["$time", 86_400_i64] }] }
            ))
        );
        assert_eq!(day[4], doc! { "$limit": 5_i64 });
    }

    #[test]
    fn the_candle_read_is_limited_to_four_seconds_on_the_server() {
        let options = candles_aggregate_options();
        assert_eq!(options.read_concern, None, "the collection's majority");
        assert_eq!(
            to_document(&options).expect("serializes"),
            doc! { "maxTimeMS": 4000_i32 }
        );
    }

    #[test]
    fn candle_documents_are_read_back_and_judged_closed_by_the_clock() {
        let group = doc! { "_id": 120_i64, "open": 1.5, "high": 1.7, "low": 1_i32, "close": 1.25, "count": 4_i32, "lastTime": 170_i64 };
        let candle = Candle {
            time: 120,
            open: 1.5,
            high: 1.7,
            low: 1.0,
            close: 1.25,
            count: 4,
            closed: true,
            last_time: 170,
        };
        assert_eq!(parse_candle(&group, Interval::M1, 180), Ok(candle));
        assert_eq!(
            parse_candle(&group, Interval::M1, 179),
            Ok(Candle {
                closed: false,
                ..candle
            }),
            "the interval's last second is still running"
        );
    }

    #[test]
    fn malformed_candle_documents_are_errors_not_panics() {
        let good = doc! { "_id": 120_i64, "open": 1.5, "high": 1.7, "low": 1.0, "close": 1.25, "count": 4_i32, "lastTime": 179_i64 };
        let with = |field: &str, value: Bson| {
            let mut document = good.clone();
            document.insert(field, value);
            document
        };
        for bad in [
            doc! {},
            with("_id", Bson::Null),
            with("_id", Bson::Int64(121)),
            with("_id", Bson::Double(120.5)),
            with("open", Bson::String("1.5".into())),
            with("high", Bson::Double(f64::NAN)),
            with("close", Bson::Null),
            with("count", Bson::Int32(0)),
            with("count", Bson::Int64(-3)),
            with("count", Bson::Double(1.5)),
            with("lastTime", Bson::Null),
            with("lastTime", Bson::Int64(180)),
        ] {
            assert!(parse_candle(&bad, Interval::M1, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn index_specifications_are_exact() {
        assert_eq!(
            to_document(&asset_time_index()).expect("serializes"),
            doc! { "key": { "assetId": 1, "time": 1 }, "name": "assetId_time" }
        );
        assert_eq!(
            to_document(&ttl_index(Duration::from_secs(7 * 86_400))).expect("serializes"),
            doc! { "key": { "at": 1 }, "name": "at_ttl", "expireAfterSeconds": 604_800_i32 }
        );
        assert_eq!(
            to_document(&asset_name_index()).expect("serializes"),
            doc! { "key": { "name": 1 }, "name": "name_unique", "unique": true }
        );
        assert_eq!(
            ttl_update_command(Duration::from_secs(3600)),
            doc! { "collMod": "points", "index": { "keyPattern": { "at": 1 }, "expireAfterSeconds": 3600_i64 } }
        );
    }

    #[test]
    fn the_history_read_is_sorted_by_time_and_limited_to_four_seconds_on_the_server() {
        let options = history_find_options();
        assert_eq!(HISTORY_MAX_TIME, Duration::from_secs(4));
        assert_eq!(options.read_concern, None, "the collection's majority");
        assert_eq!(
            to_document(&options).expect("serializes"),
            doc! { "maxTimeMS": 4000_i32, "sort": { "time": 1 } }
        );
    }

    #[test]
    fn the_window_read_is_a_snapshot_read_limited_on_the_server() {
        let session = snapshot_session_options();
        assert_eq!(session.snapshot, Some(true));
        assert_eq!(session.causal_consistency, None, "exclusive with snapshot");
        assert_eq!(session.snapshot_time, None, "the server picks the time");
        let find = snapshot_window_find_options();
        assert_eq!(find.read_concern, Some(ReadConcern::snapshot()));
        assert_eq!(
            find.max_await_time, None,
            "a getMore of a plain cursor takes none"
        );
        assert_eq!(
            to_document(&find).expect("serializes"),
            doc! { "maxTimeMS": 30_000_i32, "sort": { "assetId": 1, "time": 1 } }
        );
    }

    #[test]
    fn the_fallback_window_read_is_a_causal_majority_read_after_a_ping() {
        let session = causal_session_options();
        assert_eq!(
            (session.causal_consistency, session.snapshot),
            (Some(true), None)
        );
        let find = causal_window_find_options();
        assert_eq!(find.read_concern, Some(ReadConcern::majority()));
        assert_eq!(
            to_document(&find).expect("serializes"),
            doc! { "maxTimeMS": 30_000_i32, "sort": { "assetId": 1, "time": 1 } }
        );
        assert_eq!(ping_command(), doc! { "ping": 1 });
    }

    #[test]
    fn the_stream_starts_exactly_at_the_given_time_and_nothing_else() {
        let start = Timestamp {
            time: 1_700_000_000,
            increment: 7,
        };
        assert_eq!(
            to_document(&stream_start_options(start)).expect("serializes"),
            doc! { "startAtOperationTime": start }
        );
    }

    #[test]
    fn the_change_stream_pipeline_matches_inserts_only() {
        assert_eq!(
            change_stream_pipeline(),
            vec![doc! { "$match": { "operationType": "insert" } }]
        );
    }

    #[test]
    fn asset_documents_are_exact() {
        let asset = Asset {
            id: AssetId(1),
            name: "EURUSD".into(),
        };
        assert_eq!(
            asset_document(&asset),
            doc! { "_id": 1_i64, "name": "EURUSD" }
        );
    }

    /// The fields of a `hello` reply that ratecast reads, as MongoDB 7.0 sends
    /// them (other fields omitted).
    #[test]
    fn a_hello_reply_gives_the_server_clock_and_wire_version() {
        assert_eq!(hello_command(), doc! { "hello": 1 });
        let reply = doc! {
            "isWritablePrimary": true,
            "setName": "rs0",
            "localTime": DateTime::from_millis(1_764_806_400_123),
            "maxWireVersion": 21,
            "minWireVersion": 0,
            "ok": 1.0,
        };
        assert_eq!(
            parse_hello(&reply).expect("a hello reply"),
            Hello {
                local_time_ms: 1_764_806_400_123,
                max_wire_version: 21
            }
        );
    }

    #[test]
    fn a_hello_reply_without_a_clock_is_an_error_not_time_zero() {
        let reply = doc! { "maxWireVersion": 21, "localTime": "yesterday" };
        let error = parse_hello(&reply).expect_err("no date");
        assert!(error.to_string().contains("localTime"), "{error}");
        let reply = doc! { "localTime": DateTime::from_millis(1) };
        assert!(parse_hello(&reply).is_err(), "no wire version");
    }
}
