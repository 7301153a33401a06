//! The websocket wire protocol: client requests in ([`request`]), server frames
//! out ([`frames`]), built from the shapes of the server's messages
//! ([`messages`]), which clients read back. The exact shapes are documented in
//! `docs/protocol.md` and `docs/asyncapi.yaml`.

pub mod frames;
pub mod messages;
pub mod request;

pub use frames::{
    HISTORY_FRAME_SUFFIX, POINT_FRAME_PREFIX, POINT_FRAME_SUFFIX, assets_frame, candle_frame,
    candle_history_frame, candles_frame, candles_message, error_frame, history_frame,
    history_frame_prefix, point_frame, range_frame, unsubscribed_frame, write_point_object,
};
pub use messages::{
    AssetsMessage, CandleHistoryMessage, CandlesMessage, ErrorMessage, LiveCandle, PointsMessage,
    RangeMessage, ServerMessage, UnsubscribedMessage, WireAsset, WireCandle, WirePoint,
};
pub use request::{
    ACTIONS, ClientRequest, ErrorCode, Follow, MAX_HISTORY_SPAN_SECS, RequestError, parse_request,
};
