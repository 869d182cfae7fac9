//! Real git remotes for tests: bare repositories in temporary directories and
//! a smart-HTTP server on 127.0.0.1 that runs `git http-backend` as a CGI
//! program, optionally requiring HTTP Basic authentication with a token.
//!
//! The server is deliberately small: one thread accepting connections, one
//! thread per connection, one request per connection (`Connection: close`),
//! request bodies by `Content-Length` or chunked. Pushes are enabled
//! (`http.receivepack`), so tests of tag pushing can use it too.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tempfile::TempDir;

use crate::{TempGitRepo, git_command};

/// A bare repository in a temporary directory (`<tmp>/<name>`), filled by
/// pushing from a [`TempGitRepo`].
pub struct BareRepo {
    dir: TempDir,
    name: String,
}

impl BareRepo {
    /// `git init --bare -b main <tmp>/<name>`.
    pub fn new(name: &str) -> BareRepo {
        let dir = tempfile::Builder::new()
            .prefix("tako-test-bare-")
            .tempdir()
            .expect("a temporary directory can be created");
        let output = git_command(dir.path())
            .args(["init", "-q", "--bare", "-b", "main", name])
            .output()
            .expect("git can be run");
        assert!(
            output.status.success(),
            "git init --bare failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        BareRepo {
            dir,
            name: name.to_owned(),
        }
    }

    /// The directory holding the repository (a `GIT_PROJECT_ROOT`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's name under [`BareRepo::root`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository's path.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(&self.name)
    }

    /// Its `file://` URL.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path().display())
    }

    /// Pushes `refspecs` (e.g. `main`, `--tags`) from `work` (forced).
    pub fn push_from(&self, work: &TempGitRepo, refspecs: &[&str]) {
        let target = self.path();
        let target = target.to_string_lossy();
        let mut args = vec!["push", "-q", "-f", target.as_ref()];
        args.extend_from_slice(refspecs);
        work.git(&args);
    }

    /// Runs git inside the bare repository; returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = git_command(&self.path())
            .args(args)
            .output()
            .expect("git can be run");
        assert!(
            output.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// One request the server answered: method, path and query, status, and
/// whether an `Authorization` header came with it.
#[derive(Debug, Clone)]
pub struct ServedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Path and query string.
    pub target: String,
    /// The status sent back.
    pub status: u16,
    /// Whether the request carried an `Authorization` header.
    pub authorized_header: bool,
}

/// A smart-HTTP git server on 127.0.0.1 serving the repositories under a
/// project root. Stops when dropped.
pub struct GitHttpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<ServedRequest>>>,
    accept_thread: Option<JoinHandle<()>>,
}

impl GitHttpServer {
    /// Serves `project_root` to anyone.
    pub fn start(project_root: &Path) -> GitHttpServer {
        GitHttpServer::spawn(project_root, None)
    }

    /// Serves `project_root` only to requests with `Authorization: Basic`
    /// whose password is `token` (any user name); others get 401.
    pub fn with_token(project_root: &Path, token: &str) -> GitHttpServer {
        GitHttpServer::spawn(project_root, Some(token.to_owned()))
    }

    fn spawn(project_root: &Path, token: Option<String>) -> GitHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port can be bound");
        let addr = listener.local_addr().expect("the bound address is known");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let context = Arc::new(Context {
            root: project_root.to_path_buf(),
            token,
            requests: Arc::clone(&requests),
        });
        let stop_flag = Arc::clone(&stop);
        let accept_thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let context = Arc::clone(&context);
                std::thread::spawn(move || {
                    let _ = serve(stream, &context);
                });
            }
        });
        GitHttpServer {
            addr,
            stop,
            requests,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:<port>/<repository>`.
    pub fn url(&self, repository: &str) -> String {
        format!("http://{}/{repository}", self.addr)
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<ServedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread up so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

struct Context {
    root: PathBuf,
    token: Option<String>,
    requests: Arc<Mutex<Vec<ServedRequest>>>,
}

fn serve(stream: TcpStream, context: &Context) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let body = read_body(&mut reader, &headers)?;
    let authorization = headers.get("authorization");
    let allowed = match &context.token {
        None => true,
        Some(token) => authorization
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| base64_decode(encoded.trim()))
            .and_then(|pair| {
                String::from_utf8(pair)
                    .ok()?
                    .split_once(':')
                    .map(|(_, p)| p == token)
            })
            .unwrap_or(false),
    };
    let mut stream = stream;
    let status = if allowed {
        run_backend(&mut stream, context, &method, &target, &headers, &body)?
    } else {
        let body = "authentication required\n";
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"tako-test\"\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        401
    };
    context
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(ServedRequest {
            method,
            target,
            status,
            authorized_header: authorization.is_some(),
        });
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_text = size_line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(length) = headers.get("content-length") {
        let length: usize = length.parse().unwrap_or(0);
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

fn run_backend(
    stream: &mut TcpStream,
    context: &Context,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> std::io::Result<u16> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut command = Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("GIT_PROJECT_ROOT", &context.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(content_type) = headers.get("content-type") {
        command.env("CONTENT_TYPE", content_type);
    }
    for (name, value) in headers {
        let variable = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        if variable != "HTTP_AUTHORIZATION" {
            command.env(variable, value);
        }
    }
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take();
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(&body);
        }
    });
    let mut output = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_end(&mut output)?;
    }
    let _ = writer.join();
    child.wait()?;
    // CGI response: headers, a blank line, the body.
    let (head, rest) = split_cgi(&output);
    let mut status = 200u16;
    let mut response_headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        let line = line.trim_end();
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("status") {
                status = value
                    .split_whitespace()
                    .next()
                    .and_then(|code| code.parse().ok())
                    .unwrap_or(500);
            } else {
                response_headers.push(format!("{}: {}", name.trim(), value.trim()));
            }
        }
    }
    write!(stream, "HTTP/1.1 {status} Git\r\n")?;
    for header in response_headers {
        write!(stream, "{header}\r\n")?;
    }
    write!(
        stream,
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        rest.len()
    )?;
    stream.write_all(rest)?;
    Ok(status)
}

/// Splits CGI output at the first blank line (`\r\n\r\n` or `\n\n`).
fn split_cgi(output: &[u8]) -> (&[u8], &[u8]) {
    for (index, window) in output.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&output[..index], &output[index + 2..]);
        }
        if window == b"\r\n" && output[index + 2..].starts_with(b"\r\n") {
            return (&output[..index], &output[index + 4..]);
        }
    }
    (output, &[])
}

/// Standard base64 (with or without padding); `None` when malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes() {
        assert_eq!(
            base64_decode("eC1hY2Nlc3MtdG9rZW46YWJj").as_deref(),
            Some(&b"x-access-token:abc"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("!"), None);
    }

    #[test]
    fn cgi_split() {
        let (head, body) = split_cgi(b"Status: 200\r\nA: b\r\n\r\nbody");
        assert_eq!(head, b"Status: 200\r\nA: b");
        assert_eq!(body, b"body");
    }
}
