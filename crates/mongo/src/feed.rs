//! The live feed of the Mongo store: one change stream on `points`, resumed from
//! its last token after transient errors.
//!
//! The resume token is kept after every event and every empty batch (the
//! post-batch token), so a resume never replays more than the last batch. A
//! resumable error ends the current call with [`FeedError::Interrupted`]; the next
//! call waits a backoff, reopens from the token and reports
//! [`FeedEvent::Resumed`] once the reopened stream has answered a `getMore`: a
//! stream that opens but fails at once has not resumed, so readiness does not
//! flap with it. The backoff starts over only once a stream delivered an event or
//! stayed open for [`STAYED_OPEN`], so a stream that reopens and fails at once
//! keeps backing off (instead of cycling every 100 ms), while one incident's
//! delays never carry into the next.
//! A token that left the oplog (286, 260, 280) ends the feed with
//! [`FeedError::Reset`] and the reader reloads its window. Either way a client
//! sees no duplicate and no reordering: the reader refuses a second it already
//! holds, pushes live only points newer than its newest, and puts a late one
//! only into its window, in time order.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use mongodb::{
    bson::Document,
    change_stream::{ChangeStream, event::ChangeStreamEvent, event::ResumeToken},
};
use ratecast_core::{
    LiveFeed, Point, StoreError,
    retry::Backoff,
    store::{FeedError, FeedEvent},
};
use tracing::{info, warn};

use crate::{
    MongoStore, StreamStart,
    documents::parse_point,
    errors::{StreamAction, classify_stream_error, store_error},
};

pub struct MongoFeed {
    store: MongoStore,
    /// `None` between a resumable error and the reopen.
    stream: Option<ChangeStream<ChangeStreamEvent<Document>>>,
    /// The last token seen, where a reopened stream continues.
    token: Option<ResumeToken>,
    /// Points the snapshot already held; each is dropped once if the stream
    /// repeats it (it can only overlap the snapshot at the very start).
    held: HashSet<(u32, i64)>,
    /// Paces reopen attempts while they fail.
    reopen: Reopen,
    /// A stream was reopened and has not answered a `getMore` yet: the first
    /// answer reports [`FeedEvent::Resumed`].
    confirming: bool,
    /// A point that arrived with the answer that confirmed a resume, returned by
    /// the next call.
    pending: Option<Point>,
    /// How the follow that created this feed chose the stream's start.
    start: StreamStart,
}

/// How long a reopened stream must stay open, if it delivers no event, before the
/// next incident starts again from the first delay.
pub const STAYED_OPEN: Duration = Duration::from_secs(10);

/// The pacing of reopen attempts: a backoff that grows while reopening fails, and
/// while reopened streams fail before proving themselves; it starts over once a
/// stream delivered an event or stayed open for [`STAYED_OPEN`].
#[derive(Debug, Default)]
struct Reopen {
    backoff: Backoff,
    /// When the current stream was reopened, until it proves itself.
    opened_at: Option<Instant>,
}

impl Reopen {
    /// How long to wait at `now` before the next reopen attempt.
    fn delay(&mut self, now: Instant) -> Duration {
        if let Some(opened) = self.opened_at.take()
            && now.saturating_duration_since(opened) >= STAYED_OPEN
        {
            self.backoff.reset();
        }
        self.backoff.next_delay()
    }

    /// A stream was reopened at `now`; it has proven nothing yet.
    fn opened(&mut self, now: Instant) {
        self.opened_at = Some(now);
    }

    /// The stream delivered an event: the next incident starts from the first
    /// delay.
    fn delivered(&mut self) {
        self.opened_at = None;
        self.backoff.reset();
    }
}

impl MongoFeed {
    pub(crate) fn new(
        store: MongoStore,
        stream: ChangeStream<ChangeStreamEvent<Document>>,
        held: HashSet<(u32, i64)>,
        start: StreamStart,
    ) -> Self {
        Self {
            token: stream.resume_token(),
            store,
            stream: Some(stream),
            held,
            reopen: Reopen::default(),
            confirming: false,
            pending: None,
            start,
        }
    }

    /// How the stream's start was chosen (a snapshot time on MongoDB 5.0 and
    /// later); the integration tests check it.
    pub fn start(&self) -> StreamStart {
        self.start
    }

