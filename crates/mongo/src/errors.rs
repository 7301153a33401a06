//! Classification of driver errors into what the store does about them.
//!
//! Inserts (`insert_many(ordered: false)`) are classified per document: a
//! duplicate key (11000) means another fetcher stored that second first, which is
//! success; any other write error with a transient code, a write-concern error
//! with a transient code (64 WriteConcernFailed: the majority did not answer in
//! time) and any error the server or driver labels `RetryableWriteError` fail the
//! batch so the writer retries it (a retry is idempotent: what was stored comes
//! back as duplicates); every other write error is a permanent refusal of that one
//! document (121 document validation, a bad value), counted and dropped so it
//! never stalls the writer. A write-concern error no retry can cure (79
//! UnknownReplWriteConcern, 100 UnsatisfiableWriteConcern, a bad `w`: any code not
//! in [`TRANSIENT_CODES`]) settles the batch too: the primary applied the
//! documents, only the acknowledgement failed, so they are counted as unconfirmed
//! and the writer moves on instead of retrying the head batch forever while its
//! buffer drops newer points. Change streams: a lost resume point (286 ChangeStreamHistoryLost,
//! 260 InvalidResumeToken, 280 ChangeStreamFatalError) means reload the window;
//! network trouble and the server's resumable codes mean resume from the last
//! token; anything else is reported as a store error.

use mongodb::error::{
    Error, ErrorKind, IndexedWriteError, InsertManyError, WriteConcernError, WriteFailure,
};
use ratecast_core::{InsertReport, StoreError};

/// The server's duplicate-key code.
pub const DUPLICATE_KEY: i32 = 11000;
/// Resume point no longer in the oplog.
pub const CHANGE_STREAM_HISTORY_LOST: i32 = 286;
/// Resume token unusable (e.g. the pipeline changed).
pub const INVALID_RESUME_TOKEN: i32 = 260;
/// The stream cannot continue (e.g. the collection was dropped).
pub const CHANGE_STREAM_FATAL: i32 = 280;
/// A snapshot read outlived `minSnapshotHistoryWindowInSeconds`.
pub const SNAPSHOT_TOO_OLD: i32 = 239;
/// The snapshot asked for is not available (yet) on this node.
pub const SNAPSHOT_UNAVAILABLE: i32 = 246;

/// Server codes after which a change stream can resume (the change-streams
/// specification's list, for servers that do not label errors).
const RESUMABLE_CODES: &[i32] = &[
    6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
];

/// Server codes after which the same write or read may succeed later:
/// - the retryable-writes specification's list (elections, shutdowns, network:
///   6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436);
/// - 64 WriteConcernFailed (the write was applied; a retry finds duplicates);
/// - 50 MaxTimeMSExpired (our own server-side time limits);
/// - 134 ReadConcernMajorityNotAvailableYet (a retryable read code);
/// - 239 SnapshotTooOld and 246 SnapshotUnavailable (a snapshot read retried anew);
/// - 63, 150, 13388 (stale routing information in a sharded cluster);
/// - 43 CursorNotFound, 133 FailedToSatisfyReadPreference, 234 RetryChangeStream
///   (a read or stream started anew).
const TRANSIENT_CODES: &[i32] = &[
    6,
    7,
    43,
    50,
    63,
    64,
    89,
    91,
    133,
    134,
    150,
    189,
    234,
    SNAPSHOT_TOO_OLD,
    SNAPSHOT_UNAVAILABLE,
    262,
    9001,
    10107,
    11600,
    11602,
    13388,
    13435,
    13436,
];

/// The error label servers ≥ 4.4 put on resumable change-stream errors.
const RESUMABLE_LABEL: &str = "ResumableChangeStreamError";
/// The error label of a write that may succeed when retried (servers ≥ 4.4 set it;
/// the driver adds it to network errors).
const RETRYABLE_WRITE_LABEL: &str = "RetryableWriteError";

