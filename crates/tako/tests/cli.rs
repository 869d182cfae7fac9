//! The client commands end to end: the real `tako` binary against a real
//! `tako serve` on 127.0.0.1 (port 0) in a temporary data directory.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

fn tako() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tako"));
    command.env_remove("TAKO_SERVER").env_remove("TAKO_TOKEN");
    command
}

/// A `tako serve` child, killed on drop.
struct Server {
    child: Child,
    url: String,
    token: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut child = tako()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("TAKO_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut token = None;
        let url = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("tako serve did not say where it listens");
            if let Some(indented) = line.strip_prefix("    ") {
                token = Some(indented.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("Tako listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Server {
            child,
            url,
            token: token.expect("no first-start token printed"),
            _data: data,
        }
    }

    fn tako(&self, args: &[&str]) -> Command {
        let mut command = tako();
        command
            .args(args)
            .env("TAKO_SERVER", &self.url)
            .env("TAKO_TOKEN", &self.token);
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.tako(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            output.status.success(),
            "tako {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .tako(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "tako {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn projects_and_variables_round_trip_without_showing_secrets() {
    let server = Server::start();
    let created = server.run_with_stdin(
        &[
            "project",
            "create",
            "web",
            "--repo",
            "https://github.com/acme/web",
            "--webhook-secret-stdin",
        ],
        "hook-secret-value\n",
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("Project web registered"));

    let list = json(&server.run(&["project", "list", "--output", "json"]));
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["repository"], "https://github.com/acme/web");
    assert_eq!(list[0]["has_webhook_secret"], true);
    let table = server.run(&["project", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(!table.contains("hook-secret-value"));

    server.run_with_stdin(
        &[
            "var",
            "set",
            "DbPassword",
            "--project",
            "web",
            "--env",
            "Production",
            "--sensitive",
        ],
        "hunter2-secret\n",
    );
    server.run(&["var", "set", "Greeting", "hello", "--project", "web"]);
    let vars = server.run(&["var", "list", "--project", "web", "--output", "json"]);
    assert!(!String::from_utf8_lossy(&vars.stdout).contains("hunter2-secret"));
    let vars = json(&vars);
    let find = |name: &str| {
        vars.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(find("DbPassword")["value"], "********");
    assert_eq!(find("DbPassword")["environments"][0], "Production");
    assert_eq!(find("Greeting")["value"], "hello");

    let releases = json(&server.run(&["release", "list", "--project", "web", "--output", "json"]));
    assert_eq!(releases, serde_json::json!([]));

    // A new token works; the server refuses a wrong one with a clear message.
    let token = server.run(&["token", "create", "--name", "ci"]);
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    assert!(token.starts_with("tako_"), "{token}");
    let with_new = server
        .tako(&["project", "list", "--token", &token])
        .output()
        .unwrap();
    assert!(with_new.status.success());
    let refused = server
        .tako(&["project", "list", "--token", "tako_wrong"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("the server refused the token"), "{stderr}");
}

#[test]
fn unknown_things_are_reported_with_the_servers_message() {
    let server = Server::start();
    let output = server
        .tako(&[
            "deploy",
            "--project",
            "nope",
            "--release",
            "1.0.0",
            "--env",
            "Production",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("project nope not found"), "{stderr}");

    let output = server.tako(&["cancel", "12345"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("404"), "{stderr}");
}

#[test]
fn a_server_that_is_down_is_named_with_a_hint() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let output = tako()
        .args(["project", "list", "--server", &url, "--token", "tako_x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the Tako server at {url}")),
        "{stderr}"
    );
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert!(stderr.contains("tako serve"), "{stderr}");
}
