//! Classification of driver errors into what the store does about them.
//!
//! Inserts: duplicate-key write errors (11000) alone mean another fetcher stored
//! those seconds first, which is success. Change streams: a lost resume point
//! (286 ChangeStreamHistoryLost, 260 InvalidResumeToken, 280 ChangeStreamFatalError)
//! means reload the window; network trouble and the server's resumable codes mean
//! resume from the last token; anything else is reported as a store error.

use mongodb::error::{Error, ErrorKind, InsertManyError, WriteFailure};
use ratecast_core::{InsertReport, StoreError};

/// The server's duplicate-key code.
pub const DUPLICATE_KEY: i32 = 11000;
/// Resume point no longer in the oplog.
pub const CHANGE_STREAM_HISTORY_LOST: i32 = 286;
/// Resume token unusable (e.g. the pipeline changed).
pub const INVALID_RESUME_TOKEN: i32 = 260;
/// The stream cannot continue (e.g. the collection was dropped).
pub const CHANGE_STREAM_FATAL: i32 = 280;

/// Server codes after which a change stream can resume (the change-streams
/// specification's list, for servers that do not label errors).
const RESUMABLE_CODES: &[i32] = &[
    6, 7, 43, 63, 89, 91, 133, 150, 189, 234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436,
];

/// The error label servers ≥ 4.4 put on resumable change-stream errors.
const RESUMABLE_LABEL: &str = "ResumableChangeStreamError";

/// The outcome of an `insert_many(ordered: false)` that returned an error.
pub fn classify_insert_error(error: Error, attempted: usize) -> Result<InsertReport, StoreError> {
    if let ErrorKind::InsertMany(InsertManyError {
        write_errors: Some(write_errors),
        write_concern_error: None,
        ..
    }) = error.kind.as_ref()
        && write_errors.iter().all(|e| e.code == DUPLICATE_KEY)
    {
        let duplicates = write_errors.len().min(attempted);
        return Ok(InsertReport {
            inserted: attempted - duplicates,
            duplicates,
            ..InsertReport::default()
        });
    }
    Err(store_error(error))
}

/// Wraps a driver error: connection-level trouble is `Unavailable`, the rest `Other`.
pub fn store_error(error: Error) -> StoreError {
    if is_network_error(&error) {
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
/// write-concern timeouts. Anything else the server said is permanent.
pub fn is_transient(error: &Error) -> bool {
    const WRITE_CONCERN_FAILED: i32 = 64;
    is_network_error(error)
        || error.contains_label("RetryableWriteError")
        || error.contains_label(RESUMABLE_LABEL)
        || server_code(error)
            .is_some_and(|c| c == WRITE_CONCERN_FAILED || RESUMABLE_CODES.contains(&c))
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

    fn insert_error(codes: &[i32], write_concern: bool) -> Error {
        let write_errors: Vec<_> = codes
            .iter()
            .enumerate()
            .map(|(i, code)| doc! { "index": i as i64, "code": code, "errmsg": "e" })
            .collect();
        let mut document = doc! { "writeErrors": write_errors };
        if write_concern {
            document.insert(
                "writeConcernError",
                doc! { "code": 64, "codeName": "WriteConcernFailed", "errmsg": "wc" },
            );
        }
        let error: InsertManyError =
            from_document(document).expect("an insert-many error document");
        Error::from(ErrorKind::InsertMany(error))
    }

    #[test]
    fn duplicate_keys_alone_are_success() {
        let report =
            classify_insert_error(insert_error(&[11000, 11000], false), 5).expect("success");
        assert_eq!((report.inserted, report.duplicates), (3, 2));
    }

    #[test]
    fn any_other_write_error_is_an_error() {
        assert!(classify_insert_error(insert_error(&[11000, 121], false), 5).is_err());
        assert!(classify_insert_error(insert_error(&[11000], true), 5).is_err());
        assert!(classify_insert_error(command_error(13), 5).is_err());
        let io = Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(matches!(
            classify_insert_error(io, 5),
            Err(StoreError::Unavailable(_))
        ));
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
        assert!(!is_transient(&command_error(13)), "Unauthorized");
        assert!(!is_transient(&command_error(85)), "IndexOptionsConflict");
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