/// An `insert_many` that the server answered for every document: each was
/// stored, already held, or refused for good.
#[derive(Debug)]
pub struct InsertOutcome {
    pub report: InsertReport,
    /// The first refused document, for the log; `None` when nothing was refused.
    pub rejection: Option<Rejection>,
    /// A write-concern error no retry can cure, for the log: the documents
    /// counted as inserted were applied by the primary but not acknowledged.
    pub concern: Option<ConcernFailure>,
}

/// A write concern the server cannot satisfy, as it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcernFailure {
    pub code: i32,
    pub code_name: String,
    pub message: String,
}

impl From<&WriteConcernError> for ConcernFailure {
    fn from(error: &WriteConcernError) -> Self {
        Self {
            code: error.code,
            code_name: error.code_name.clone(),
            message: error.message.clone(),
        }
    }
}

/// One document the server refused for good, as it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The document's index in the batch.
    pub index: usize,
    pub code: i32,
    pub code_name: String,
    pub message: String,
}

/// The outcome of an `insert_many(ordered: false)` of `attempted` documents that
/// returned an error: settled per document, or an error that fails the batch
/// (transient ones are [`StoreError::Unavailable`]) for the writer to retry.
///
/// With `ordered: false` the server tries every document and lists each failure
/// in `writeErrors` with its index, so a batch it answered stored every document
/// not listed. When the server stops a batch early (an election, a shutdown), the
/// failure is a top-level error or a write error with a transient code, and the
/// whole batch is retried.
pub fn classify_insert_error(error: Error, attempted: usize) -> Result<InsertOutcome, StoreError> {
    let ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
        return Err(store_error(error));
    };
    let concern = failure.write_concern_error.as_ref();
    if error.contains_label(RETRYABLE_WRITE_LABEL)
        || concern.is_some_and(|c| TRANSIENT_CODES.contains(&c.code))
    {
        return Err(StoreError::Unavailable(Box::new(error)));
    }
    let write_errors = failure.write_errors.as_deref().unwrap_or_default();
    if write_errors
        .iter()
        .any(|e| TRANSIENT_CODES.contains(&e.code))
    {
        return Err(StoreError::Unavailable(Box::new(error)));
    }
    let mut outcome = settle(write_errors, attempted);
    if let Some(concern) = concern {
        outcome.report.unconfirmed = outcome.report.inserted;
        outcome.concern = Some(ConcernFailure::from(concern));
    }
    Ok(outcome)
}

/// Counts a batch the server answered for every document.
fn settle(write_errors: &[IndexedWriteError], attempted: usize) -> InsertOutcome {
    let duplicates = write_errors
        .iter()
        .filter(|e| e.code == DUPLICATE_KEY)
        .count();
    let refused: Vec<&IndexedWriteError> = write_errors
        .iter()
        .filter(|e| e.code != DUPLICATE_KEY)
        .collect();
    let report = InsertReport {
        inserted: attempted.saturating_sub(write_errors.len()),
        duplicates,
        rejected: refused.len(),
        ..InsertReport::default()
    };
    let rejection = refused.first().map(|e| Rejection {
        index: e.index,
        code: e.code,
        code_name: e.code_name.clone().unwrap_or_default(),
        message: e.message.clone(),
    });
    InsertOutcome {
        report,
        rejection,
        concern: None,
    }
}

/// Wraps a driver error: what may succeed when retried ([`is_transient`]) is
/// `Unavailable`, the rest `Other`.
pub fn store_error(error: Error) -> StoreError {
    if is_transient(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Other(Box::new(error))
    }
}

/// What to do after a change stream returned an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAction {
    /// Reopen with the last resume token, after a backoff.
    Resume,
    /// The resume point is gone: reload the window and start a new stream.
    Reload,
    /// Not a change-stream condition we can recover from in place.
    Fail,
}

