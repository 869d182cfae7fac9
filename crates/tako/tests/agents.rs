//! `tako agent` administration end to end: a real `tako serve`, the real
//! `tako` CLI, and an agent enrolling over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use tako_test_support::http::{HttpResponse, request};
use tako_test_support::server::{DataDir, TakoServer};

fn tako_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tako"))
}

struct Admin {
    server: TakoServer,
    token: String,
    _data: DataDir,
}

impl Admin {
    fn start() -> Admin {
        let data = DataDir::new();
        let server = TakoServer::start(tako_bin(), &data.path, &[], &[]);
        let token = server.token.clone().unwrap();
        Admin {
            server,
            token,
            _data: data,
        }
    }

    fn tako(&self, args: &[&str]) -> Output {
        Command::new(tako_bin())
            .args(args)
            .env("TAKO_SERVER", format!("http://{}", self.server.address))
            .env("TAKO_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.tako(args);
        assert!(
            output.status.success(),
            "tako {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn agents(&self) -> Value {
        serde_json::from_str(&self.ok(&["agent", "list", "--output", "json"])).unwrap()
    }

    fn agent_call(
        &self,
        method: &str,
        path: &str,
        credential: Option<&str>,
        body: &Value,
    ) -> HttpResponse {
        let bearer = credential.map(|c| format!("Bearer {c}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer.as_str()));
        }
        request(
            &self.server.address,
            method,
            path,
            &headers,
            body.to_string().as_bytes(),
        )
        .unwrap()
    }
}

#[test]
fn an_admin_enrolls_approves_rotates_and_removes_an_agent_from_the_cli() {
    let admin = Admin::start();
    let token = admin.ok(&[
        "agent",
        "enroll-token",
        "--env",
        "Production",
        "--role",
        "ps",
        "--role",
        "windows",
        "--name",
        "win-01",
        "--expires",
        "30m",
    ]);
    let token = token.trim();
    assert!(token.starts_with("takoenroll_"), "{token}");

    let enrolled = admin.agent_call(
        "POST",
        "/api/v1/agent/enroll",
        None,
        &json!({"token": token, "name": "anything", "version": "0.1.0", "protocol": 1}),
    );
    assert_eq!(enrolled.status, 201, "{}", enrolled.text());
    let credential = enrolled.json()["credential"].as_str().unwrap().to_owned();

    let listed = admin.agents();
    assert_eq!(listed[0]["name"], "win-01");
    assert_eq!(listed[0]["state"], "pending");
    assert_eq!(listed[0]["roles"], json!(["ps", "windows"]));
    assert!(!listed.to_string().contains(&credential));
    let table = admin.ok(&["agent", "list"]);
    assert!(
        table.contains("win-01") && table.contains("pending"),
        "{table}"
    );

    admin.ok(&["agent", "approve", "win-01"]);
    let me = admin.agent_call("GET", "/api/v1/agent/me", Some(&credential), &json!({}));
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(admin.agents()[0]["state"], "online");

    // Approving twice is a clear refusal with a non-zero exit.
    let again = admin.tako(&["agent", "approve", "win-01"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("only a pending agent can"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let fresh = admin.ok(&["agent", "rotate", "win-01"]);
    let fresh = fresh.trim();
    assert!(fresh.starts_with("takoagent_"), "{fresh}");
    let old = admin.agent_call("GET", "/api/v1/agent/me", Some(&credential), &json!({}));
    assert_eq!(old.status, 401, "{}", old.text());
    let new = admin.agent_call("GET", "/api/v1/agent/me", Some(fresh), &json!({}));
    assert_eq!(new.status, 200, "{}", new.text());

    admin.ok(&["agent", "disable", "win-01"]);
    let disabled = admin.agent_call("GET", "/api/v1/agent/me", Some(fresh), &json!({}));
    assert_eq!(disabled.status, 403, "{}", disabled.text());
    admin.ok(&["agent", "remove", "win-01"]);
    assert_eq!(admin.agents(), json!([]));

    let bad = admin.tako(&[
        "agent",
        "enroll-token",
        "--env",
        "P",
        "--role",
        "r",
        "--expires",
        "soon",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("30m, 1h or 2d"));
}
