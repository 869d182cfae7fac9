//! Which server URLs an agent talks to: HTTPS, or plain HTTP only to a
//! loopback host (or when the operator says `--insecure-http`), since an
//! agent's credential and its jobs' variables travel on that connection.

/// Why a server URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `http://` or `https://`.
    #[error(
        "the server URL {url:?} must start with https:// (or http:// for a server on this machine)"
    )]
    Scheme {
        /// The URL given.
        url: String,
    },
    /// No host after the scheme.
    #[error("the server URL {url:?} names no host")]
    NoHost {
        /// The URL given.
        url: String,
    },
    /// Plain HTTP to another machine.
    #[error(
        "the server URL {url:?} is plain http:// to another machine, which would send the agent's credential and its jobs' variables in the clear: use https://, or pass --insecure-http if the network between them is trusted"
    )]
    Insecure {
        /// The URL given.
        url: String,
    },
}

/// A checked server URL: its base, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    base: String,
    https: bool,
}

impl ServerUrl {
    /// Checks `url`; `insecure_http` allows `http://` to any host.
    pub fn parse(url: &str, insecure_http: bool) -> Result<ServerUrl, UrlError> {
        let trimmed = url.trim();
        let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(trimmed, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "http://") {
            (false, rest)
        } else {
            return Err(UrlError::Scheme {
                url: url.to_owned(),
            });
        };
        let rest = rest.trim_end_matches('/');
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host_of(authority);
        if host.is_empty() {
            return Err(UrlError::NoHost {
                url: url.to_owned(),
            });
        }
        if !https && !insecure_http && !is_loopback(host) {
            return Err(UrlError::Insecure {
                url: url.to_owned(),
            });
        }
        let scheme = if https { "https://" } else { "http://" };
        Ok(ServerUrl {
            base: format!("{scheme}{rest}"),
            https,
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether it is HTTPS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// `path` (starting with `/`) on this server.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// The host of `user@host:port`, `[::1]:port` or `host`.
fn host_of(authority: &str) -> &str {
    let without_user = authority.rsplit('@').next().unwrap_or(authority);
    if let Some(rest) = without_user.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    without_user.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_only_for_this_machine_unless_asked() {
        for ok in [
            "https://tako.example.com",
            "https://tako.example.com:8443/",
            "http://127.0.0.1:8080",
            "http://127.8.9.10:1",
            "http://localhost:8080/",
            "http://[::1]:8080",
            "HTTPS://Tako.Example.com",
        ] {
            assert!(ServerUrl::parse(ok, false).is_ok(), "{ok}");
        }
        for insecure in [
            "http://tako.example.com",
            "http://192.168.1.10:8080",
            "http://localhost.evil.com",
            "http://127.0.0.1@evil.com",
        ] {
            assert!(
                matches!(
                    ServerUrl::parse(insecure, false),
                    Err(UrlError::Insecure { .. })
                ),
                "{insecure}"
            );
            assert!(ServerUrl::parse(insecure, true).is_ok(), "{insecure}");
        }
        assert!(matches!(
            ServerUrl::parse("ftp://x", false),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            ServerUrl::parse("https://", false),
            Err(UrlError::NoHost { .. })
        ));
        let url = ServerUrl::parse("https://tako.example.com/", false).unwrap();
        assert_eq!(
            url.join("/api/v1/agent/jobs/next"),
            "https://tako.example.com/api/v1/agent/jobs/next"
        );
        assert!(url.is_https());
    }
}
