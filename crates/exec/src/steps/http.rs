//! `http`: one HTTP request, for chat tools and APIs that have no step of
//! their own.
//!
//! Parameters: `Method` (default `POST`), `Url`, `Headers` (a map), `Body`,
//! `ExpectStatus` (default `2xx`; a code, `4xx`-style classes, ranges like
//! `200-299`, several separated by commas) and `Timeout`
//! (default `30s`). Outputs: `StatusCode` and `Body` (the first 64 KiB,
//! lossy UTF-8).
//!
//! What the user puts into the request (URL, headers, body) is sent as is
//! but never logged: the log shows the method, the URL's scheme, host and
//! path (never its query or user info; only the host when the URL holds a
//! sensitive value) and the status.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use tako_core::Masker;
use tako_core::log::LogLevel;
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepError, StepResult};

/// How much of a response body becomes the `Body` output.
pub const BODY_OUTPUT_LIMIT: usize = 64 * 1024;

/// How much of a response body a failure message quotes.
pub const BODY_MESSAGE_LIMIT: usize = 1024;

/// The timeout when `Timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which status codes count as success: inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectStatus {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl ExpectStatus {
    /// Any 2xx status.
    pub fn success() -> ExpectStatus {
        ExpectStatus {
            ranges: vec![(200, 299)],
            text: "2xx".to_owned(),
        }
    }

    /// Parses `2xx`, `204`, `200-299`, or several of them separated by
    /// commas (in one item of `items` or across several).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<ExpectStatus, String> {
        let mut ranges = Vec::new();
        let mut shown = Vec::new();
        for item in items {
            for part in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                ranges.push(parse_status_part(part)?);
                shown.push(part.to_owned());
            }
        }
        if ranges.is_empty() {
            return Err("ExpectStatus names no status code".to_owned());
        }
        Ok(ExpectStatus {
            ranges,
            text: shown.join(", "),
        })
    }

    /// True when `status` is expected.
    pub fn matches(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl std::fmt::Display for ExpectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_status_part(part: &str) -> Result<(u16, u16), String> {
    let code = |text: &str| -> Result<u16, String> {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| {
                format!(
                    "ExpectStatus {part:?} is not a status code (100-599), a class like 2xx or a range like 200-299"
                )
            })
    };
    let lower = part.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let digit = code(&format!("{class}00"))?;
        return Ok((digit, digit + 99));
    }
    if let Some((low, high)) = part.split_once('-') {
        let (low, high) = (code(low)?, code(high)?);
        if low > high {
            return Err(format!("ExpectStatus range {part:?} is empty"));
        }
        return Ok((low, high));
    }
    let single = code(part)?;
    Ok((single, single))
}

/// A validated request, ready to send.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: Url,
    /// The headers, in the order given.
    pub headers: HeaderMap,
    /// The body, if any.
    pub body: Option<String>,
    /// The statuses that mean success.
    pub expect: ExpectStatus,
    /// How long the whole exchange may take.
    pub timeout: Duration,
}

/// Validates the step's parameters into a [`Request`]. Error messages name
/// the parameter, never a header's value or the URL (either may be secret).
pub fn request(context: &StepContext<'_, '_>) -> Result<Request, StepError> {
    let method_text = context.text("Method")?.unwrap_or("POST").trim();
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes()).map_err(|_| {
        StepError::Parameter(format!("Method {method_text:?} is not an HTTP method"))
    })?;
    let url = parse_url(context.required("Url")?, "Url").map_err(StepError::Parameter)?;
    let mut headers = HeaderMap::new();
    for (name, value) in context.map("Headers")? {
        let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            StepError::Parameter(format!("Headers: {name:?} is not a valid header name"))
        })?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            StepError::Parameter(format!(
                "Headers: the value of {name} is not a valid header value"
            ))
        })?;
        headers.append(header, value);
    }
    let body = context.text("Body")?.map(str::to_owned);
    let expect = match context.text("ExpectStatus")? {
        None => ExpectStatus::success(),
        Some(text) => ExpectStatus::parse([text]).map_err(StepError::Parameter)?,
    };
    let timeout = match context.text("Timeout")? {
        None => DEFAULT_TIMEOUT,
        Some(text) => humantime::parse_duration(text.trim())
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                StepError::Parameter(format!("Timeout {text:?} is not a duration like 30s or 2m"))
            })?,
    };
    Ok(Request {
        method,
        url,
        headers,
        body,
        expect,
        timeout,
    })
}

/// Parses an `http`/`https` URL given as parameter `name`, without quoting
/// it in the error (it may be secret).
pub(crate) fn parse_url(text: &str, name: &str) -> Result<Url, String> {
    let url =
        Url::parse(text.trim()).map_err(|e| format!("{name} is not a valid absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{name} must be an http:// or https:// URL"));
    }
    Ok(url)
}

