//! Talking to the feed: is this id and version there, and the push.
//!
//! A feed URL ending in `index.json` is a NuGet v3 service index: pushes go
//! to its `PackagePublish/2.0.0` resource; existence is read from
//! `PackageBaseAddress/3.0.0` (`{base}/{id}/index.json`, lowercase), or
//! from its `LegacyGallery` (a v2 feed) when it has none. Any other URL is a
//! v2 feed: `GET {feed}/Packages(Id='X',Version='Y')`, then
//! `FindPackagesById()?id='X'` (following `next` links), both Atom. The push
//! URL of a v2 feed is `{feed}/package/` (`{feed}api/v2/package/` when the
//! feed has no path, as NuGet's `PackageUpdateResource` does).
//!
//! The push is one `PUT` of a `multipart/form-data` body (part `package`,
//! `package.nupkg`) with `X-NuGet-ApiKey` and a Content-Length. The key is
//! only ever sent in that header, never in a URL, and redirects are not
//! followed for the push, so it cannot travel to another host.

use std::time::Duration;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use reqwest::{Client, StatusCode, Url, redirect};

use super::nuspec::normalize_version;

/// Why the feed could not be asked, or did not take the package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The feed URL is not an http(s) URL.
    #[error("Feed {0:?} is not an http or https URL")]
    BadUrl(String),
    /// The request did not complete.
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport's reason.
        message: String,
    },
    /// An unexpected status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The v3 service index cannot be used.
    #[error("service index {url}: {message}")]
    ServiceIndex {
        /// The index's URL.
        url: String,
        /// What is missing or wrong.
        message: String,
    },
    /// 401/403 on the push.
    #[error("the feed refused the API key (HTTP {status} from {url}): {body}")]
    Refused {
        /// The push URL.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// 409 (or minchoc's 400 "already been uploaded") on the push.
    #[error("already exists on the feed (HTTP {status} from {url}): {body}")]
    Duplicate {
        /// The push URL.
        url: String,
        /// 409 or 400.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

/// How the feed answers "is it there?".
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lookup {
    /// A v2 (OData/Atom) feed at this base URL (no trailing slash).
    V2(String),
    /// A v3 flat container at this base URL (no trailing slash).
    FlatContainer(String),
}

/// A feed, resolved: where to look and where to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    lookup: Lookup,
    push_url: Url,
}

const USER_AGENT: &str = concat!("Tako/", env!("CARGO_PKG_VERSION"), " (publish-psmodule)");

/// The HTTP clients: one for lookups (follows redirects), one for the push
/// (does not: the API key stays with the host it was meant for).
#[derive(Debug, Clone)]
pub struct Clients {
    lookup: Client,
    push: Client,
}

impl Clients {
    /// Builds both clients.
    pub fn new() -> Result<Clients, FeedError> {
        let build = |policy, timeout| {
            Client::builder()
                .user_agent(USER_AGENT)
                .redirect(policy)
                .connect_timeout(Duration::from_secs(30))
                .timeout(timeout)
                .build()
                .map_err(|e| FeedError::Unreachable {
                    url: String::new(),
                    message: format!("cannot set up an HTTP client: {e}"),
                })
        };
        Ok(Clients {
            lookup: build(redirect::Policy::limited(5), Duration::from_secs(100))?,
            push: build(redirect::Policy::none(), Duration::from_secs(600))?,
        })
    }
}

fn parse_url(text: &str) -> Result<Url, FeedError> {
    let url = Url::parse(text.trim()).map_err(|_| FeedError::BadUrl(text.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FeedError::BadUrl(text.to_owned()));
    }
    Ok(url)
}

/// The v2 lookup base and push URL of a v2 feed URL.
fn v2(url: &Url) -> Result<Feed, FeedError> {
    let text = url.as_str().trim_end_matches('/');
    let (base, push) = if url.path().trim_matches('/').is_empty() {
        (text.to_owned(), format!("{text}/api/v2/package/"))
    } else if let Some(base) = text.strip_suffix("/package") {
        (base.to_owned(), format!("{text}/"))
    } else {
        (text.to_owned(), format!("{text}/package/"))
    };
    Ok(Feed {
        lookup: Lookup::V2(base),
        push_url: parse_url(&push)?,
    })
}

async fn get(client: &Client, url: &str) -> Result<(StatusCode, String), FeedError> {
    let unreachable = |e: reqwest::Error| FeedError::Unreachable {
        url: url.to_owned(),
        message: error_chain(&e),
    };
    let response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let body = response.text().await.map_err(unreachable)?;
    Ok((status, body))
}

/// The error and its sources, `: `-joined (reqwest's own message is terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    let mut out: String = trimmed.chars().take(300).collect();
    if out.len() < trimmed.len() {
        out.push_str("...");
    }
    out.replace(['\r', '\n'], " ")
}