    fn fail(&mut self, error: mongodb::error::Error) -> FeedError {
        self.stream = None;
        match classify_stream_error(&error) {
            StreamAction::Resume => FeedError::Interrupted(store_error(error)),
            StreamAction::Reload => {
                warn!(%error, "change stream cannot resume from its token; the window will be reloaded");
                FeedError::Reset(store_error(error))
            }
            StreamAction::Fail => FeedError::Store(store_error(error)),
        }
    }

    /// Turns an insert event into a point, unless the snapshot held it already.
    fn point_of(&mut self, event: ChangeStreamEvent<Document>) -> Option<Point> {
        let document = event.full_document?;
        match parse_point(&document) {
            Ok(point) if self.held.remove(&(point.asset_id.0, point.time)) => None,
            Ok(point) => Some(point),
            Err(error) => {
                warn!(%error, "skipping an inserted document that is not a point");
                None
            }
        }
    }
}

impl LiveFeed for MongoFeed {
    async fn next(&mut self) -> Result<FeedEvent, FeedError> {
        if let Some(point) = self.pending.take() {
            return Ok(FeedEvent::Point(point));
        }
        loop {
            // The database's clock, which points are judged by, is read again
            // while following (best effort, at most a minute apart).
            self.store.refresh_clock().await;
            let Some(stream) = self.stream.as_mut() else {
                let Some(token) = self.token.clone() else {
                    // A stream opened "from now" would silently skip what happened
                    // since the last event: reload the window instead.
                    return Err(FeedError::Reset(StoreError::Other(
                        "no resume token to continue from".into(),
                    )));
                };
                tokio::time::sleep(self.reopen.delay(Instant::now())).await;
                match self.store.resume_stream(token).await {
                    Ok(stream) => {
                        self.reopen.opened(Instant::now());
                        self.stream = Some(stream);
                        self.confirming = true;
                        continue;
                    }
                    Err(error) => return Err(self.fail(error)),
                }
            };
            let point = match stream.next_if_any().await {
                Ok(Some(event)) => {
                    // Never replace a good token with none.
                    if let Some(token) = stream.resume_token() {
                        self.token = Some(token);
                    }
                    self.reopen.delivered();
                    self.point_of(event)
                }
                Ok(None) => {
                    if let Some(token) = stream.resume_token() {
                        self.token = Some(token);
                    }
                    if !stream.is_alive() {
                        self.stream = None;
                    }
                    None
                }
                Err(error) => return Err(self.fail(error)),
            };
            if std::mem::take(&mut self.confirming) {
                // The reopened stream answered: the reader follows the store
                // again, and may say so without waiting for a point.
                info!("change stream resumed from its last token");
                self.pending = point;
                return Ok(FeedEvent::Resumed);
            }
            if let Some(point) = point {
                return Ok(FeedEvent::Point(point));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ratecast_core::retry::{FIRST_DELAY, MAX_DELAY};

    use super::*;

    #[test]
    fn reopen_delays_grow_while_reopening_fails() {
        let mut reopen = Reopen::default();
        let now = Instant::now();
        let delays: Vec<u128> = (0..4).map(|_| reopen.delay(now).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
    }

    #[test]
    fn a_stream_that_reopens_and_fails_at_once_keeps_backing_off() {
        let mut reopen = Reopen::default();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            let delay = reopen.delay(now);
            delays.push(delay.as_millis());
            now += delay;
            reopen.opened(now);
            now += Duration::from_millis(5); // the first getMore fails
        }
        assert_eq!(
            delays,
            vec![100, 200, 400, 800, 1600, 3200, 6400, MAX_DELAY.as_millis()]
        );
    }

    #[test]
    fn an_event_or_a_stream_that_stayed_open_starts_the_next_incident_afresh() {
        let mut reopen = Reopen::default();
        let now = Instant::now();
        for _ in 0..20 {
            reopen.delay(now);
        }
        reopen.opened(now);
        reopen.delivered();
        assert_eq!(reopen.delay(now), FIRST_DELAY, "an event arrived");

        for _ in 0..20 {
            reopen.delay(now);
        }
        reopen.opened(now);
        assert_eq!(
            reopen.delay(now + STAYED_OPEN),
            FIRST_DELAY,
            "no event, but the stream stayed open long enough"
        );
        reopen.opened(now);
        assert_eq!(
            reopen.delay(now + STAYED_OPEN - Duration::from_millis(1)),
            FIRST_DELAY * 2,
            "open too briefly: the pacing goes on"
        );
    }
}
