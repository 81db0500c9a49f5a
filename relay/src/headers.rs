//! The headers of every message the relay publishes, which consumers read
//! without parsing the payload. `Nats-Msg-Id` is JetStream's own: a second
//! publish with the same id within the stream's duplicate window is stored
//! once.

/// The host the event came from (unescaped).
pub const HOST: &str = "Virevent-Host";
/// The event's type.
pub const TYPE: &str = "Virevent-Type";
/// The event's seq on its connection (0 for `events-lost`).
pub const SEQ: &str = "Virevent-Seq";
/// The event's timestamp, decimal seconds since the epoch as in its XML.
pub const TIMESTAMP: &str = "Virevent-Timestamp";
/// The URI the relay watched.
pub const URI: &str = "Virevent-Uri";
/// `xml` or `json`: what the payload is.
pub const FORMAT: &str = "Virevent-Format";
/// JetStream's deduplication id: `HOST/START/SEQ`, START being the
/// microseconds since the epoch when the relay opened the connection.
pub const MSG_ID: &str = "Nats-Msg-Id";