impl Feed {
    /// Resolves `feed_url`: reads the v3 service index when it ends in
    /// `index.json`.
    pub async fn discover(clients: &Clients, feed_url: &str) -> Result<Feed, FeedError> {
        let url = parse_url(feed_url)?;
        if !url.path().ends_with("index.json") {
            return v2(&url);
        }
        let (status, body) = get(&clients.lookup, url.as_str()).await?;
        if status != StatusCode::OK {
            return Err(FeedError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        let index_error = |message: String| FeedError::ServiceIndex {
            url: url.to_string(),
            message,
        };
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| index_error(format!("not JSON: {e}")))?;
        let resources = json
            .get("resources")
            .and_then(|r| r.as_array())
            .ok_or_else(|| index_error("has no resources array".to_owned()))?;
        let find = |prefix: &str| {
            resources.iter().find_map(|r| {
                let kinds = match r.get("@type") {
                    Some(serde_json::Value::String(t)) => vec![t.as_str()],
                    Some(serde_json::Value::Array(ts)) => {
                        ts.iter().filter_map(|t| t.as_str()).collect()
                    }
                    _ => Vec::new(),
                };
                kinds
                    .iter()
                    .any(|t| t == &prefix || t.starts_with(&format!("{prefix}/")))
                    .then(|| r.get("@id").and_then(|i| i.as_str()))
                    .flatten()
                    .map(|id| id.trim_end_matches('/').to_owned())
            })
        };
        let publish = find("PackagePublish").ok_or_else(|| {
            index_error("has no PackagePublish/2.0.0 resource: the feed takes no pushes".to_owned())
        })?;
        let lookup = if let Some(base) = find("PackageBaseAddress") {
            Lookup::FlatContainer(base)
        } else if let Some(gallery) = find("LegacyGallery") {
            Lookup::V2(gallery)
        } else {
            return Err(index_error(
                "has neither a PackageBaseAddress/3.0.0 nor a LegacyGallery resource to look packages up".to_owned(),
            ));
        };
        Ok(Feed {
            lookup,
            push_url: parse_url(&format!("{publish}/"))?,
        })
    }

    /// Where the package is pushed.
    pub fn push_url(&self) -> &Url {
        &self.push_url
    }

    /// Whether package `id` `version` (normalized) is on the feed.
    pub async fn exists(
        &self,
        clients: &Clients,
        id: &str,
        version: &str,
    ) -> Result<bool, FeedError> {
        match &self.lookup {
            Lookup::FlatContainer(base) => {
                let url = format!("{base}/{}/index.json", id.to_lowercase());
                let (status, body) = get(&clients.lookup, &url).await?;
                match status {
                    StatusCode::NOT_FOUND => Ok(false),
                    StatusCode::OK => {
                        let json: serde_json::Value =
                            serde_json::from_str(&body).map_err(|e| FeedError::Status {
                                url: url.clone(),
                                status: 200,
                                body: format!("not a version list: {e}"),
                            })?;
                        let wanted = version.to_lowercase();
                        Ok(json.get("versions").and_then(|v| v.as_array()).is_some_and(
                            |versions| {
                                versions
                                    .iter()
                                    .filter_map(|v| v.as_str())
                                    .any(|v| same_version(v, &wanted))
                            },
                        ))
                    }
                    other => Err(FeedError::Status {
                        url,
                        status: other.as_u16(),
                        body: excerpt(&body),
                    }),
                }
            }
            Lookup::V2(base) => {
                let one = format!("{base}/Packages(Id='{id}',Version='{version}')");
                let (status, body) = get(&clients.lookup, &one).await?;
                match status {
                    StatusCode::OK => {
                        not_atom(&one, &body)?;
                        if atom_entries(&body).0.iter().any(|e| e.matches(id, version)) {
                            return Ok(true);
                        }
                    }
                    StatusCode::NOT_FOUND => {}
                    other => {
                        return Err(FeedError::Status {
                            url: one,
                            status: other.as_u16(),
                            body: excerpt(&body),
                        });
                    }
                }
                let mut next = Some(format!(
                    "{base}/FindPackagesById()?id='{id}'&semVerLevel=2.0.0"
                ));
                let mut pages = 0;
                while let Some(url) = next.take() {
                    pages += 1;
                    let (status, body) = get(&clients.lookup, &url).await?;
                    match status {
                        StatusCode::OK => not_atom(&url, &body)?,
                        StatusCode::NOT_FOUND => return Ok(false),
                        other => {
                            return Err(FeedError::Status {
                                url,
                                status: other.as_u16(),
                                body: excerpt(&body),
                            });
                        }
                    }
                    let (entries, link) = atom_entries(&body);
                    if entries.iter().any(|e| e.matches(id, version)) {
                        return Ok(true);
                    }
                    if pages < 100 && !entries.is_empty() {
                        next = link;
                    }
                }
                Ok(false)
            }
        }
    }

    /// Pushes `nupkg` with `api_key`; the HTTP status on success.
    pub async fn push(
        &self,
        clients: &Clients,
        api_key: &str,
        nupkg: &[u8],
    ) -> Result<u16, FeedError> {
        let boundary = format!("tako-{}", random_hex());
        let mut body = format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: form-data; name=\"package\"; filename=\"package.nupkg\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(nupkg);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = self.push_url.to_string();
        let response = clients
            .push
            .put(self.push_url.clone())
            .header("X-NuGet-ApiKey", api_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary=\"{boundary}\""),
            )
            .header(reqwest::header::CONTENT_LENGTH, body.len())
            .body(body)
            .send()
            .await
            .map_err(|e| FeedError::Unreachable {
                url: url.clone(),
                message: error_chain(&e),
            })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = excerpt(&text);
        match status {
            200..=299 => Ok(status),
            409 => Err(FeedError::Duplicate { url, status, body }),
            400 if text.to_lowercase().contains("already") => {
                Err(FeedError::Duplicate { url, status, body })
            }
            401 | 403 => Err(FeedError::Refused { url, status, body }),
            _ => Err(FeedError::Status { url, status, body }),
        }
    }
}

