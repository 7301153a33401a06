//! The live feed of the Mongo store: one change stream on `points`, resumed from
//! its last token after transient errors.
//!
//! The resume token is kept after every event and every empty batch (the
//! post-batch token), so a resume never replays more than the last batch. A
//! resumable error ends the current call with [`FeedError::Interrupted`]; the next
//! call waits a backoff, reopens from the token and reports
//! [`FeedEvent::Resumed`]. The backoff starts over after
//! every successful (re)open, so one incident's delays never carry into the next.
//! A token that left the oplog (286, 260, 280) ends the feed with
//! [`FeedError::Reset`] and the reader reloads its window. Either way a client
//! sees no duplicate and no reordering: the reader refuses a second it already
//! holds, pushes live only points newer than its newest, and puts a late one
//! only into its window, in time order.

use std::collections::HashSet;

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
    /// How the follow that created this feed chose the stream's start.
    start: StreamStart,
}

/// The pacing of reopen attempts: a backoff that grows while reopening fails and
/// starts over once a stream is open again.
#[derive(Debug, Default)]
struct Reopen {
    backoff: Backoff,
}

impl Reopen {
    /// How long to wait before the next reopen attempt (counted as a failure
    /// until [`opened`](Self::opened) says otherwise).
    fn delay(&mut self) -> std::time::Duration {
        self.backoff.next_delay()
    }

    /// A stream is open again: the next incident starts from the first delay.
    fn opened(&mut self) {
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
        loop {
            let Some(stream) = self.stream.as_mut() else {
                let Some(token) = self.token.clone() else {
                    // A stream opened "from now" would silently skip what happened
                    // since the last event: reload the window instead.
                    return Err(FeedError::Reset(StoreError::Other(
                        "no resume token to continue from".into(),
                    )));
                };
                tokio::time::sleep(self.reopen.delay()).await;
                match self.store.resume_stream(token).await {
                    Ok(stream) => {
                        info!("change stream resumed from its last token");
                        self.reopen.opened();
                        self.stream = Some(stream);
                        // The reader may say it follows the store again now,
                        // without waiting for a point.
                        return Ok(FeedEvent::Resumed);
                    }
                    Err(error) => return Err(self.fail(error)),
                }
            };
            match stream.next_if_any().await {
                Ok(Some(event)) => {
                    // Never replace a good token with none.
                    if let Some(token) = stream.resume_token() {
                        self.token = Some(token);
                    }
                    if let Some(point) = self.point_of(event) {
                        return Ok(FeedEvent::Point(point));
                    }
                }
                Ok(None) => {
                    if let Some(token) = stream.resume_token() {
                        self.token = Some(token);
                    }
                    if !stream.is_alive() {
                        self.stream = None;
                    }
                }
                Err(error) => return Err(self.fail(error)),
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
        let delays: Vec<u128> = (0..4).map(|_| reopen.delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800]);
    }

    #[test]
    fn a_successful_reopen_starts_the_next_incident_from_the_first_delay() {
        let mut reopen = Reopen::default();
        for _ in 0..20 {
            reopen.delay();
        }
        assert_eq!(reopen.delay(), MAX_DELAY);
        reopen.opened();
        assert_eq!(
            reopen.delay(),
            FIRST_DELAY,
            "no event has arrived yet; the open alone resets the pacing"
        );
    }
}
