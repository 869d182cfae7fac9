//! [`RemoteUrl`]: a repository URL we are willing to hand to git.
//!
//! Accepted: `https://`, `http://`, `file://` and absolute local paths.
//! Refused: everything else (`ssh://`, `ext::`, scp-like `host:path`, a
//! leading `-` that git would read as an option), control characters, and
//! URLs carrying `user:password@` (credentials travel separately, as
//! [`crate::Credentials`], so that they are never stored in a mirror's
//! configuration or shown in an error).

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::GitError;

/// The transport a [`RemoteUrl`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `https://`
    Https,
    /// `http://`
    Http,
    /// `file://` or an absolute path.
    File,
}

/// A validated repository URL without embedded credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    url: String,
    scheme: Scheme,
}

impl RemoteUrl {
    /// Validates `url` (surrounding whitespace and trailing slashes are
    /// dropped).
    pub fn parse(url: &str) -> Result<RemoteUrl, GitError> {
        let trimmed = url.trim();
        let trimmed = if trimmed.len() > 1 {
            trimmed.trim_end_matches('/')
        } else {
            trimmed
        };
        let invalid = |reason| GitError::InvalidUrl {
            url: redact(trimmed),
            reason,
        };
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(invalid("it contains control characters"));
        }
        let lower = trimmed.to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = lower.strip_prefix("file://") {
            (Scheme::File, rest)
        } else if trimmed.starts_with('/') {
            (Scheme::File, "")
        } else {
            return Err(invalid(
                "only https://, http://, file:// and absolute paths are supported",
            ));
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the url are not accepted; pass the token separately",
            ));
        }
        if matches!(scheme, Scheme::Https | Scheme::Http) && authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        Ok(RemoteUrl {
            url: trimmed.to_owned(),
            scheme,
        })
    }

    /// The URL as given to git.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// Its transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `scheme://host[:port]/` for HTTP(S) URLs: the scope credentials are
    /// sent to; `None` for local repositories.
    pub fn origin(&self) -> Option<String> {
        let prefix_len = match self.scheme {
            Scheme::Https => "https://".len(),
            Scheme::Http => "http://".len(),
            Scheme::File => return None,
        };
        let rest = &self.url[prefix_len..];
        let authority = rest.split('/').next().unwrap_or("");
        Some(format!("{}{authority}/", &self.url[..prefix_len]))
    }

    /// A directory name for this repository's mirror: a readable, sanitized
    /// part (host and path) and 16 hex digits of the URL's SHA-256, so two
    /// URLs never share a mirror and no name escapes the mirrors' root.
    pub fn mirror_name(&self) -> String {
        let without_scheme = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let readable: String = without_scheme
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let readable = readable.trim_matches(|c| c == '-' || c == '.');
        let readable: String = readable
            .chars()
            .rev()
            .take(48)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let readable = readable.trim_matches(|c| c == '-' || c == '.');
        let digest = Sha256::digest(self.url.as_bytes());
        let hash = hex::encode(&digest[..8]);
        if readable.is_empty() {
            hash
        } else {
            format!("{readable}-{hash}")
        }
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteUrl({:?})", self.url)
    }
}

/// `url` with any `user:password@` replaced by `***@`, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://***@{}{path}", &authority[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_file_and_paths() {
        for url in [
            "https://github.com/o/r.git",
            "http://127.0.0.1:8080/r",
            "file:///srv/git/r.git",
            "/srv/git/r.git",
        ] {
            assert!(RemoteUrl::parse(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn refuses_other_transports_and_options() {
        for url in [
            "ssh://git@github.com/o/r",
            "git@github.com:o/r.git",
            "ext::sh -c touch% /tmp/x",
            "-uhttps://x",
            "relative/path",
            "",
            "https://",
            "https://host/a\nb",
        ] {
            assert!(RemoteUrl::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn refuses_credentials_without_showing_them() {
        let error = RemoteUrl::parse("https://user:s3cr3t-pass@github.com/o/r.git")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("credentials"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(error.contains("***@github.com/o/r.git"), "{error}");
    }

    #[test]
    fn origin_is_scheme_and_authority() {
        let url = RemoteUrl::parse("https://example.com:8443/group/repo.git/").ok();
        assert_eq!(
            url.and_then(|u| u.origin()).as_deref(),
            Some("https://example.com:8443/")
        );
        let local = RemoteUrl::parse("/srv/r.git").ok();
        assert_eq!(local.and_then(|u| u.origin()), None);
    }

    #[test]
    fn mirror_names_are_safe_readable_and_distinct() {
        let name = |url: &str| {
            RemoteUrl::parse(url)
                .map(|u| u.mirror_name())
                .unwrap_or_default()
        };
        let a = name("https://github.com/owner/repo.git");
        assert!(a.starts_with("github.com-owner-repo.git-"), "{a}");
        assert_ne!(a, name("https://github.com/owner/repo"));
        assert_eq!(a, name("https://github.com/owner/repo.git/"));
        let odd = name("file:///../../etc/..");
        assert!(!odd.contains('/') && !odd.starts_with('.'), "{odd}");
        assert!(name(&format!("https://h/{}", "x".repeat(500))).len() < 70);
    }
}