/// 16 random bytes as 32 lowercase hex digits (a time-based value if the
/// system has no randomness to give).
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn same_version(found: &str, wanted: &str) -> bool {
    let norm = |v: &str| {
        let v = v.split('+').next().unwrap_or(v).trim();
        normalize_version(v)
            .unwrap_or_else(|| v.to_owned())
            .to_lowercase()
    };
    norm(found) == norm(wanted)
}

/// One `<entry>` of an Atom feed: its id (`d:Id`, else `title`) and version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    id: Option<String>,
    version: Option<String>,
}

impl Entry {
    fn matches(&self, id: &str, version: &str) -> bool {
        self.id
            .as_deref()
            .is_none_or(|found| found.eq_ignore_ascii_case(id))
            && self
                .version
                .as_deref()
                .is_some_and(|found| same_version(found, version))
    }
}

/// Refuses a 200 answer that is not an Atom document (a login page, a proxy's
/// error page): a NuGet v2 feed always answers with `<feed>` or `<entry>`.
fn not_atom(url: &str, body: &str) -> Result<(), FeedError> {
    let head: String = body
        .chars()
        .take(4096)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.contains("<feed") || head.contains("<entry") {
        return Ok(());
    }
    let what = if head.contains("<html") {
        "an HTML page"
    } else {
        "something else"
    };
    Err(FeedError::Status {
        url: url.to_owned(),
        status: 200,
        body: format!(
            "this is not a NuGet feed: it answered with {what}, not an Atom feed ({})",
            excerpt(body)
        ),
    })
}

/// The entries of an Atom page and its `next` link. Tolerates broken XML
/// (minchoc does not escape its feed) by falling back to a text scan.
fn atom_entries(xml: &str) -> (Vec<Entry>, Option<String>) {
    parse_atom(xml).unwrap_or_else(|| (scan_atom(xml), None))
}

