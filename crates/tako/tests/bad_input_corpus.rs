//! The bad-input corpus: hundreds of hand-written and generated malformed
//! inputs (webhook bodies and headers, API bodies, paths and query strings,
//! takofiles, templates, `.psd1` manifests, webhook payloads) sent to a real
//! `tako serve` and to the pure parsers. Every HTTP answer must be a 4xx with
//! a specific JSON `error`, never a 5xx, and the server must stay up; every
//! parser must answer an error (or, for the substitution engine, a warning)
//! and never panic. The counts are printed for `docs/reliability.md`.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use tako_test_support::http::request;
use tako_test_support::server::{DataDir, TakoServer};

const SECRET: &str = "corpus secret";

/// Messages that say nothing about what was wrong.
const GENERIC: &[&str] = &[
    "",
    "error",
    "bad request",
    "invalid",
    "invalid input",
    "internal server error",
    "unknown error",
    "something went wrong",
];

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

fn start() -> (DataDir, TakoServer) {
    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    (data, server)
}

/// One HTTP case: raw bytes of a request.
struct HttpCase {
    name: String,
    raw: Vec<u8>,
    /// Malformed at the HTTP protocol level: hyper answers a bare 400 (or
    /// closes) before any Tako code runs, so no JSON body is expected.
    protocol: bool,
}

/// What came back.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

