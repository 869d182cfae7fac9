//! What Tako's webhook intake needs from the forges other than GitHub, free
//! of I/O: `POST /hooks/gitea` (Gitea and Forgejo), `/hooks/gitlab` and
//! `/hooks/bitbucket` (Bitbucket Cloud). Each forge has its own module
//! ([`gitea`], [`gitlab`], [`bitbucket`]) for its headers and payload; all
//! end in the one normalized push the router takes, [`tako_github::Push`].
//!
//! The order is the GitHub hook's:
//!
//! 1. read at most [`MAX_PAYLOAD_BYTES`] of the body (413 beyond);
//! 2. [`Delivery::parse`] the headers (400 on error);
//! 3. [`Delivery::verify`] the signature on the raw bytes, before any
//!    parsing (401 on error);
//! 4. [`parse_event`] (400 on error, with the error's message).
//!
//! [`status`] is the other direction: the commit statuses Tako reports back
//! to GitHub, Gitea/Forgejo and GitLab (requests and retry rules).
//!
//! Nothing here reads the network, files, the environment or the clock;
//! callers pass the bytes, the header values and the time in.

pub mod bitbucket;
pub mod gitea;
pub mod gitlab;
mod headers;
mod payload;
pub mod signature;
pub mod status;

pub use headers::{Delivery, HeaderError, Headers, MAX_DELIVERY_ID_LEN};
pub use payload::{ForgeEvent, PayloadError, parse_event};
pub use signature::SignatureError;

/// The largest body accepted (GitHub's 25 MB: no forge sends more for a
/// push).
pub const MAX_PAYLOAD_BYTES: usize = tako_github::MAX_PAYLOAD_BYTES;

/// A forge whose pushes Tako takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forge {
    /// Gitea, and Forgejo (which sends Gitea's headers too).
    Gitea,
    /// GitLab (gitlab.com and self-managed).
    GitLab,
    /// Bitbucket Cloud (bitbucket.org).
    Bitbucket,
}

impl Forge {
    /// Every forge, in the order the docs list them.
    pub const ALL: [Forge; 3] = [Forge::Gitea, Forge::GitLab, Forge::Bitbucket];

    /// The forge's name for people: `Gitea/Forgejo`, `GitLab`, `Bitbucket`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Forge::Gitea => "Gitea/Forgejo",
            Forge::GitLab => "GitLab",
            Forge::Bitbucket => "Bitbucket",
        }
    }

    /// The route's last segment (`/hooks/<slug>`) and the prefix of the
    /// stored delivery ids: `gitea`, `gitlab`, `bitbucket`.
    #[must_use]
    pub fn slug(self) -> &'static str {
        match self {
            Forge::Gitea => "gitea",
            Forge::GitLab => "gitlab",
            Forge::Bitbucket => "bitbucket",
        }
    }

    /// The request headers this forge's delivery is read from (the HTTP
    /// layer collects these into [`Headers`]).
    #[must_use]
    pub fn header_names(self) -> &'static [&'static str] {
        match self {
            Forge::Gitea => gitea::HEADERS,
            Forge::GitLab => gitlab::HEADERS,
            Forge::Bitbucket => bitbucket::HEADERS,
        }
    }
}

impl std::fmt::Display for Forge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
