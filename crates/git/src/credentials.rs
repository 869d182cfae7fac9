//! [`Credentials`]: an HTTPS token for private repositories, and how it
//! reaches git without being written down.
//!
//! The token travels to git as an `http.<origin>.extraHeader` set through
//! git's environment-based configuration (`GIT_CONFIG_COUNT`,
//! `GIT_CONFIG_KEY_0`, `GIT_CONFIG_VALUE_0`): `Authorization: Basic
//! base64(username:token)`, scoped to the repository's `scheme://host:port/`.
//! So it is
//!
//! - never on a command line (the process list shows arguments to everyone);
//! - never in a configuration file (`config` of a mirror or a checkout);
//! - never in an error: git's messages are masked ([`Credentials::masker`])
//!   before they become a [`crate::GitError`];
//! - only in the environment of the git processes we start, which only the
//!   same user (and root) can read.

use std::fmt;

use base64::Engine as _;
use tako_core::mask::Masker;

/// The user name GitHub expects with an installation or personal token.
pub const DEFAULT_USERNAME: &str = "x-access-token";

/// An HTTPS token (and the user name sent with it).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name of HTTP Basic authentication ([`DEFAULT_USERNAME`]
    /// unless a host wants another, e.g. `oauth2` for GitLab).
    pub username: String,
    /// The token, sent as the password.
    pub token: String,
}

impl Credentials {
    /// A token sent with [`DEFAULT_USERNAME`].
    pub fn token(token: impl Into<String>) -> Credentials {
        Credentials {
            username: DEFAULT_USERNAME.to_owned(),
            token: token.into(),
        }
    }

    /// The value of the `Authorization` header.
    fn header_value(&self) -> String {
        let pair = format!("{}:{}", self.username, self.token);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// A masker hiding the token and the header built from it (in all the
    /// forms [`Masker`] knows).
    pub fn masker(&self) -> Masker {
        let header = self.header_value();
        let mut masker = Masker::new();
        masker.add(&self.token);
        masker.add(&header);
        if let Some(encoded) = header.strip_prefix("Basic ") {
            masker.add(encoded);
        }
        masker
    }

    /// The environment variables that hand the token to git for requests to
    /// `origin` (`scheme://host[:port]/`).
    pub(crate) fn config_env(&self, origin: &str) -> Vec<(String, String)> {
        vec![
            ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
            (
                "GIT_CONFIG_KEY_0".to_owned(),
                format!("http.{origin}.extraHeader"),
            ),
            (
                "GIT_CONFIG_VALUE_0".to_owned(),
                format!("Authorization: {}", self.header_value()),
            ),
        ]
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("token", &"********")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_token() {
        let credentials = Credentials::token("ghs_supersecret");
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
        assert!(debug.contains("x-access-token"), "{debug}");
    }

    #[test]
    fn masker_hides_token_and_header() {
        let credentials = Credentials::token("ghs_supersecret");
        let env = credentials.config_env("https://github.com/");
        let header = &env[2].1;
        let text = format!("token ghs_supersecret, header {header}");
        let masked = credentials.masker().mask(&text).into_owned();
        assert!(!masked.contains("supersecret"), "{masked}");
        let encoded = header.trim_start_matches("Authorization: Basic ");
        assert!(!masked.contains(encoded), "{masked}");
    }

    #[test]
    fn header_is_basic_username_and_token() {
        let env = Credentials::token("abc").config_env("https://h/");
        assert_eq!(env[1].1, "http.https://h/.extraHeader");
        // base64("x-access-token:abc")
        assert_eq!(env[2].1, "Authorization: Basic eC1hY2Nlc3MtdG9rZW46YWJj");
    }
}