fn parse_atom(xml: &str) -> Option<(Vec<Entry>, Option<String>)> {
    let mut reader = Reader::from_str(xml);
    let mut entries = Vec::new();
    let mut next = None;
    let mut current: Option<Entry> = None;
    let mut field: Option<&'static str> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(start) => {
                let name = start.local_name();
                match name.as_ref() {
                    "entry" => current = Some(Entry::default()),
                    "Id" if current.is_some() => field = Some("id"),
                    "title" if current.is_some() => field = Some("title"),
                    "Version" if current.is_some() => field = Some("version"),
                    _ => {}
                }
                text.clear();
            }
            Event::Empty(empty) if current.is_none() && empty.local_name().as_ref() == "link" => {
                let attribute = |key: &str| {
                    empty
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == key)
                        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
                        .map(|v| v.into_owned())
                };
                if attribute("rel").as_deref() == Some("next") {
                    next = attribute("href");
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    text.push_str(s);
                }
            }
            Event::End(end) => {
                let name = end.local_name();
                if name.as_ref() == "entry" {
                    if let Some(entry) = current.take() {
                        entries.push(entry);
                    }
                } else if let (Some(entry), Some(which)) = (current.as_mut(), field.take()) {
                    let value = text.trim().to_owned();
                    match which {
                        "id" => entry.id = Some(value),
                        "title" if entry.id.is_none() => entry.id = Some(value),
                        "version" => entry.version = Some(value),
                        _ => {}
                    }
                }
                text.clear();
            }
            _ => {}
        }
    }
    Some((entries, next))
}

/// A last resort for a feed that is not well-formed XML: each `<entry>`'s
/// `<d:Version>` and `<title ...>`.
fn scan_atom(xml: &str) -> Vec<Entry> {
    let between = |text: &str, open: &str, close: &str| -> Option<String> {
        let start = text.find(open)?;
        let rest = &text[start + open.len()..];
        let rest = &rest[rest.find('>')? + 1..];
        Some(rest[..rest.find(close)?].trim().to_owned())
    };
    xml.split("<entry")
        .skip(1)
        .map(|entry| Entry {
            id: between(entry, "<d:Id", "</d:Id>").or_else(|| between(entry, "<title", "</title>")),
            version: between(entry, "<d:Version", "</d:Version>"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_urls_like_nuget() {
        let push = |feed: &str| {
            v2(&parse_url(feed).expect("url"))
                .expect("feed")
                .push_url
                .to_string()
        };
        assert_eq!(
            push("https://www.powershellgallery.com/api/v2"),
            "https://www.powershellgallery.com/api/v2/package/"
        );
        assert_eq!(
            push("https://www.powershellgallery.com/api/v2/package/"),
            "https://www.powershellgallery.com/api/v2/package/"
        );
        assert_eq!(
            push("http://127.0.0.1:5557/"),
            "http://127.0.0.1:5557/api/v2/package/"
        );
        assert!(parse_url("ftp://example.invalid/").is_err());
    }

    #[test]
    fn atom_entries_and_next_links() {
        let xml = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">
            <link rel="next" href="http://x/FindPackagesById()?id='A'&amp;$skip=100"/>
            <entry><title type="text">A</title><m:properties><d:Version>1.0</d:Version></m:properties></entry>
            <entry><title type="text">A</title><m:properties><d:Id>A</d:Id><d:Version>2.0.0-Beta1</d:Version></m:properties></entry>
        </feed>"#;
        let (entries, next) = atom_entries(xml);
        assert_eq!(
            next.as_deref(),
            Some("http://x/FindPackagesById()?id='A'&$skip=100")
        );
        assert!(entries.iter().any(|e| e.matches("a", "1.0.0")));
        assert!(entries.iter().any(|e| e.matches("A", "2.0.0-beta1")));
        assert!(!entries.iter().any(|e| e.matches("A", "2.0.0")));
        let broken = "<feed><entry><title>B & C</title><d:Version>1.2.0</d:Version></entry></feed>";
        assert!(
            atom_entries(broken)
                .0
                .iter()
                .any(|e| e.matches("B & C", "1.2"))
        );
    }
}
