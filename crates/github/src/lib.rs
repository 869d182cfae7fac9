//! What Tako's webhook intake (`POST /hooks/github`) needs from GitHub, free
//! of I/O: checking the `X-Hub-Signature-256` HMAC over the raw body,
//! validating the delivery headers, and turning a body into a typed [`Event`]
//! ([`Push`], ping, or an ignored event with its reason).
//!
//! The intended order, which the server follows:
//!
//! 1. read at most [`MAX_PAYLOAD_BYTES`] of the body (413 beyond);
//! 2. [`DeliveryHeaders::parse`] the headers (400 on error);
//! 3. [`verify_signature`] on the raw bytes, before any parsing (401 on error);
//! 4. [`parse_event`] (400 on error, with the error's message).
//!
//! Nothing here reads the network, files, the environment or the clock;
//! callers pass the bytes and header values in.

mod headers;
mod payload;
mod push;
mod signature;

pub use headers::{
    DELIVERY_HEADER, DeliveryHeaders, EVENT_HEADER, HeaderError, MAX_DELIVERY_ID_LEN,
    SIGNATURE_HEADER,
};
pub use payload::{Event, PayloadError, parse_event, payload_json};
pub use push::{Commit, CommitAuthor, Owner, Push, Pusher, Repository, Sender, ZERO_SHA};
pub use signature::{SignatureError, sign, verify_signature};

/// GitHub's own cap on a webhook payload (25 MB): GitHub never sends more, so
/// the intake answers 413 to a larger body without reading all of it.
pub const MAX_PAYLOAD_BYTES: usize = 25 * 1024 * 1024;
