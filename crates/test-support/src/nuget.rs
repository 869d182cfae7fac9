//! A real third-party NuGet v2 server on 127.0.0.1 for the `publish-psmodule`
//! tests: minchoc (a Django app served by uvicorn) or pynuget (a Flask app),
//! both from PyPI, pinned in `nuget-peer/requirements.lock`.
//!
//! The Python packages live in a venv made by `scripts/test`
//! (`target/nuget-peer-venv`, or `$TAKO_NUGET_PEER_VENV`). Without it a test
//! fails in CI (`CI=true`) and is skipped loudly elsewhere. Each
//! [`NugetPeer`] has its own port and data directory (database and pushed
//! packages) and is killed on drop. `nuget-peer/site` holds our Django
//! project around minchoc, with a small nuspec-namespace shim (see its
//! `apps.py`); `nuget-peer/pynuget/serve.py` runs pynuget without Apache.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http::{HttpResponse, request};

/// The API key a minchoc peer accepts (minchoc keys are UUIDs).
pub const MINCHOC_API_KEY: &str = "c0ffee00-0000-4000-8000-000000005555";

/// The API key a pynuget peer accepts.
pub const PYNUGET_API_KEY: &str = "pynuget-test-key-5557";

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NugetImpl {
    /// minchoc 0.2 (Django + uvicorn): feed at `/api/v2/`, can serve a
    /// pushed package back; no prerelease versions.
    Minchoc,
    /// pynuget 0.2.5 (Flask): feed at `/`; takes prerelease versions;
    /// downloads are broken (read the stored file instead).
    Pynuget,
}

/// A running NuGet v2 server, killed on drop.
pub struct NugetPeer {
    kind: NugetImpl,
    child: Child,
    port: u16,
    data: TempDir,
}

/// Where the peer's venv is: `$TAKO_NUGET_PEER_VENV`, or
/// `<workspace>/target/nuget-peer-venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("TAKO_NUGET_PEER_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate::workspace_root().join("target/nuget-peer-venv"),
    }
}

/// The recipe folder (`crates/test-support/nuget-peer`).
fn recipe_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nuget-peer")
}

