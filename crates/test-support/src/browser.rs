//! Headless Chromium for the web UI's end-to-end tests, driven through
//! WebDriver: Debian's `chromedriver` is started on a free port of
//! 127.0.0.1 and `/usr/bin/chromium` is opened through it.
//!
//! A missing Chromium or chromedriver is a test failure (never a skip): the
//! message says how to install them (`scripts/test` does).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian installs its WebDriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver and one browser session; both end when dropped
/// (call [`Browser::close`] to end the session cleanly first).
pub struct Browser {
    driver: Child,
    profile: tempfile::TempDir,
    /// The WebDriver client.
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280×900.
    ///
    /// # Panics
    /// When Chromium or chromedriver is missing or does not start.
    pub async fn start() -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the web UI tests need headless Chromium; \
                 install it with `apt-get install chromium chromium-driver` (scripts/test does) \
                 (package {package})"
            );
        }
        let port = free_port();
        // Its own process group: dropping the browser (a failed test too)
        // kills chromedriver and every Chromium process it started.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let user_data_dir = format!("--user-data-dir={}", profile.path().display());
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-extensions", "--no-first-run", "--window-size=1280,900",
                    "--force-prefers-reduced-motion", user_data_dir
                ]
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            // chromedriver speaks plain HTTP on loopback: no TLS stack.
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("chromedriver at {url} did not open Chromium: {error}"),
            }
        };
        Browser {
            driver,
            profile,
            client,
        }
    }

    /// Text found in the command line of this browser's Chromium (its
    /// own profile directory), to look for its processes.
    pub fn marker(&self) -> String {
        self.profile.path().display().to_string()
    }

    /// Ends the browser session.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
        // Dropping `self` stops chromedriver.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
