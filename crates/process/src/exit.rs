//! How a binary's run becomes its exit code.
//!
//! 0 for a clean stop (a signal included), 1 for a run that failed (the error and
//! its causes are logged), 2 for a configuration error (printed by
//! [`parse_or_exit`](crate::parse_or_exit) before logging is set up).

use std::process::ExitCode;

/// Logs a failed run with its cause chain and maps it to exit code 1.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