pub fn classify_stream_error(error: &Error) -> StreamAction {
    let code = server_code(error);
    if matches!(
        code,
        Some(CHANGE_STREAM_HISTORY_LOST | INVALID_RESUME_TOKEN | CHANGE_STREAM_FATAL)
    ) {
        return StreamAction::Reload;
    }
    if is_network_error(error)
        || error.contains_label(RESUMABLE_LABEL)
        || code.is_some_and(|c| RESUMABLE_CODES.contains(&c))
    {
        return StreamAction::Resume;
    }
    StreamAction::Fail
}

/// The server's error code, if the server answered with one.
pub fn server_code(error: &Error) -> Option<i32> {
    let own = match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
        ErrorKind::Write(WriteFailure::WriteError(e)) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        ErrorKind::InsertMany(InsertManyError {
            write_concern_error: Some(e),
            ..
        }) => Some(e.code),
        _ => None,
    };
    own.or_else(|| {
        std::error::Error::source(error)
            .and_then(|source| source.downcast_ref::<Error>())
            .and_then(server_code)
    })
}

/// Whether retrying later may succeed: connection trouble, elections, shutdowns,
/// write-concern timeouts, our own time limits, snapshots too old
/// ([`TRANSIENT_CODES`]) and labelled errors. Anything else the server said is
/// permanent.
pub fn is_transient(error: &Error) -> bool {
    is_network_error(error)
        || error.contains_label(RETRYABLE_WRITE_LABEL)
        || error.contains_label(RESUMABLE_LABEL)
        || server_code(error).is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// Connection-level failures: the server may be back in a moment.
fn is_network_error(error: &Error) -> bool {
    matches!(
        error.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
    )
}

#[cfg(test)]
mod tests {
    use mongodb::{
        bson::{doc, from_document},
        error::CommandError,
    };

    use super::*;

    fn command_error(code: i32) -> Error {
        let command: CommandError =
            from_document(doc! { "code": code, "codeName": "X", "errmsg": "test" })
                .expect("a command error document");
        Error::from(ErrorKind::Command(command))
    }

    /// An `insert_many` error as the driver builds it from the server's reply
    /// (`writeErrors` and `writeConcernError` of the insert command's answer).
    fn insert_many_error(reply: mongodb::bson::Document) -> Error {
        let error: InsertManyError = from_document(reply).expect("an insert reply's errors");
        Error::from(ErrorKind::InsertMany(error))
    }

    /// A duplicate key, as MongoDB 7.0 answers an insert of a stored `_id`.
    fn duplicate(index: i64, t: i64) -> mongodb::bson::Document {
        doc! {
            "index": index,
            "code": 11000,
            "errmsg": format!("E11000 duplicate key error collection: ratecast.points index: _id_ dup key: {{ _id: {{ a: 1, t: {t} }} }}"),
            "keyPattern": { "_id": 1 },
            "keyValue": { "_id": { "a": 1_i64, "t": t } },
        }
    }

    /// A document validator's refusal, with the detailed `errInfo` of MongoDB ≥ 5.0.
    fn validation_failure(index: i64) -> mongodb::bson::Document {
        doc! {
            "index": index,
            "code": 121,
            "errInfo": {
                "failingDocumentId": { "a": 2_i64, "t": 1_700_000_000_i64 },
                "details": {
                    "operatorName": "$jsonSchema",
                    "schemaRulesNotSatisfied": [{
                        "operatorName": "properties",
                        "propertiesNotSatisfied": [{
                            "propertyName": "value",
                            "details": [{
                                "operatorName": "exclusiveMinimum",
                                "specifiedAs": { "exclusiveMinimum": 0 },
                                "reason": "comparison failed",
                                "consideredValue": -1.0,
                            }],
                        }],
                    }],
                },
            },
            "errmsg": "Document failed validation",
        }
    }

    /// A majority write that timed out (`w: majority, wtimeout: 10000`).
    fn write_concern_timeout() -> mongodb::bson::Document {
        doc! {
            "code": 64,
            "codeName": "WriteConcernFailed",
            "errmsg": "waiting for replication timed out",
            "errInfo": {
                "wtimeout": true,
                "writeConcern": { "w": "majority", "wtimeout": 10000, "provenance": "clientSupplied" },
            },
        }
    }

    fn settled(error: Error, attempted: usize) -> InsertOutcome {
        classify_insert_error(error, attempted).expect("settled per document")
    }

    fn retried(error: Error) -> bool {
        matches!(
            classify_insert_error(error, 5),
            Err(StoreError::Unavailable(_))
        )
    }

    #[test]
    fn duplicate_keys_alone_are_success() {
        let error = insert_many_error(doc! { "writeErrors": [duplicate(1, 11), duplicate(3, 13)] });
        let outcome = settled(error, 5);
        assert_eq!(
            outcome.report,
            InsertReport {
                inserted: 3,
                duplicates: 2,
                ..InsertReport::default()
            }
        );
        assert_eq!(outcome.rejection, None);
    }

    #[test]
    fn a_document_the_validator_refuses_is_dropped_and_the_others_count_as_stored() {
        let error = insert_many_error(doc! {
            "writeErrors": [duplicate(0, 10), validation_failure(2), validation_failure(4)],
        });
        let outcome = settled(error, 6);
        assert_eq!(
            outcome.report,
            InsertReport {
                inserted: 3,
                duplicates: 1,
                rejected: 2,
                ..InsertReport::default()
            },
            "every index not in writeErrors was stored"
        );
        assert_eq!(
            outcome.rejection,
            Some(Rejection {
                index: 2,
                code: 121,
                code_name: String::new(),
                message: "Document failed validation".into(),
            })
        );
    }

    #[test]
    fn bad_values_and_oversized_documents_are_refused_for_good() {
        for (code, name) in [
            (2, "BadValue"),
            (52, "DollarPrefixedFieldName"),
            (10334, "BSONObjectTooLarge"),
        ] {
            let error = insert_many_error(doc! {
                "writeErrors": [{ "index": 0, "code": code, "codeName": name, "errmsg": "refused" }],
            });
            let outcome = settled(error, 1);
            assert_eq!(
                (outcome.report.inserted, outcome.report.rejected),
                (0, 1),
                "{code}"
            );
            assert_eq!(
                outcome.rejection.map(|r| r.code_name),
                Some(name.to_owned())
            );
        }
    }

    #[test]
    fn a_write_concern_error_retries_the_batch_even_beside_refused_documents() {
        assert!(retried(insert_many_error(
            doc! { "writeConcernError": write_concern_timeout() }
        )));
        assert!(retried(insert_many_error(doc! {
            "writeErrors": [validation_failure(0)],
            "writeConcernError": write_concern_timeout(),
        })));
    }

    #[test]
    fn a_write_concern_no_retry_can_satisfy_settles_the_batch_as_unconfirmed() {
        for (code, name) in [
            (79, "UnknownReplWriteConcern"),
            (100, "UnsatisfiableWriteConcern"),
            (2, "BadValue"),
        ] {
            let concern = doc! {
                "code": code,
                "codeName": name,
                "errmsg": "cannot satisfy write concern",
                "errInfo": { "writeConcern": { "w": "eu", "wtimeout": 10000 } },
            };
            let outcome = classify_insert_error(
                insert_many_error(doc! {
                    "writeErrors": [duplicate(1, 10), validation_failure(2)],
                    "writeConcernError": concern,
                }),
                4,
            )
            .unwrap_or_else(|e| panic!("{code} is settled, not retried: {e}"));
            assert_eq!(
                outcome.report,
                InsertReport {
                    inserted: 2,
                    duplicates: 1,
                    rejected: 1,
                    unconfirmed: 2,
                    ..InsertReport::default()
                },
                "{code}"
            );
            assert_eq!(
                outcome.concern,
                Some(ConcernFailure {
                    code,
                    code_name: name.to_owned(),
                    message: "cannot satisfy write concern".to_owned(),
                })
            );
        }
    }

    #[test]
    fn a_retryable_write_label_retries_the_batch() {
        // Where a reply labels its write-concern error (as the Atlas proxy does);
        // the driver merges the label into the error's labels.
        let mut concern = write_concern_timeout();
        concern.insert("code", 91);
        concern.insert("codeName", "ShutdownInProgress");
        concern.insert("errorLabels", vec!["RetryableWriteError"]);
        let error = insert_many_error(doc! { "writeConcernError": concern });
        assert!(error.contains_label(RETRYABLE_WRITE_LABEL));
        assert!(retried(error));
    }

    #[test]
    fn a_write_error_with_a_transient_code_retries_the_batch() {
        for (code, name) in [
            (10107, "NotWritablePrimary"),
            (11602, "InterruptedDueToReplStateChange"),
            (189, "PrimarySteppedDown"),
            (50, "MaxTimeMSExpired"),
        ] {
            let error = insert_many_error(doc! {
                "writeErrors": [duplicate(0, 10), { "index": 1, "code": code, "codeName": name, "errmsg": "stepping down" }],
            });
            assert!(retried(error), "{code}");
        }
    }

    #[test]
    fn errors_that_are_not_per_document_fail_the_batch_by_kind() {
        let io = Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(retried(io));
        assert!(retried(command_error(11600)), "InterruptedAtShutdown");
        assert!(
            matches!(
                classify_insert_error(command_error(13), 5),
                Err(StoreError::Other(_))
            ),
            "Unauthorized is not retried by the store; the writer's backoff paces it"
        );
    }

    #[test]
    fn a_lost_resume_point_reloads_the_window() {
        assert_eq!(
            classify_stream_error(&command_error(286)),
            StreamAction::Reload
        );
        assert_eq!(
            classify_stream_error(&command_error(260)),
            StreamAction::Reload
        );
        assert_eq!(
            classify_stream_error(&command_error(280)),
            StreamAction::Reload
        );
    }

    #[test]
    fn network_trouble_and_resumable_codes_resume() {
        let io = Error::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"));
        assert_eq!(classify_stream_error(&io), StreamAction::Resume);
        for code in [43, 91, 189, 10107, 11602, 13436] {
            assert_eq!(
                classify_stream_error(&command_error(code)),
                StreamAction::Resume,
                "{code}"
            );
        }
    }

    #[test]
    fn transient_errors_are_told_from_permanent_ones() {
        let io = Error::from(std::io::Error::new(std::io::ErrorKind::TimedOut, "slow"));
        assert!(is_transient(&io));
        assert!(
            is_transient(&command_error(10107)),
            "NotWritablePrimary during an election"
        );
        assert!(is_transient(&command_error(64)), "write concern timeout");
        assert!(is_transient(&command_error(50)), "our own maxTimeMS");
        assert!(!is_transient(&command_error(13)), "Unauthorized");
        assert!(!is_transient(&command_error(85)), "IndexOptionsConflict");
    }

    #[test]
    fn a_snapshot_too_old_or_unavailable_is_transient_so_follow_is_retried() {
        for code in [SNAPSHOT_TOO_OLD, SNAPSHOT_UNAVAILABLE] {
            assert!(is_transient(&command_error(code)), "{code}");
            assert!(
                matches!(store_error(command_error(code)), StoreError::Unavailable(_)),
                "{code}"
            );
        }
        assert!(matches!(
            store_error(command_error(13)),
            StoreError::Other(_)
        ));
    }

    #[test]
    fn other_server_errors_fail() {
        for code in [13, 2, 11000] {
            assert_eq!(
                classify_stream_error(&command_error(code)),
                StreamAction::Fail,
                "{code}"
            );
        }
        assert_eq!(server_code(&command_error(286)), Some(286));
    }
}