fn raw_request(address: &str, raw: &[u8]) -> std::io::Result<Option<Answer>> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    // The server may answer (413, 400) and close before reading everything.
    let _ = stream.write_all(raw);
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    if received.is_empty() {
        return Ok(None);
    }
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of head"))?;
    let head = String::from_utf8_lossy(&received[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    let mut body = received[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Some(Answer { status, body }))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
    out
}

fn build(method: &str, target: &[u8], headers: &[(&[u8], &[u8])], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    raw.extend_from_slice(method.as_bytes());
    raw.push(b' ');
    raw.extend_from_slice(target);
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        has_length |= name.eq_ignore_ascii_case(b"content-length");
        raw.extend_from_slice(name);
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    if !has_length {
        raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

/// Checks one answer; `None` when it passes, else why not.
fn judge(case: &HttpCase, answer: &std::io::Result<Option<Answer>>) -> Option<String> {
    let answer = match answer {
        Ok(Some(answer)) => answer,
        Ok(None) if case.protocol => return None,
        Ok(None) => return Some("no answer (connection closed)".to_owned()),
        Err(error) => return Some(format!("no answer: {error}")),
    };
    if !(400..500).contains(&answer.status) {
        return Some(format!(
            "status {} (expected 4xx): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    if case.protocol {
        return None;
    }
    let json: serde_json::Value = match serde_json::from_slice(&answer.body) {
        Ok(json) => json,
        Err(_) => {
            return Some(format!(
                "status {} with a body that is not JSON: {:?}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            ));
        }
    };
    let error = json["error"].as_str().unwrap_or_default();
    let detail = json["detail"].as_str().unwrap_or_default();
    if GENERIC.contains(&error.trim().to_ascii_lowercase().as_str()) || error.len() < 10 {
        return Some(format!(
            "status {} with a vague message: {json}",
            answer.status
        ));
    }
    // Messages that are only specific together with their detail.
    let needs_detail = ["invalid query parameters", "invalid path parameter"];
    if needs_detail.contains(&error) && detail.is_empty() {
        return Some(format!("{error:?} without a detail: {json}"));
    }
    None
}

fn run_http_cases(server: &TakoServer, cases: &[HttpCase]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let answer = raw_request(&server.address, &case.raw);
        if let Some(why) = judge(case, &answer) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    let health = request(&server.address, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(health.status, 200, "the server is still up");
    failures
}

fn push_body() -> Vec<u8> {
    tako_test_support::github::push_payload(
        "https://github.com/acme/demo.git",
        "main",
        "refs/heads/main",
        "0000000000000000000000000000000000000000",
        "1111111111111111111111111111111111111111",
        &[],
    )
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut text = open.repeat(depth);
    text.push_str(&close.repeat(depth));
    text.into_bytes()
}

/// A webhook POST with a valid signature over `body` (unless `signature`).
fn hook(
    name: &str,
    event: &[u8],
    delivery: &[u8],
    content_type: &[u8],
    body: &[u8],
    signature: Option<&[u8]>,
) -> HttpCase {
    let signed = tako_github::sign(SECRET.as_bytes(), body);
    let signature = signature.unwrap_or(signed.as_bytes());
    let mut headers: Vec<(&[u8], &[u8])> = vec![(b"Content-Type", content_type)];
    if !event.is_empty() {
        headers.push((b"X-GitHub-Event", event));
    }
    if !delivery.is_empty() {
        headers.push((b"X-GitHub-Delivery", delivery));
    }
    if !signature.is_empty() {
        headers.push((b"X-Hub-Signature-256", signature));
    }
    HttpCase {
        name: format!("webhook: {name}"),
        raw: build("POST", b"/hooks/github", &headers, body),
        protocol: false,
    }
}

fn webhook_cases() -> Vec<HttpCase> {
    let json = b"application/json".as_slice();
    let form = b"application/x-www-form-urlencoded".as_slice();
    let push = push_body();
    let mut cases = Vec::new();
    // Bodies that are not a push.
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("truncated JSON", b"{\"ref\": ".to_vec()),
        ("half a push", push[..push.len() / 2].to_vec()),
        ("a JSON array", b"[1, 2, 3]".to_vec()),
        ("a JSON string", b"\"push\"".to_vec()),
        ("a JSON number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("ref is a number", br#"{"ref": 7, "after": "x"}"#.to_vec()),
        ("ref is an object", br#"{"ref": {}, "after": "x"}"#.to_vec()),
        ("ref missing", br#"{"after": "1111111111111111111111111111111111111111"}"#.to_vec()),
        ("repository is a string", br#"{"ref": "refs/heads/main", "before": "0", "after": "1", "repository": "acme"}"#.to_vec()),
        ("commits is an object", br#"{"ref": "refs/heads/main", "commits": {"a": 1}}"#.to_vec()),
        ("invalid UTF-8", b"{\"ref\": \"\xff\xfe\xfd\"}".to_vec()),
        ("NUL bytes", b"{\"ref\": \"refs/heads/\0main\"}\0\0".to_vec()),
        ("only NUL bytes", vec![0; 1000]),
        ("lone surrogate escape", br#"{"ref": "\ud800"}"#.to_vec()),
        ("bad escape", br#"{"ref": "\q"}"#.to_vec()),
        ("trailing garbage", [push.as_slice(), b"}}}garbage"].concat()),
        ("two documents", [push.as_slice(), push.as_slice()].concat()),
        ("100k-deep arrays", nested(100_000, "[", "]")),
        ("100k-deep objects", {
            let mut text = "{\"a\":".repeat(100_000);
            text.push('1');
            text.push_str(&"}".repeat(100_000));
            text.into_bytes()
        }),
        ("deep unclosed nesting", "[".repeat(200_000).into_bytes()),
        ("a huge number", format!("{{\"ref\": 1{}}}", "0".repeat(100_000)).into_bytes()),
        ("a UTF-8 BOM", [b"\xef\xbb\xbf".as_slice(), push.as_slice()].concat()),
        ("YAML instead of JSON", b"ref: refs/heads/main\nafter: abc\n".to_vec()),
        ("ref with path traversal", br#"{"ref": "refs/heads/../../etc/passwd", "before": "0000000000000000000000000000000000000000", "after": "1111111111111111111111111111111111111111"}"#.to_vec()),
        ("after is not a sha", br#"{"ref": "refs/heads/main", "before": "x", "after": 12}"#.to_vec()),
        ("deleted is a string", br#"{"ref": "refs/heads/main", "deleted": "yes"}"#.to_vec()),
    ];
    for (name, body) in &bodies {
        cases.push(hook(name, b"push", b"corpus-body", json, body, None));
    }
    // Other events with bad bodies.
    for (event, body) in [
        (b"ping".as_slice(), b"[]".as_slice()),
        (b"ping", b"{\"zen\": 5}"),
        (b"ping", b"not json"),
        (b"issues", b"[1]"),
        (b"issues", b"nope"),
        (b"release", b""),
    ] {
        let name = format!(
            "{} event with body {:?}",
            String::from_utf8_lossy(event),
            String::from_utf8_lossy(body)
        );
        cases.push(hook(&name, event, b"corpus-event", json, body, None));
    }
    // Form-encoded bodies.
    for (name, body) in [
        ("form without payload", b"foo=bar".as_slice()),
        ("form with two payloads", b"payload=%7B%7D&payload=%7B%7D"),
        ("form payload not JSON", b"payload=hello"),
        ("form payload bad percent", b"payload=%ZZ%"),
        ("form payload invalid UTF-8", b"payload=%FF%FE"),
        ("form empty", b""),
    ] {
        cases.push(hook(name, b"push", b"corpus-form", form, body, None));
    }
    // Content types.
    for content_type in [
        b"text/plain".as_slice(),
        b"application/xml",
        b"multipart/form-data; boundary=x",
    ] {
        let name = format!("content type {:?}", String::from_utf8_lossy(content_type));
        cases.push(hook(
            &name,
            b"push",
            b"corpus-ct",
            content_type,
            &push,
            None,
        ));
    }
    // Headers.
    let long = "x".repeat(5000);
    let headers: Vec<(&str, &[u8], &[u8])> = vec![
        ("no event header", b"", b"corpus-h1"),
        ("no delivery header", b"push", b""),
        ("event with spaces", b"pu sh", b"corpus-h2"),
        ("event too long", long.as_bytes(), b"corpus-h3"),
        ("delivery too long", b"push", long.as_bytes()),
        ("delivery with spaces", b"push", b"a b c"),
        ("delivery invalid UTF-8", b"push", b"\xff\xfe\xfd"),
        ("event invalid UTF-8", b"\xc3\x28", b"corpus-h4"),
        ("delivery only spaces", b"push", b"   "),
        ("event only tabs", b"\t\t", b"corpus-h5"),
    ];
    for (name, event, delivery) in headers {
        cases.push(hook(name, event, delivery, json, &push, None));
    }
    // Signatures.
    let signatures: Vec<(&str, Vec<u8>)> = vec![
        ("no signature", Vec::new()),
        (
            "sha1 signature",
            b"sha1=0123456789abcdef0123456789abcdef01234567".to_vec(),
        ),
        (
            "wrong signature",
            tako_github::sign(b"another secret", &push).into_bytes(),
        ),
        (
            "signature not hex",
            format!("sha256={}", "zz".repeat(32)).into_bytes(),
        ),
        ("signature too short", b"sha256=abcd".to_vec()),
        (
            "signature too long",
            format!("sha256={}", "ab".repeat(64)).into_bytes(),
        ),
        ("signature without prefix", "ab".repeat(32).into_bytes()),
        ("signature invalid UTF-8", b"sha256=\xff\xfe".to_vec()),
        (
            "signature huge",
            format!("sha256={}", "a".repeat(6000)).into_bytes(),
        ),
        (
            "signature over another body",
            tako_github::sign(SECRET.as_bytes(), b"{}").into_bytes(),
        ),
    ];
    for (name, signature) in &signatures {
        cases.push(hook(
            name,
            b"push",
            b"corpus-sig",
            json,
            &push,
            Some(signature),
        ));
    }
    // Sizes.
    let huge = vec![b' '; 30 * 1024 * 1024];
    cases.push(hook(
        "30 MiB body",
        b"push",
        b"corpus-huge",
        json,
        &huge,
        None,
    ));
    cases.push(HttpCase {
        name: "webhook: Content-Length of 1 TB, no body".to_owned(),
        raw: build(
            "POST",
            b"/hooks/github",
            &[
                (b"X-GitHub-Event", b"push"),
                (b"X-GitHub-Delivery", b"corpus-1tb"),
                (b"Content-Length", b"1000000000000"),
            ],
            b"",
        ),
        protocol: false,
    });
    // Methods.
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        cases.push(HttpCase {
            name: format!("webhook: {method} /hooks/github"),
            raw: build(method, b"/hooks/github", &[], b""),
            protocol: false,
        });
    }
    cases
}

/// Bad deliveries to `/hooks/gitea`, `/hooks/gitlab` and `/hooks/bitbucket`:
/// for each forge, missing and wrong signatures or tokens, missing headers,
/// and signed bodies that are not its push.
fn forge_cases() -> Vec<HttpCase> {
    let gitea_sign = |body: &[u8]| tako_forges::signature::hmac_hex(SECRET.as_bytes(), body);
    let bitbucket_sign = |body: &[u8]| {
        format!(
            "sha256={}",
            tako_forges::signature::hmac_hex(SECRET.as_bytes(), body)
        )
    };
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("truncated JSON", b"{\"ref\": ".to_vec()),
        ("a JSON array", b"[1, 2, 3]".to_vec()),
        ("null", b"null".to_vec()),
        ("an empty object", b"{}".to_vec()),
        ("ref is a number", br#"{"ref": 7}"#.to_vec()),
        ("invalid UTF-8", b"{\"ref\": \"\xff\xfe\"}".to_vec()),
        ("NUL bytes", vec![0; 100]),
        ("deep nesting", nested(100_000, "[", "]")),
        (
            "ref not under refs/",
            br#"{"ref":"main","before":"a","after":"b","repository":{"id":1,"name":"r","full_name":"o/r","clone_url":"u","html_url":"h"},"project":{"id":1,"name":"r","path_with_namespace":"o/r","git_http_url":"u","web_url":"h"}}"#.to_vec(),
        ),
        (
            "changes is not a list",
            br#"{"push":{"changes":{}},"repository":{"full_name":"a/b","links":{"html":{"href":"h"}}}}"#.to_vec(),
        ),
        (
            "a change with neither side",
            br#"{"push":{"changes":[{}]},"repository":{"full_name":"a/b","links":{"html":{"href":"h"}}}}"#.to_vec(),
        ),
    ];
    let mut cases = Vec::new();
    for (forge, event_header, event, delivery_header) in [
        (
            "gitea",
            b"X-Gitea-Event".as_slice(),
            b"push".as_slice(),
            b"X-Gitea-Delivery".as_slice(),
        ),
        (
            "gitlab",
            b"X-Gitlab-Event",
            b"Push Hook",
            b"Idempotency-Key",
        ),
        ("bitbucket", b"X-Event-Key", b"repo:push", b"X-Request-UUID"),
    ] {
        let target = format!("/hooks/{forge}");
        let case = |name: &str, headers: &[(&[u8], &[u8])], body: &[u8]| HttpCase {
            name: format!("{forge} webhook: {name}"),
            raw: build("POST", target.as_bytes(), headers, body),
            protocol: false,
        };
        let proof = |body: &[u8]| -> (Vec<u8>, Vec<u8>) {
            match forge {
                "gitea" => (b"X-Gitea-Signature".to_vec(), gitea_sign(body).into_bytes()),
                "gitlab" => (b"X-Gitlab-Token".to_vec(), SECRET.as_bytes().to_vec()),
                _ => (
                    b"X-Hub-Signature".to_vec(),
                    bitbucket_sign(body).into_bytes(),
                ),
            }
        };
        let json: (&[u8], &[u8]) = (b"Content-Type", b"application/json");
        for (name, body) in &bodies {
            let (header, value) = proof(body);
            cases.push(case(
                name,
                &[
                    json,
                    (event_header, event),
                    (delivery_header, b"corpus-forge"),
                    (&header, &value),
                ],
                body,
            ));
        }
        let body = b"{}";
        let (header, value) = proof(body);
        cases.push(case(
            "no signature or token",
            &[
                json,
                (event_header, event),
                (delivery_header, b"corpus-forge"),
            ],
            body,
        ));
        cases.push(case(
            "wrong signature or token",
            &[
                json,
                (event_header, event),
                (delivery_header, b"corpus-forge"),
                (&header, b"sha256=00"),
            ],
            body,
        ));
        cases.push(case(
            "no event header",
            &[json, (delivery_header, b"corpus-forge"), (&header, &value)],
            body,
        ));
        cases.push(case(
            "no delivery header",
            &[json, (event_header, event), (&header, &value)],
            body,
        ));
        cases.push(case(
            "delivery id with a space",
            &[
                json,
                (event_header, event),
                (delivery_header, b"a b"),
                (&header, &value),
            ],
            body,
        ));
        cases.push(case(
            "delivery id too long",
            &[
                json,
                (event_header, event),
                (delivery_header, "d".repeat(200).as_bytes()),
                (&header, &value),
            ],
            body,
        ));
        cases.push(case(
            "unsupported content type",
            &[
                (b"Content-Type", b"text/plain"),
                (event_header, event),
                (delivery_header, b"corpus-forge"),
                (&header, &value),
            ],
            body,
        ));
        cases.push(case(
            "Content-Length of 1 TB",
            &[
                (event_header, event),
                (delivery_header, b"corpus-forge"),
                (b"Content-Length", b"1000000000000"),
            ],
            b"",
        ));
        cases.push(HttpCase {
            name: format!("{forge} webhook: GET"),
            raw: build("GET", target.as_bytes(), &[], b""),
            protocol: false,
        });
    }
    // GitLab's signing token: signed deliveries the server's plain secret
    // cannot check are refused, as are malformed ones.
    cases.push(HttpCase {
        name: "gitlab webhook: signature without a token".to_owned(),
        raw: build(
            "POST",
            b"/hooks/gitlab",
            &[
                (b"Content-Type", b"application/json"),
                (b"X-Gitlab-Event", b"Push Hook"),
                (b"Idempotency-Key", b"corpus-signed"),
                (b"webhook-id", b"corpus-signed"),
                (b"webhook-timestamp", b"not a time"),
                (b"webhook-signature", b"v1,AAAA"),
            ],
            b"{}",
        ),
        protocol: false,
    });
    cases
}

fn api_cases(token: &str) -> Vec<HttpCase> {
    let bearer = format!("Bearer {token}");
    let auth: (&[u8], &[u8]) = (b"Authorization", bearer.as_bytes());
    let json: (&[u8], &[u8]) = (b"Content-Type", b"application/json");
    let get = |name: &str, target: &[u8]| HttpCase {
        name: format!("api: {name}"),
        raw: build("GET", target, &[auth], b""),
        protocol: false,
    };
    let mut cases = Vec::new();
    // Authentication.
    for (name, value) in [
        ("no token", None),
        ("empty bearer", Some(b"Bearer ".as_slice())),
        ("basic auth", Some(b"Basic dXNlcjpwYXNz")),
        (
            "unknown token",
            Some(b"Bearer tako_0000000000000000000000000000"),
        ),
        ("token invalid UTF-8", Some(b"Bearer \xff\xfe")),
        ("token huge", Some("Bearer ".repeat(1000).as_bytes())),
        ("token with NUL escape", Some(b"Bearer tako_%00")),
    ] {
        let headers: Vec<(&[u8], &[u8])> = value
            .map(|v| vec![(b"Authorization".as_slice(), v)])
            .unwrap_or_default();
        // `token huge` borrows a temporary: build right away.
        cases.push(HttpCase {
            name: format!("api auth: {name}"),
            raw: build("GET", b"/api/v1/projects", &headers, b""),
            protocol: false,
        });
    }
    // Paths.
    for (name, target) in [
        (
            "encoded traversal",
            b"/api/v1/projects/..%2f..%2fetc".as_slice(),
        ),
        (
            "encoded traversal to passwd",
            b"/api/v1/projects/..%2F..%2F..%2Fetc%2Fpasswd",
        ),
        ("dot segments", b"/api/v1/../../etc/passwd"),
        (
            "dot segments in a project",
            b"/api/v1/projects/../../../etc/passwd",
        ),
        ("dot segments outside the API", b"/../../etc/passwd"),
        (
            "double-encoded traversal",
            b"/api/v1/projects/%252e%252e%252fetc",
        ),
        ("invalid UTF-8 percent-encoded", b"/api/v1/projects/%ff%fe"),
        ("NUL percent-encoded", b"/api/v1/projects/a%00b"),
        ("backslashes", b"/api/v1/projects/..\\..\\windows"),
        ("unknown project", b"/api/v1/projects/no-such-project"),
        (
            "unknown project variables",
            b"/api/v1/projects/nope/variables",
        ),
        (
            "unknown project releases",
            b"/api/v1/projects/nope/releases",
        ),
        (
            "unknown release number",
            b"/api/v1/projects/nope/releases/1.0.0",
        ),
        ("release id not a number", b"/api/v1/releases/abc"),
        ("release id negative", b"/api/v1/releases/-1"),
        (
            "release id overflows",
            b"/api/v1/releases/99999999999999999999999",
        ),
        ("release id float", b"/api/v1/releases/1.5"),
        ("release id zero", b"/api/v1/releases/0"),
        ("deployment id not a number", b"/api/v1/deployments/abc"),
        (
            "deployment id overflows",
            b"/api/v1/deployments/99999999999999999999999",
        ),
        ("deployment id unknown", b"/api/v1/deployments/123456"),
        (
            "deployment log id not a number",
            b"/api/v1/deployments/x/log",
        ),
        ("deployment log unknown", b"/api/v1/deployments/424242/log"),
        ("unknown API route", b"/api/v1/nope"),
        ("unknown nested API route", b"/api/v1/projects/a/b/c/d/e"),
        ("unknown route outside the API", b"/nope"),
        (
            "very long path",
            format!("/api/v1/projects/{}", "a".repeat(10_000)).as_bytes(),
        ),
        (
            "very long unknown path",
            format!("/{}", "b/".repeat(3000)).as_bytes(),
        ),
        ("API v2", b"/api/v2/projects"),
    ] {
        cases.push(get(name, target));
    }
    // Query strings.
    for endpoint in ["/api/v1/deployments", "/api/v1/deliveries"] {
        for query in [
            "limit=-1",
            "limit=0",
            "limit=201",
            "limit=999999999999",
            "limit=abc",
            "limit=1.5",
            "limit=",
            "limit=1&limit=2",
            "cursor=garbage",
            "cursor=%00%00",
            "cursor=%ff%fe",
            "cursor=../../etc/passwd",
            "project=nope",
            "project=..%2f..%2fetc",
            "limit=%ff",
        ] {
            let target = format!("{endpoint}?{query}");
            cases.push(get(&target, target.as_bytes()));
        }
    }
    for query in [
        "state=bogus",
        "state=QUEUED%00",
        "state=%ff",
        "state=running&state=queued",
    ] {
        let target = format!("/api/v1/deployments?{query}");
        cases.push(get(&target, target.as_bytes()));
    }
    for query in ["follow=maybe", "follow=2", "follow=%ff"] {
        let target = format!("/api/v1/deployments/1/log?{query}");
        cases.push(get(&target, target.as_bytes()));
    }
    // Bodies.
    let deep = nested(100_000, "[", "]");
    let big_name = format!(
        "{{\"name\": \"{}\", \"repository\": \"r\"}}",
        "a".repeat(300)
    );
    let big_body = format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let bodies: Vec<(&str, &str, &str, &[u8])> = vec![
        ("POST", "/api/v1/projects", "empty body", b""),
        (
            "POST",
            "/api/v1/projects",
            "truncated",
            b"{\"name\": \"x\", \"repo",
        ),
        ("POST", "/api/v1/projects", "array", b"[]"),
        ("POST", "/api/v1/projects", "null", b"null"),
        (
            "POST",
            "/api/v1/projects",
            "name is a number",
            br#"{"name": 5, "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name is null",
            br#"{"name": null, "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "repository missing",
            br#"{"name": "x"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "repository is a list",
            br#"{"name": "x", "repository": ["r"]}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name empty",
            br#"{"name": "", "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name spaces",
            br#"{"name": "   ", "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name with slash",
            br#"{"name": "../etc", "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name with NUL",
            br#"{"name": "a\u0000b", "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "name too long",
            big_name.as_bytes(),
        ),
        (
            "POST",
            "/api/v1/projects",
            "repository empty",
            br#"{"name": "x", "repository": ""}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "repository with newline",
            br#"{"name": "x", "repository": "a\nb"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "webhook secret empty",
            br#"{"name": "x", "repository": "r", "webhook_secret": ""}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "webhook secret a number",
            br#"{"name": "x", "repository": "r", "webhook_secret": 1}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "invalid UTF-8",
            b"{\"name\": \"\xff\", \"repository\": \"r\"}",
        ),
        ("POST", "/api/v1/projects", "NUL bytes", b"\0\0\0\0"),
        ("POST", "/api/v1/projects", "100k-deep nesting", &deep),
        (
            "POST",
            "/api/v1/projects",
            "2 MiB body",
            big_body.as_bytes(),
        ),
        (
            "POST",
            "/api/v1/projects",
            "lone surrogate",
            br#"{"name": "\udc00", "repository": "r"}"#,
        ),
        (
            "POST",
            "/api/v1/projects",
            "duplicate keys",
            br#"{"name": "a", "name": "b", "repository": "r"}"#,
        ),
        (
            "PUT",
            "/api/v1/projects/nope/variables/X",
            "variable of an unknown project",
            br#"{"value": "v"}"#,
        ),
        (
            "PUT",
            "/api/v1/projects/nope/variables/X",
            "variable value a number",
            br#"{"value": 5}"#,
        ),
        (
            "PUT",
            "/api/v1/projects/nope/variables/X",
            "variable environments a string",
            br#"{"value": "v", "environments": "Prod"}"#,
        ),
        (
            "PUT",
            "/api/v1/projects/nope/variables/X",
            "variable sensitive a string",
            br#"{"value": "v", "sensitive": "yes"}"#,
        ),
        (
            "PUT",
            "/api/v1/projects/nope/variables/X",
            "variable body empty",
            b"",
        ),
        (
            "DELETE",
            "/api/v1/projects/nope/variables/abc",
            "variable id not a number",
            b"",
        ),
        (
            "DELETE",
            "/api/v1/projects/nope/variables/1",
            "variable of an unknown project",
            b"",
        ),
        (
            "POST",
            "/api/v1/releases/1/deployments",
            "deploy without environment",
            b"{}",
        ),
        (
            "POST",
            "/api/v1/releases/1/deployments",
            "deploy environment a number",
            br#"{"environment": 1}"#,
        ),
        (
            "POST",
            "/api/v1/releases/abc/deployments",
            "deploy release not a number",
            br#"{"environment": "Prod"}"#,
        ),
        (
            "POST",
            "/api/v1/releases/424242/deployments",
            "deploy unknown release",
            br#"{"environment": "Prod"}"#,
        ),
        (
            "POST",
            "/api/v1/deployments/424242/cancel",
            "cancel unknown deployment",
            b"",
        ),
        (
            "POST",
            "/api/v1/deployments/abc/cancel",
            "cancel id not a number",
            b"",
        ),
        ("POST", "/api/v1/tokens", "token without name", b"{}"),
        (
            "POST",
            "/api/v1/tokens",
            "token name empty",
            br#"{"name": ""}"#,
        ),
        (
            "POST",
            "/api/v1/tokens",
            "token role unknown",
            br#"{"name": "ci", "role": "overlord"}"#,
        ),
        (
            "POST",
            "/api/v1/tokens",
            "token role a number",
            br#"{"name": "ci", "role": 3}"#,
        ),
        (
            "POST",
            "/api/v1/tokens",
            "token name with control characters",
            br#"{"name": "a\tb"}"#,
        ),
        ("DELETE", "/api/v1/projects", "method not allowed", b""),
        ("PATCH", "/api/v1/deployments", "PATCH not allowed", b""),
        (
            "POST",
            "/api/v1/openapi.json",
            "POST to the OpenAPI document",
            b"",
        ),
    ];
    for (method, target, name, body) in bodies {
        cases.push(HttpCase {
            name: format!("api: {method} {target}: {name}"),
            raw: build(method, target.as_bytes(), &[auth, json], body),
            protocol: false,
        });
    }
    // Content types on a valid body.
    for content_type in [
        b"text/plain".as_slice(),
        b"application/x-www-form-urlencoded",
        b"\xff",
    ] {
        cases.push(HttpCase {
            name: format!(
                "api: create project with Content-Type {:?}",
                String::from_utf8_lossy(content_type)
            ),
            raw: build(
                "POST",
                b"/api/v1/projects",
                &[auth, (b"Content-Type", content_type)],
                br#"{"name": "x", "repository": "r"}"#,
            ),
            protocol: false,
        });
    }
    // Malformed at the protocol level: hyper answers before any handler.
    let protocol = |name: &str, raw: &[u8]| HttpCase {
        name: format!("protocol: {name}"),
        raw: raw.to_vec(),
        protocol: true,
    };
    cases.push(protocol(
        "NUL byte in the path",
        b"GET /api/v1/projects/a\0b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    cases.push(protocol(
        "raw invalid UTF-8 in the path",
        b"GET /api/v1/projects/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    cases.push(protocol(
        "NUL byte in a header",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\0b\r\nConnection: close\r\n\r\n",
    ));
    cases.push(protocol(
        "garbage request line",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ));
    cases.push(protocol(
        "negative Content-Length",
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
    ));
    cases.push(protocol(
        "two Content-Lengths",
        b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab",
    ));
    let many_headers: String = (0..500).map(|n| format!("X-H{n}: v\r\n")).collect();
    cases.push(protocol(
        "500 headers",
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}Connection: close\r\n\r\n")
            .as_bytes(),
    ));
    cases.push(protocol(
        "a 1 MiB header",
        format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(1024 * 1024)
        )
        .as_bytes(),
    ));
    cases
}

#[test]
fn every_bad_webhook_is_refused_with_a_specific_message_and_the_server_stays_up() {
    let (_data, server) = start();
    let mut cases = webhook_cases();
    cases.extend(forge_cases());
    let failures = run_http_cases(&server, &cases);
    eprintln!(
        "corpus: {} webhook cases, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing bad was stored.
    let token = server.token.clone().unwrap();
    let deliveries = request(
        &server.address,
        "GET",
        "/api/v1/deliveries",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .unwrap();
    assert_eq!(deliveries.status, 200);
    assert_eq!(deliveries.json()["items"], serde_json::json!([]));
}

#[test]
fn every_bad_api_request_is_refused_with_a_specific_message_and_the_server_stays_up() {
    let (_data, server) = start();
    let token = server.token.clone().unwrap();
    let cases = api_cases(&token);
    let failures = run_http_cases(&server, &cases);
    eprintln!(
        "corpus: {} API cases, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `parse` on every input; an input passes when it returns `Err` with a
/// non-empty message and does not panic.
fn run_parser_cases<T, E: std::fmt::Display>(
    what: &str,
    inputs: &[(String, String)],
    parse: impl Fn(&str) -> Result<T, E>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, input) in inputs {
        match catch_unwind(AssertUnwindSafe(|| parse(input))) {
            Err(_) => failures.push(format!("{what}: {name}: PANIC")),
            Ok(Ok(_)) => failures.push(format!("{what}: {name}: accepted")),
            Ok(Err(error)) => {
                let message = error.to_string();
                if message.trim().len() < 10 {
                    failures.push(format!("{what}: {name}: vague error {message:?}"));
                }
            }
        }
    }
    failures
}

fn takofile_cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = vec![
        ("empty", ""),
        ("only a comment", "# nothing\n"),
        ("a scalar", "hello"),
        ("a list", "- a\n- b\n"),
        ("null", "~"),
        ("tabs for indentation", "Project: x\nSteps:\n\t- Name: a\n"),
        ("unclosed quote", "Project: \"x\nSteps: []\n"),
        ("unclosed flow", "Project: x\nSteps: [\n"),
        ("duplicate keys", "Project: a\nProject: b\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("Project is a list", "Project: [a]\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("Project is a map", "Project: {a: 1}\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("Steps is a string", "Project: x\nSteps: hello\n"),
        ("Steps is a map", "Project: x\nSteps: {a: 1}\n"),
        ("step without Run or Uses", "Project: x\nSteps:\n  - Name: s\n"),
        ("step with Run and Uses", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Uses: tako/git-tag@v1\n"),
        ("step Run a list", "Project: x\nSteps:\n  - Name: s\n    Run: [a, b]\n"),
        ("unknown key", "Project: x\nBogus: 1\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("unknown step key", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Frobnicate: yes\n"),
        ("bad timeout", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Timeout: forever\n"),
        ("negative timeout", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Timeout: -5m\n"),
        ("huge timeout", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Timeout: 99999999999999999999h\n"),
        ("unknown shell", "Project: x\nSteps:\n  - Name: s\n    Run: echo\n    Shell: cmd.exe\n"),
        ("mapping without environment", "Project: x\nMappings:\n  - Branch: main\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("mapping bad glob", "Project: x\nMappings:\n  - Branch: \"[\"\n    Environment: P\nSteps:\n  - Name: s\n    Run: echo\n"),
        ("Uses unknown", "Project: x\nSteps:\n  - Name: s\n    Uses: evil/thing@v9\n"),
        ("Uses path traversal", "Project: x\nSteps:\n  - Name: s\n    Uses: ../../etc/passwd\n"),
        ("Name path traversal and NUL", "Project: \"../../etc\\0\"\nSteps:\n  - Name: \"\\0\"\n    Run: echo\n"),
        ("two documents", "Project: x\n---\nProject: y\n"),
        ("an undefined alias", "Project: *nothing\nSteps: []\n"),
        ("a merge key", "base: &b {Name: s, Run: echo}\nProject: x\nSteps:\n  - <<: *b\n"),
        ("a self-referencing anchor", "a: &a [*a]\n"),
        ("a complex key", "? [a, b]\n: c\n"),
        ("control characters", "Project: \"\u{7}\u{1b}[31m\"\nSteps: []\n"),
        ("a BOM mid-file", "Project: x\n\u{feff}Steps: []\n"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.to_owned()))
    .collect();
    // YAML bombs: the billion laughs and friends.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let mut previous = "a";
    for name in names {
        laughs.push_str(&format!(
            "{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
        ));
        previous = name;
    }
    cases.push(("billion laughs".to_owned(), laughs.clone()));
    cases.push((
        "billion laughs under Steps".to_owned(),
        format!("{laughs}Project: x\nSteps: *j\n"),
    ));
    let mut quadratic = format!("a: &a \"{}\"\nb: [", "x".repeat(100_000));
    quadratic.push_str(&vec!["*a"; 10_000].join(","));
    quadratic.push_str("]\n");
    cases.push(("quadratic blow-up".to_owned(), quadratic));
    let mut anchors = String::new();
    for n in 0..5_000 {
        anchors.push_str(&format!("k{n}: &a{n} [1]\n"));
    }
    cases.push(("5000 anchors".to_owned(), anchors));
    // Deep nesting.
    for depth in [1_000, 100_000] {
        cases.push((
            format!("{depth}-deep flow sequences"),
            "[".repeat(depth) + &"]".repeat(depth),
        ));
        cases.push((
            format!("{depth}-deep flow maps"),
            "{a: ".repeat(depth) + "1" + &"}".repeat(depth),
        ));
        cases.push((format!("{depth} unclosed"), "[".repeat(depth)));
    }
    let mut block = String::new();
    for n in 0..2_000 {
        block.push_str(&" ".repeat(n));
        block.push_str("a:\n");
    }
    cases.push(("2000-deep block maps".to_owned(), block));
    // Sizes and bytes.
    cases.push((
        "10 MiB scalar".to_owned(),
        format!("Project: {}\n", "x".repeat(10 * 1024 * 1024)),
    ));
    cases.push((
        "100k steps without Run".to_owned(),
        format!("Project: x\nSteps:\n{}", "  - Name: s\n".repeat(100_000)),
    ));
    cases.push((
        "NUL bytes".to_owned(),
        "Project: x\0\0\nSteps: []\0".to_owned(),
    ));
    cases.push((
        "lossy invalid UTF-8".to_owned(),
        String::from_utf8_lossy(b"Project: \xff\xfe\nSteps: [").into_owned(),
    ));
    // Truncations of a valid file.
    let valid = "Project: Demo\nMappings:\n  - Branch: main\n    Environment: Production\nSteps:\n  - Name: Test\n    Run: echo hi\n    Timeout: 5m\n";
    for cut in [5, 9, 20, 40] {
        cases.push((format!("valid file cut at {cut}"), valid[..cut].to_owned()));
    }
    cases
}

fn psd1_cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = vec![
        ("empty", ""),
        ("not a hashtable", "'hello'"),
        ("unclosed hashtable", "@{ RootModule = 'a.psm1'"),
        ("unclosed string", "@{ RootModule = 'a.psm1 }"),
        ("unclosed here-string", "@{ Description = @'\nabc\n}"),
        ("missing equals", "@{ RootModule 'a' }"),
        ("missing value", "@{ RootModule = }"),
        ("a command", "@{ RootModule = Get-Process }"),
        ("a subexpression", "@{ RootModule = \"$(rm -rf /)\" }"),
        ("a variable", "@{ RootModule = $env:HOME }"),
        ("a script block", "@{ RootModule = { calc.exe } }"),
        (
            "a method call",
            "@{ RootModule = [IO.File]::ReadAllText('/etc/passwd') }",
        ),
        ("a type cast", "@{ ModuleVersion = [version]'1.0' }"),
        ("two hashtables", "@{} @{}"),
        ("a trailing garbage", "@{ ModuleVersion = '1.0' } garbage"),
        ("unterminated block comment", "<# never ends\n@{}"),
        ("an array not closed", "@{ FunctionsToExport = @('a', 'b' }"),
        ("bad number", "@{ X = 1e99999999 }"),
        ("hex overflow", "@{ X = 0xFFFFFFFFFFFFFFFFFFFFFFFF }"),
        ("duplicate key", "@{ A = 1; A = 2 }"),
        ("key is a number list", "@{ @(1) = 2 }"),
        ("NUL bytes", "@{ A = 'x\0y' }\0"),
        ("a BOM in the middle", "@{ A = 1 }\u{feff}@{}"),
        (
            "manifest without ModuleVersion",
            "@{ RootModule = 'a.psm1' }",
        ),
        (
            "ModuleVersion not a version",
            "@{ ModuleVersion = 'one point oh' }",
        ),
        (
            "ModuleVersion a number list",
            "@{ ModuleVersion = @(1, 2) }",
        ),
        ("ModuleVersion empty", "@{ ModuleVersion = '' }"),
        (
            "PrivateData a string",
            "@{ ModuleVersion = '1.0.0'; PrivateData = 'x' }",
        ),
        (
            "PSData a number",
            "@{ ModuleVersion = '1.0.0'; PrivateData = @{ PSData = 5 } }",
        ),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.to_owned()))
    .collect();
    for depth in [1_000, 100_000] {
        cases.push((
            format!("{depth}-deep hashtables"),
            "@{ A = ".repeat(depth) + "1" + &" }".repeat(depth),
        ));
        cases.push((
            format!("{depth}-deep arrays"),
            "@{ A = ".to_owned() + &"@(".repeat(depth) + &")".repeat(depth) + " }",
        ));
        cases.push((format!("{depth} unclosed parens"), "(".repeat(depth)));
    }
    cases.push((
        "10 MiB string without an end".to_owned(),
        format!("@{{ A = '{}", "x".repeat(10 * 1024 * 1024)),
    ));
    let valid = "@{\n  RootModule = 'Demo.psm1'\n  ModuleVersion = '1.2.3'\n  GUID = 'a5d1c0e4-6c5b-4f0e-9a4e-1d1d2c3b4a59'\n  FunctionsToExport = @('Get-Demo')\n}\n";
    for cut in [1, 3, 15, 30, 60, 100] {
        cases.push((
            format!("valid manifest cut at {cut}"),
            valid[..cut].to_owned(),
        ));
    }
    cases
}

fn template_cases() -> Vec<(String, String)> {
    let mut cases: Vec<(String, String)> = vec![
        ("unclosed token", "#{Name"),
        ("unknown variable", "#{NoSuchThing}"),
        ("unknown filter", "#{Name | NoSuchFilter}"),
        ("unclosed if", "#{if Name}yes"),
        ("else without if", "#{else}x#{/if}"),
        ("end without if", "#{/if}"),
        ("unclosed each", "#{each x in List}#{x}"),
        ("each over nothing", "#{each x in}#{/each}"),
        ("calc with garbage", "#{calc 1 + }"),
        ("calc division by zero", "#{calc 1/0}"),
        (
            "calc overflow",
            "#{calc 99999999999999999999999 * 99999999999999999999999}",
        ),
        ("self reference", "#{Loop}"),
        ("mutual reference", "#{A}"),
        ("JSON index on text", "#{Name[0]}"),
        ("JSON index unclosed", "#{Json[}"),
        ("JSON index huge", "#{Json[99999999999999999999]}"),
        ("JSON path traversal", "#{Json[../../etc]}"),
        ("filter with unclosed quote", "#{Name | Replace \"a}"),
        ("Substring out of range", "#{Name | Substring 99999 99999}"),
        ("Format with a bad format", "#{NowDate | Format \"{0:ZZZ\"}"),
        ("NUL bytes", "#{Na\0me}\0"),
        ("unless unclosed", "#{unless Name}x"),
        ("empty token", "#{}"),
        ("token of spaces", "#{   }"),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.to_owned()))
    .collect();
    for depth in [1_000, 100_000] {
        cases.push((format!("{depth} nested tokens"), "#{".repeat(depth)));
        cases.push((
            format!("{depth} nested ifs"),
            "#{if Name}".repeat(depth) + &"#{/if}".repeat(depth),
        ));
        cases.push((
            format!("{depth} nested each"),
            "#{each x in List}".repeat(depth),
        ));
    }
    cases.push(("100k unknown tokens".to_owned(), "#{Nope}".repeat(100_000)));
    cases
}

#[test]
fn every_bad_parser_input_is_an_error_never_a_panic() {
    use chrono::TimeZone;
    let mut failures = Vec::new();
    let mut total = 0;

    let takofiles = takofile_cases();
    total += takofiles.len();
    failures.extend(run_parser_cases("takofile", &takofiles, |text| {
        tako_takofile::parse("takofile.yml", text)
    }));

    let manifests = psd1_cases();
    total += manifests.len();
    failures.extend(run_parser_cases("psd1", &manifests, |text| {
        tako_psd1::ModuleManifest::from_text(text)
    }));
    // The raw reader must not panic on any of them either.
    for (name, text) in &manifests {
        if catch_unwind(AssertUnwindSafe(|| tako_psd1::parse(text))).is_err() {
            failures.push(format!("psd1::parse: {name}: PANIC"));
        }
    }

    // The substitution engine continues on error: a bad template renders
    // with a warning (or fails with an error), never panics or loops.
    let ctx = tako_octostache::EvalContext {
        now_utc: chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap(),
        local_offset: chrono::FixedOffset::east_opt(0).unwrap(),
    };
    let mut variables = tako_octostache::VariableDictionary::new();
    variables.set("Name", "value");
    variables.set("Loop", "#{Loop}");
    variables.set("A", "#{B}");
    variables.set("B", "#{A}");
    variables.set("Json", r#"{"a": [1, 2]}"#);
    variables.set("List", "a,b,c");
    // Malformed syntax is echoed as text (Octopus's behaviour); what cannot
    // be evaluated must say so with a warning.
    let must_warn = [
        "unknown variable",
        "unknown filter",
        "self reference",
        "mutual reference",
        "100k unknown tokens",
    ];
    let templates = template_cases();
    total += templates.len();
    for (name, template) in &templates {
        match catch_unwind(AssertUnwindSafe(|| variables.evaluate(template, &ctx))) {
            Err(_) => failures.push(format!("octostache: {name}: PANIC")),
            Ok(Err(error)) if error.to_string().trim().len() < 10 => {
                failures.push(format!("octostache: {name}: vague error {error}"));
            }
            Ok(Err(_)) => {}
            Ok(Ok(rendered))
                if rendered.warnings.is_empty() && must_warn.contains(&name.as_str()) =>
            {
                failures.push(format!(
                    "octostache: {name}: rendered {:?} without a warning",
                    rendered.text.chars().take(80).collect::<String>()
                ));
            }
            Ok(Ok(_)) => {}
        }
    }

    // Webhook payloads and headers, below HTTP.
    let payloads: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("push", Some("application/json"), b"".to_vec()),
        ("push", Some("application/json"), b"[]".to_vec()),
        ("push", Some("application/json"), nested(100_000, "[", "]")),
        ("push", Some("application/json"), b"{\"ref\": 1}".to_vec()),
        ("push", Some("application/json"), b"\xff\xfe".to_vec()),
        ("push", Some("application/json"), b"\0".to_vec()),
        ("push", None, b"{}".to_vec()),
        ("push", Some("text/html"), b"{}".to_vec()),
        (
            "push",
            Some("application/x-www-form-urlencoded"),
            b"payload=%ZZ".to_vec(),
        ),
        (
            "push",
            Some("application/x-www-form-urlencoded"),
            b"nopayload".to_vec(),
        ),
        (
            "ping",
            Some("application/json"),
            b"{\"hook_id\": \"x\"}".to_vec(),
        ),
        ("issues", Some("application/json"), b"[1]".to_vec()),
        (
            "ping",
            Some("application/json"),
            "{\"a\":".repeat(100_000).into_bytes(),
        ),
    ];
    total += payloads.len();
    for (event, content_type, body) in &payloads {
        let name = format!(
            "{event} {content_type:?} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(40)])
        );
        match catch_unwind(AssertUnwindSafe(|| {
            tako_github::parse_event(event, *content_type, body)
        })) {
            Err(_) => failures.push(format!("parse_event: {name}: PANIC")),
            Ok(Ok(_)) => failures.push(format!("parse_event: {name}: accepted")),
            Ok(Err(error)) if error.to_string().len() < 10 => {
                failures.push(format!("parse_event: {name}: vague error {error}"));
            }
            Ok(Err(_)) => {}
        }
    }
    let signatures: Vec<(&[u8], Option<&str>)> = vec![
        (b"", Some("sha256=00")),
        (b"k", None),
        (b"k", Some("")),
        (b"k", Some("sha256=")),
        (b"k", Some("sha256=zz")),
        (b"k", Some("sha1=abc")),
        (
            b"k",
            Some(
                "sha256=\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
            ),
        ),
        (
            b"k",
            Some("sha256=0000000000000000000000000000000000000000000000000000000000000000"),
        ),
    ];
    total += signatures.len();
    for (secret, header) in &signatures {
        match catch_unwind(|| tako_github::verify_signature(secret, b"body", *header)) {
            Err(_) => failures.push(format!("verify_signature {header:?}: PANIC")),
            Ok(Ok(())) => failures.push(format!("verify_signature {header:?}: accepted")),
            Ok(Err(_)) => {}
        }
    }
    let long = "y".repeat(1000);
    let headers: Vec<(Option<&str>, Option<&str>)> = vec![
        (None, Some("d")),
        (Some("push"), None),
        (Some(""), Some("d")),
        (Some("push"), Some("  ")),
        (Some(&long), Some("d")),
        (Some("push"), Some(&long)),
        (Some("pu\0sh"), Some("d")),
        (Some("push"), Some("a\u{e9}")),
    ];
    total += headers.len();
    for (event, delivery) in &headers {
        match catch_unwind(|| tako_github::DeliveryHeaders::parse(*event, *delivery, None)) {
            Err(_) => failures.push(format!("DeliveryHeaders {event:?} {delivery:?}: PANIC")),
            Ok(Ok(_)) => failures.push(format!("DeliveryHeaders {event:?} {delivery:?}: accepted")),
            Ok(Err(_)) => {}
        }
    }

    eprintln!("corpus: {total} parser cases, {} failures", failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Hostile takofiles reach the server through git, not HTTP: each is
/// committed to a repository, pushed with a signed webhook, and the server
/// (auto-registering projects from takofiles) must record a specific
/// `ignored`/`failed` outcome for it and stay up; nothing is deployed.
#[test]
fn hostile_takofiles_pushed_through_the_server_are_refused_with_a_reason() {
    use tako_test_support::TempGitRepo;
    use tako_test_support::git_server::BareRepo;
    use tako_test_support::github::{PushedCommit, push_payload};

    let data = DataDir::new();
    let server = TakoServer::start(
        tako_bin(),
        &data.path,
        &["--auto-register-projects"],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token = server.token.clone().unwrap();
    let auth = format!("Bearer {token}");

    let mut laughs = String::from("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let mut previous = 'a';
    for name in 'b'..='j' {
        laughs.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(",")
        ));
        previous = name;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "billion laughs",
            format!("{laughs}Project: x\nSteps: *j\n").into_bytes(),
        ),
        (
            "100k-deep nesting",
            ("Project: x\nSteps: ".to_owned() + &"[".repeat(100_000) + &"]".repeat(100_000))
                .into_bytes(),
        ),
        ("invalid UTF-8", b"Project: \xff\xfe\nSteps: []\n".to_vec()),
        (
            "NUL bytes",
            b"Project: a\0b\nSteps:\n  - Name: s\n    Run: echo\n".to_vec(),
        ),
        (
            "path traversal as the project",
            b"Project: ../../etc/passwd\nSteps:\n  - Name: s\n    Run: echo\n".to_vec(),
        ),
        (
            "a 5 MiB scalar",
            format!("Project: {}\nSteps: [\n", "x".repeat(5 * 1024 * 1024)).into_bytes(),
        ),
        ("not YAML at all", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        (
            "truncated",
            b"Project: Demo\nMappings:\n  - Branch: main\n    Environ".to_vec(),
        ),
    ];
    let mut failures = Vec::new();
    for (n, (name, takofile)) in cases.iter().enumerate() {
        let work = TempGitRepo::new();
        std::fs::write(work.path().join("takofile.yml"), takofile).unwrap();
        let commit = work.commit("hostile takofile");
        let bare = BareRepo::new(&format!("hostile{n}"));
        bare.push_from(&work, &["main"]);
        let body = push_payload(
            &bare.file_url(),
            "main",
            "refs/heads/main",
            "0000000000000000000000000000000000000000",
            &commit,
            &[PushedCommit {
                id: commit.clone(),
                message: "hostile takofile".into(),
            }],
        );
        let delivery = format!("hostile-{n}");
        let signature = tako_github::sign(SECRET.as_bytes(), &body);
        let answer = request(
            &server.address,
            "POST",
            "/hooks/github",
            &[
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", &delivery),
                ("X-Hub-Signature-256", &signature),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(answer.status, 202, "{name}: {}", answer.text());
        let mut outcome = serde_json::Value::Null;
        tako_test_support::wait_until(Duration::from_secs(60), || {
            let list = request(
                &server.address,
                "GET",
                "/api/v1/deliveries?limit=200",
                &[("Authorization", &auth)],
                b"",
            )
            .unwrap()
            .json();
            outcome = list["items"]
                .as_array()
                .and_then(|items| items.iter().find(|d| d["id"] == delivery.as_str()))
                .map(|d| d["outcome"].clone())
                .unwrap_or_default();
            !outcome.is_null()
        });
        let kind = outcome["kind"].as_str().unwrap_or_default();
        let reason = outcome["reason"].as_str().unwrap_or_default();
        if !matches!(kind, "ignored" | "failed") || reason.len() < 10 {
            failures.push(format!("{name}: outcome {outcome}"));
        } else {
            eprintln!(
                "corpus: pushed takofile {name}: {kind}: {}",
                reason.chars().take(160).collect::<String>()
            );
        }
    }
    let health = request(&server.address, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(health.status, 200, "the server is still up");
    let deployments = request(
        &server.address,
        "GET",
        "/api/v1/deployments",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(deployments.json()["items"], serde_json::json!([]));
    eprintln!(
        "corpus: {} hostile takofiles pushed, {} failures",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