/// The URL as it may be shown: scheme, host, port and path, without user
/// info, query or fragment, masked. When the URL holds a sensitive value
/// anywhere (or `hide_path`), only `scheme://host/…` is shown, since a path
/// may carry a token (as webhook URLs do).
pub(crate) fn shown_url(url: &Url, masker: &Masker, hide_path: bool) -> String {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let holds_secret = masker.mask(url.as_str()) != url.as_str();
    let shown = if hide_path || holds_secret {
        format!("{}://{host}/…", url.scheme())
    } else {
        format!("{}://{host}{}", url.scheme(), url.path())
    };
    masker.mask(&shown).into_owned()
}

/// A client with the given overall timeout (proxies from `HTTPS_PROXY` and
/// friends apply, as for any HTTP client on the server).
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .user_agent(concat!("Tako/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", e.without_url()))
}

/// Why a request failed, without the URL (reqwest puts it in its messages).
pub(crate) fn describe_error(error: reqwest::Error, timeout: Duration, shown: &str) -> String {
    if error.is_timeout() {
        return format!(
            "{shown} did not answer within {}",
            humantime::format_duration(timeout)
        );
    }
    let kind = if error.is_connect() {
        "could not connect to"
    } else {
        "request failed to"
    };
    let error = error.without_url();
    let mut text = format!("{kind} {shown}: {error}");
    // The causes (hyper's, the OS's) name no URL and say what happened.
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

/// Sends `request`, reads at most `limit` bytes of the answer, honours
/// `cancel` and the timeout. Returns the status and the bytes read.
pub(crate) async fn send(
    builder: reqwest::RequestBuilder,
    limit: usize,
    timeout: Duration,
    shown: &str,
    cancel: &CancellationToken,
) -> Result<(reqwest::Response, Vec<u8>), String> {
    let exchange = async {
        let mut response = builder
            .send()
            .await
            .map_err(|e| describe_error(e, timeout, shown))?;
        let mut body = Vec::new();
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => return Err(describe_error(e, timeout, shown)),
            }
        }
        Ok((response, body))
    };
    tokio::select! {
        () = cancel.cancelled() => Err(format!("cancelled while waiting for {shown}")),
        result = tokio::time::timeout(timeout + Duration::from_secs(1), exchange) => match result {
            Ok(result) => result,
            Err(_) => Err(format!(
                "{shown} did not answer within {}",
                humantime::format_duration(timeout)
            )),
        },
    }
}

/// The step: sends the request, checks the status, sets `StatusCode` and
/// `Body`.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    let request = request(context)?;
    let masker = context.log.masker();
    let shown = shown_url(&request.url, masker, false);
    let method = request.method.clone();
    let client = client(request.timeout)?;
    let mut builder = client
        .request(request.method, request.url)
        .headers(request.headers);
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let (response, body) = send(
        builder,
        BODY_OUTPUT_LIMIT,
        request.timeout,
        &shown,
        context.cancel,
    )
    .await
    .map_err(|e| masker.mask(&e).into_owned())?;
    let status = response.status();
    context.log.tako(
        LogLevel::Info,
        &format!(
            "{method} {shown} answered {status} ({} bytes read)",
            body.len()
        ),
    );
    if !request.expect.matches(status.as_u16()) {
        let quoted = String::from_utf8_lossy(&body[..body.len().min(BODY_MESSAGE_LIMIT)]);
        let message = format!(
            "{method} {shown} answered {status}, expected {}; body: {quoted}",
            request.expect
        );
        return Err(StepError::Failed(masker.mask(&message).into_owned()));
    }
    Ok(vec![
        ("StatusCode".to_owned(), status.as_u16().to_string()),
        (
            "Body".to_owned(),
            String::from_utf8_lossy(&body).into_owned(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_status_forms() {
        let success = ExpectStatus::success();
        assert!(success.matches(200) && success.matches(299) && !success.matches(300));
        let parsed = ExpectStatus::parse(["200-204, 3xx", "418"]).unwrap();
        assert!(parsed.matches(204) && parsed.matches(301) && parsed.matches(418));
        assert!(!parsed.matches(205) && !parsed.matches(404));
        assert_eq!(parsed.to_string(), "200-204, 3xx, 418");
        for bad in ["", "abc", "99", "600", "7xx", "300-200", "2x"] {
            assert!(ExpectStatus::parse([bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn shown_urls_drop_query_user_and_secret_paths() {
        let url = Url::parse("https://user:pw@api.example.com:8443/v1/items?key=abc#x").unwrap();
        assert_eq!(
            shown_url(&url, &Masker::new(), false),
            "https://api.example.com:8443/v1/items"
        );
        assert_eq!(
            shown_url(&url, &Masker::new(), true),
            "https://api.example.com:8443/…"
        );
        let hook = Url::parse("https://hooks.example.com/services/T1/B2/sEcReT?x=1").unwrap();
        let masker = Masker::with_values(["https://hooks.example.com/services/T1/B2/sEcReT?x=1"]);
        assert_eq!(
            shown_url(&hook, &masker, false),
            "https://hooks.example.com/…"
        );
    }
}