impl NugetPeer {
    /// Starts a server of `kind` on a free port. `None` (after printing why)
    /// when the venv is missing outside CI; in CI a missing venv panics.
    #[allow(clippy::print_stderr)]
    pub fn start(kind: NugetImpl) -> Option<NugetPeer> {
        let venv = venv_dir();
        let ready = venv.join("bin/python").is_file() && venv.join("bin/uvicorn").is_file();
        if !ready {
            let reason = format!(
                "the NuGet peer venv {} is missing: run scripts/test (it creates it with \
                 `python3 -m venv` and `pip install -r crates/test-support/nuget-peer/requirements.lock`) \
                 or point TAKO_NUGET_PEER_VENV at such a venv",
                venv.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason}");
            }
            eprintln!("\n*** SKIPPED: {reason} ***\n");
            return None;
        }
        let mut last_error = String::new();
        for _ in 0..3 {
            match NugetPeer::try_start(kind, &venv) {
                Ok(peer) => return Some(peer),
                Err(error) => last_error = error,
            }
        }
        panic!("the NuGet peer ({kind:?}) did not start: {last_error}");
    }

    fn try_start(kind: NugetImpl, venv: &Path) -> Result<NugetPeer, String> {
        let data = tempfile::Builder::new()
            .prefix("tako-nuget-peer-")
            .tempdir()
            .map_err(|e| format!("no temporary directory: {e}"))?;
        let port = free_port()?;
        let log = std::fs::File::create(data.path().join("server.log"))
            .map_err(|e| format!("cannot create the server log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot clone the log handle: {e}"))?;
        let site = recipe_dir().join("site");
        let mut command = match kind {
            NugetImpl::Minchoc => {
                std::fs::create_dir_all(data.path().join("media"))
                    .map_err(|e| format!("cannot create the media directory: {e}"))?;
                let setup = python_command(venv, data.path())
                    .arg(site.join("nugetpeer/setup_peer.py"))
                    .arg(MINCHOC_API_KEY)
                    .output()
                    .map_err(|e| format!("cannot run setup_peer.py: {e}"))?;
                if !setup.status.success() {
                    return Err(format!(
                        "setup_peer.py failed: {}",
                        String::from_utf8_lossy(&setup.stderr)
                    ));
                }
                let mut command = python_command(venv, data.path());
                command.args([
                    "-m",
                    "uvicorn",
                    "nugetpeer.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--app-dir",
                ]);
                command.arg(&site);
                command
            }
            NugetImpl::Pynuget => {
                let mut command = python_command(venv, data.path());
                command
                    .arg(recipe_dir().join("pynuget/serve.py"))
                    .arg(port.to_string())
                    .arg(PYNUGET_API_KEY)
                    .arg(data.path());
                command
            }
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start the server: {e}"))?;
        let mut peer = NugetPeer {
            kind,
            child,
            port,
            data,
        };
        let probe = match kind {
            NugetImpl::Minchoc => "/api/v2/",
            NugetImpl::Pynuget => "/$metadata",
        };
        let start = Instant::now();
        loop {
            if let Ok(response) = request(&peer.address(), "GET", probe, &[], b"")
                && response.status == 200
            {
                return Ok(peer);
            }
            if let Ok(Some(status)) = peer.child.try_wait() {
                return Err(format!("the server exited ({status}): {}", peer.log()));
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the server did not answer within 30 s: {}",
                    peer.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> NugetImpl {
        self.kind
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The feed URL a NuGet client is given (no trailing slash).
    pub fn feed_url(&self) -> String {
        match self.kind {
            NugetImpl::Minchoc => format!("http://127.0.0.1:{}/api/v2", self.port),
            NugetImpl::Pynuget => format!("http://127.0.0.1:{}/", self.port),
        }
    }

    /// The path packages are pushed to (`PUT`).
    pub fn push_path(&self) -> &'static str {
        "/api/v2/package/"
    }

    /// The API key the server accepts.
    pub fn api_key(&self) -> &'static str {
        match self.kind {
            NugetImpl::Minchoc => MINCHOC_API_KEY,
            NugetImpl::Pynuget => PYNUGET_API_KEY,
        }
    }

    /// Pushes `nupkg` the way nuget.exe does (multipart, `X-NuGet-ApiKey`),
    /// with a Content-Length.
    pub fn push(&self, nupkg: &[u8]) -> HttpResponse {
        let boundary = "tako-test-boundary-7f3a9c";
        let mut body = format!(
            "--{boundary}\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: form-data; name=\"package\"; filename=\"package.nupkg\"\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(nupkg);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary=\"{boundary}\"");
        request(
            &self.address(),
            "PUT",
            self.push_path(),
            &[
                ("X-NuGet-ApiKey", self.api_key()),
                ("Content-Type", &content_type),
            ],
            &body,
        )
        .expect("the NuGet peer answers a push")
    }

    /// A `GET` of `path` on the server.
    pub fn get(&self, path: &str) -> HttpResponse {
        request(&self.address(), "GET", path, &[], b"").expect("the NuGet peer answers a GET")
    }

    /// The stored bytes of package `id` `version`, as the server gives them
    /// back: downloaded from minchoc; read from pynuget's package folder
    /// (its download route is broken under Flask 3).
    pub fn package(&self, id: &str, version: &str) -> Option<Vec<u8>> {
        match self.kind {
            NugetImpl::Minchoc => {
                let response = self.get(&format!("/api/v2/package/{id}/{version}"));
                (response.status == 200).then_some(response.body)
            }
            NugetImpl::Pynuget => {
                // pynuget stores <data>/nuget_packages/<id>/<version>.nupkg.
                let wanted = format!("{version}.nupkg").to_ascii_lowercase();
                let folder = std::fs::read_dir(self.data.path().join("nuget_packages"))
                    .ok()?
                    .flatten()
                    .find(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(id))
                    })?;
                find_file(&folder.path(), &|name| name.to_ascii_lowercase() == wanted)
                    .and_then(|path| std::fs::read(path).ok())
            }
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text =
            std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default();
        if let Ok(more) = std::fs::read_to_string(self.data.path().join("pynuget.log")) {
            text.push_str(&more);
        }
        text
    }
}

impl Drop for NugetPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python command from the venv with a small, pinned environment.
fn python_command(venv: &Path, data: &Path) -> Command {
    let mut command = Command::new(venv.join("bin/python"));
    command
        .current_dir(data)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .env("LANG", "C.UTF-8")
        .env("HOME", data)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NUGET_PEER_DATA", data)
        .env("DJANGO_SETTINGS_MODULE", "nugetpeer.settings")
        .env("PYTHONPATH", recipe_dir().join("site"));
    command
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no local address: {e}"))
}

/// The first file under `dir` whose name satisfies `wanted`.
fn find_file(dir: &Path, wanted: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, wanted) {
                return Some(found);
            }
        } else if entry.file_name().to_str().is_some_and(wanted) {
            return Some(path);
        }
    }
    None
}
