//! A service's start-up loop: keep trying its set-up (MongoDB's, today) while the
//! failure is transient (the database is still starting, electing or
//! unreachable), give up at once on a permanent one (a bad URI, a conflicting
//! asset list), stop on shutdown. Every service's start-up goes through here.

use std::future::Future;

use ratecast_core::retry::Backoff;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::ErrorChain;

/// Runs `attempt` until it succeeds (`Ok(Some)`), fails permanently (`Err`), or
/// `shutdown` fires (`Ok(None)`). Each transient failure is logged with its
/// cause chain and retried after the project's [`Backoff`].
pub async fn retry_transient<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<Option<T>, E>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new();
    loop {
        let error = tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            result = attempt() => match result {
                Ok(value) => return Ok(Some(value)),
                Err(error) if !is_transient(&error) => return Err(error),
                Err(error) => error,
            },
        };
        let delay = backoff.next_delay();
        warn!(error = %ErrorChain(&error), retry_in = ?delay, "{what} failed; retrying");
        tokio::select! {
            () = shutdown.cancelled() => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicU32, Ordering},
        time::Duration,
    };

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Failure(&'static str);

    fn transient(error: &Failure) -> bool {
        error.0 == "transient"
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff_until_success() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = retry_transient("test", &CancellationToken::new(), transient, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(Failure("transient")),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(result.expect("no permanent error"), Some(3));
        // 100 + 200 + 400 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_ends_at_once() {
        let result: Result<Option<()>, _> =
            retry_transient("test", &CancellationToken::new(), transient, || async {
                Err(Failure("permanent"))
            })
            .await;
        assert_eq!(result.expect_err("permanent").0, "permanent");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_retries_without_an_error() {
        let shutdown = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let result: Result<Option<()>, _> = retry_transient("test", &shutdown, transient, || {
            if calls.fetch_add(1, Ordering::SeqCst) == 3 {
                shutdown.cancel();
            }
            async { Err(Failure("transient")) }
        })
        .await;
        assert!(matches!(result, Ok(None)));
    }
}
