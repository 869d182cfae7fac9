//! Takofukku's own mode, end to end (octopus-forward.md §8.5): a real
//! `tako serve` configured with an `[[octopus]]` allow-list, real pushes
//! from a real repository, and the Octopus stand-in of
//! `tako_test_support::octopus` (Octopus cannot run here), which checks
//! every request as the spec lists it and records them all.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tako_store::{
    Deployment, DeploymentFilter, DeploymentKind, DeploymentState, LogCursor, PageRequest,
    SqliteStore, Store,
};
use tako_test_support::http::request;
use tako_test_support::octopus::{ErrorStyle, Fault, OctopusStandIn, Package, ProjectSpec};
use tako_test_support::origin::{Origin, post_push};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::wait_until;

const SECRET: &str = "octopus webhook secret";
const KEY: &str = "API-TAKOCANARY0123456789";

struct Setup {
    octopus: OctopusStandIn,
    data: DataDir,
    server: Option<TakoServer>,
    origin: Origin,
    log: tempfile::NamedTempFile,
    config: tempfile::NamedTempFile,
    pushes: usize,
    token: String,
}

fn takofile(server: &str, create_release: bool) -> String {
    format!(
        "Project: StatuscakeDSC\nServer: {server}\nCreateRelease: {create_release}\nMappings:\n  - Branch: main\n    Environment: Production\n"
    )
}

impl Setup {
    /// A stand-in with the seed's project and environments, a server
    /// allow-listing it with `extra` config lines, a repository whose
    /// takofile names `server` (the stand-in's URL when `None`).
    fn start(extra: &str, server: Option<&str>, create_release: bool) -> Setup {
        let octopus = OctopusStandIn::start(KEY);
        octopus.add_environments(&["Pre-Production", "Production-EU", "Production"]);
        octopus.add_project("StatuscakeDSC", ProjectSpec::default());
        let server_url = server.map_or_else(|| format!("{}/", octopus.url()), str::to_owned);
        let origin = Origin::new(&takofile(&server_url, create_release));
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            config.path(),
            format!(
                "[[octopus]]\nurl = \"{}/api\"\napi_key_env = \"TAKO_OCTOPUS_KEY\"\npoll_interval = \"100ms\"\n{extra}\n",
                octopus.url()
            ),
        )
        .unwrap();
        let mut setup = Setup {
            octopus,
            data: DataDir::new(),
            server: None,
            origin,
            log: tempfile::NamedTempFile::new().unwrap(),
            config,
            pushes: 0,
            token: String::new(),
        };
        setup.boot();
        setup
    }

    fn boot(&mut self) {
        let config = self.config.path().display().to_string();
        self.server = Some(TakoServer::start_logging_to(
            Path::new(env!("CARGO_BIN_EXE_tako")),
            &self.data.path,
            &["--auto-register-projects", "--config", &config],
            &[
                ("TAKO_WEBHOOK_SECRET", SECRET),
                ("TAKO_OCTOPUS_KEY", KEY),
                ("TAKO_LOG", "info"),
            ],
            self.log.path(),
        ));
        if let Some(token) = self.server().token.clone() {
            self.token = token;
        }
    }

    fn server(&self) -> &TakoServer {
        self.server.as_ref().unwrap()
    }

    /// Pushes a commit to main; returns the delivery id.
    fn push(&mut self) -> String {
        self.pushes += 1;
        let delivery = format!("octo-delivery-{}", self.pushes);
        let body = self.origin.push_commit(
            "main",
            "app.txt",
            &format!("change {}", self.pushes),
            &format!("Change number {}", self.pushes),
        );
        let answer = post_push(&self.server().address, &delivery, &body, SECRET);
        assert_eq!(answer.status, 202, "{}", answer.text());
        delivery
    }

    fn db(&self) -> (Arc<dyn Store>, tokio::runtime::Runtime) {
        (
            Arc::new(SqliteStore::open(self.data.path.join("tako.db")).unwrap()),
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        )
    }

    fn deployments(&self) -> Vec<Deployment> {
        let (store, runtime) = self.db();
        let mut all = runtime
            .block_on(store.list_deployments(&DeploymentFilter::default(), PageRequest::first(100)))
            .unwrap()
            .items;
        all.reverse();
        all
    }

    /// Waits for the `n`-th deployment (1-based) to end.
    fn finished(&self, n: usize) -> Deployment {
        let done = wait_until(Duration::from_secs(60), || {
            self.deployments().get(n - 1).is_some_and(|d| {
                !matches!(d.state, DeploymentState::Queued | DeploymentState::Running)
            })
        });
        assert!(
            done,
            "deployment {n} did not end: {:?}\ncalls: {:#?}\nlog: {}",
            self.deployments(),
            self.octopus.calls(),
            std::fs::read_to_string(self.log.path()).unwrap_or_default()
        );
        self.deployments()[n - 1].clone()
    }

    fn task_log(&self, deployment: &Deployment) -> String {
        let (store, runtime) = self.db();
        runtime
            .block_on(store.read_log(deployment.id, LogCursor::START, 10_000))
            .unwrap()
            .lines
            .iter()
            .map(|l| l.text.clone())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn api(&self, path: &str) -> Value {
        let token = format!("Bearer {}", self.token);
        let answer = request(
            &self.server().address,
            "GET",
            path,
            &[("Authorization", &token)],
            b"",
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        assert!(!answer.text().contains(KEY), "the key leaked into {path}");
        answer.json()
    }

    /// A web UI page, signed in with the test's token (the form posts the
    /// token, the cookie it sets reads the page).
    fn ui_page(&self, path: &str) -> String {
        let address = &self.server().address;
        let body = format!("token={}", self.token);
        let signed_in = request(
            address,
            "POST",
            "/ui/sign-in",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(signed_in.status, 303, "{}", signed_in.text());
        let cookie = signed_in
            .headers
            .iter()
            .find(|(name, _)| name == "set-cookie")
            .and_then(|(_, value)| value.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let page = request(address, "GET", path, &[("Cookie", &cookie)], b"").unwrap();
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert!(!page.text().contains(KEY), "the key leaked into {path}");
        page.text()
    }

    /// The deployment's `forward` object through the API.
    fn forward(&self, deployment: &Deployment) -> Value {
        let answer = self.api(&format!("/api/v1/deployments/{}", deployment.id.0));
        assert_eq!(answer["kind"], "octopus", "{answer}");
        answer["forward"].clone()
    }

    /// No violation, and the key only ever in `X-Octopus-ApiKey` (never on
    /// `GET /api`'s query, never in a URL), nowhere in Tako's log, its
    /// database or its API answers.
    fn assert_clean(&self) {
        assert_eq!(self.octopus.violations(), Vec::<String>::new());
        for call in self.octopus.recorded() {
            assert!(!call.target.contains(KEY), "key in a URL: {}", call.target);
            assert!(!call.body.to_string().contains(KEY), "key in a body");
            if call.path != "/api" {
                assert_eq!(
                    call.api_key.as_deref(),
                    Some(KEY),
                    "{} {}",
                    call.method,
                    call.path
                );
            }
            assert!(call.header_names.iter().any(|h| h == "x-octopus-apikey"));
            assert!(call.header_names.iter().any(|h| h == "user-agent"));
        }
        let log = std::fs::read_to_string(self.log.path()).unwrap();
        assert!(!log.contains(KEY), "the key leaked into the server log");
        for entry in std::fs::read_dir(&self.data.path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                    "the key is in {}",
                    path.display()
                );
            }
        }
        for path in ["/api/v1/deliveries", "/api/v1/deployments"] {
            self.api(path);
        }
    }
}

#[test]
fn resources_mode_makes_the_spec_calls_in_order_and_mirrors_the_task() {
    let mut setup = Setup::start("", None, true);
    let delivery = setup.push();
    let deployment = setup.finished(1);
    assert_eq!(deployment.kind, DeploymentKind::Octopus);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    let calls = setup.octopus.calls();
    let expected = [
        "GET /api".to_owned(),
        "GET /api/users/me".to_owned(),
        "GET /api/Spaces-1/environments?partialName=Production&skip=0&take=100".to_owned(),
        "GET /api/Spaces-1/projects?partialName=StatuscakeDSC&skip=0&take=100".to_owned(),
        "GET /api/Spaces-1/projects/Projects-5/channels?skip=0&take=100".to_owned(),
        "GET /api/Spaces-1/deploymentprocesses/deploymentprocess-Projects-5/template?channel=Channels-6"
            .to_owned(),
        "POST /api/Spaces-1/releases".to_owned(),
        "POST /api/Spaces-1/deployments".to_owned(),
        "GET /api/Spaces-1/tasks/ServerTasks-9".to_owned(),
        "GET /api/Spaces-1/tasks/ServerTasks-9".to_owned(),
        "GET /api/Spaces-1/tasks/ServerTasks-9".to_owned(),
    ];
    assert_eq!(calls, expected);
    let recorded = setup.octopus.recorded();
    let release = &recorded[6].body;
    let keys: Vec<&String> = release.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "F8 has exactly the spec's fields: {release}");
    assert_eq!(release["ProjectId"], "Projects-5");
    assert_eq!(release["ChannelId"], "Channels-6");
    assert_eq!(release["Version"], "0.0.1");
    assert_eq!(release["SelectedPackages"], serde_json::json!([]));
    assert_eq!(release["SpaceId"], "Spaces-1");
    let notes = release["ReleaseNotes"].as_str().unwrap();
    assert!(notes.contains("Change number 1"), "{notes}");
    assert!(
        notes.ends_with(&format!("Created by Tako delivery {delivery}")),
        "{notes}"
    );
    assert_eq!(
        recorded[7].body,
        serde_json::json!({"ReleaseId": "Releases-7", "EnvironmentId": "Environments-4",
            "ProjectId": "Projects-5", "SpaceId": "Spaces-1", "Comments": format!("Tako delivery {delivery}")})
    );
    let forward = setup.forward(&deployment);
    assert_eq!(forward["mode"], "resources");
    assert_eq!(forward["octopus_user"], "tako-bot");
    assert_eq!(forward["octopus_version"], "2024.1.0");
    assert_eq!(forward["release"]["version"], "0.0.1");
    assert_eq!(forward["release"]["created"], true);
    assert_eq!(forward["deployment_id"], "Deployments-8");
    assert_eq!(forward["task"]["state"], "Success");
    assert_eq!(
        forward["links"]["release"],
        format!("{}/app#/Spaces-1/releases/Releases-7", setup.octopus.url())
    );
    assert_eq!(
        forward["links"]["task"],
        format!("{}/app#/Spaces-1/tasks/ServerTasks-9", setup.octopus.url())
    );
    let log = setup.task_log(&deployment);
    for line in [
        "octopus: ServerTasks-9 Queued",
        "octopus: ServerTasks-9 Executing",
        "octopus: ServerTasks-9 Success",
    ] {
        assert!(log.contains(line), "{log}");
    }
    let deliveries = setup.api("/api/v1/deliveries");
    let listed = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == delivery.as_str())
        .expect("the delivery is listed");
    assert_eq!(
        listed["forward"], forward,
        "the delivery carries the forward record"
    );
    let page = setup.ui_page(&format!("/ui/deployments/{}", deployment.id.0));
    assert!(page.contains("Forwarded to Octopus"), "{page}");
    for shown in [
        format!(
            "href=\"{}/app#/Spaces-1/releases/Releases-7\"",
            setup.octopus.url()
        ),
        format!(
            "href=\"{}/app#/Spaces-1/tasks/ServerTasks-9\"",
            setup.octopus.url()
        ),
        "StatuscakeDSC (Projects-5)".to_owned(),
        "Deployments-8".to_owned(),
    ] {
        assert!(
            page.contains(&shown),
            "{shown} missing from the page: {page}"
        );
    }
    setup.assert_clean();
}

#[test]
fn executions_mode_posts_e1_and_e2_and_older_octopus_gets_no_post() {
    let mut setup = Setup::start("mode = \"executions\"", None, true);
    setup.octopus.fault(
        "POST",
        "/api/Spaces-1/deployments/create/untenanted/v1",
        Fault::CamelCase,
        1,
    );
    let delivery = setup.push();
    let deployment = setup.finished(1);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    let calls = setup.octopus.calls();
    assert_eq!(
        &calls[..4],
        [
            "GET /api",
            "GET /api/users/me",
            "POST /api/Spaces-1/releases/create/v1",
            "POST /api/Spaces-1/deployments/create/untenanted/v1"
        ]
    );
    assert!(
        calls[4..]
            .iter()
            .all(|c| c.starts_with("GET /api/Spaces-1/tasks/ServerTasks-"))
    );
    let recorded = setup.octopus.recorded();
    let e1 = &recorded[2].body;
    assert_eq!(e1.as_object().unwrap().len(), 4, "{e1}");
    assert_eq!(e1["SpaceId"], "Spaces-1");
    assert_eq!(e1["SpaceIdOrName"], "Spaces-1");
    assert_eq!(e1["ProjectName"], "StatuscakeDSC");
    assert!(e1["ReleaseNotes"].as_str().unwrap().contains(&delivery));
    assert_eq!(
        recorded[3].body,
        serde_json::json!({"SpaceId": "Spaces-1", "SpaceIdOrName": "Spaces-1", "ProjectName": "StatuscakeDSC",
            "ReleaseVersion": "0.0.1", "EnvironmentNames": ["Production"]})
    );
    // The camelCase answer was understood: the task was followed.
    assert_eq!(setup.forward(&deployment)["task"]["state"], "Success");

    setup.octopus.set_version("2022.2.0");
    let before = setup.octopus.recorded().len();
    setup.push();
    let refused = setup.finished(2);
    assert_eq!(refused.state, DeploymentState::Failed);
    let forward = setup.forward(&refused);
    assert_eq!(
        forward["error"]["kind"], "executions_unsupported",
        "{forward}"
    );
    assert!(
        setup.octopus.recorded()[before..]
            .iter()
            .all(|r| r.method == "GET"),
        "{:?}",
        setup.octopus.calls()
    );
    setup.assert_clean();
}

#[test]
fn a_server_not_allowlisted_gets_nothing_and_the_delivery_says_why() {
    let mut setup = Setup::start("", Some("https://elsewhere.example.com/"), true);
    let delivery = setup.push();
    // Tako handles the push itself: the takofile has no Steps, so the
    // delivery fails, carrying the warning.
    assert!(wait_until(Duration::from_secs(30), || {
        let deliveries = setup.api("/api/v1/deliveries");
        deliveries["items"][0]["state"] == "done"
    }));
    let deliveries = setup.api("/api/v1/deliveries");
    let item = &deliveries["items"][0];
    assert_eq!(item["id"], delivery);
    assert_eq!(
        item["warnings"],
        serde_json::json!([
            "octopus server not in forward allowlist: https://elsewhere.example.com"
        ])
    );
    assert!(setup.octopus.recorded().is_empty());
}

#[test]
fn the_takofile_server_is_normalised_before_it_is_compared() {
    // The stand-in's URL with its scheme in capitals and `/API/` (the
    // default-port case is the normalisation's unit test).
    let mut setup = Setup::start("", None, true);
    let shouted = format!("{}/API/", setup.octopus.url().replace("http://", "HTTP://"));
    setup
        .origin
        .work
        .write("takofile.yml", &takofile(&shouted, true));
    setup.push();
    let deployment = setup.finished(1);
    assert_eq!(deployment.kind, DeploymentKind::Octopus);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
}

#[test]
fn a_redirect_is_never_followed() {
    let mut setup = Setup::start("", None, true);
    let elsewhere = OctopusStandIn::start(KEY);
    setup.octopus.fault(
        "GET",
        "/api/users/me",
        Fault::Redirect(format!("{}/api/users/me", elsewhere.url())),
        1,
    );
    setup.push();
    let deployment = setup.finished(1);
    assert_eq!(deployment.state, DeploymentState::Failed);
    let forward = setup.forward(&deployment);
    assert_eq!(forward["error"]["kind"], "octopus_redirect", "{forward}");
    assert_eq!(forward["error"]["step"], "F1");
    assert_eq!(forward["error"]["status"], 302);
    assert!(elsewhere.recorded().is_empty());
    setup.assert_clean();
}

/// One push per scenario against the same server; each error recorded with
/// its kind, step, status and Octopus's sentence.
#[test]
fn every_error_kind_is_recorded_with_octopus_sentence_under_both_styles() {
    for style in [ErrorStyle::Message, ErrorStyle::Errors] {
        let mut setup = Setup::start("", None, true);
        setup.octopus.set_error_style(style);
        let mut n = 0;
        fn expect(
            setup: &mut Setup,
            n: &mut usize,
            kind: &str,
            step: &str,
            status: Option<u16>,
            sentence: &str,
        ) {
            setup.push();
            *n += 1;
            let deployment = setup.finished(*n);
            assert_eq!(deployment.state, DeploymentState::Failed, "{kind}");
            let forward = setup.forward(&deployment);
            let error = &forward["error"];
            assert_eq!(error["kind"], kind, "{forward}");
            assert_eq!(error["step"], step, "{forward}");
            assert_eq!(
                error["status"],
                status.map_or(Value::Null, Value::from),
                "{forward}"
            );
            assert!(
                error["detail"].as_str().unwrap().contains(sentence),
                "{kind}: {sentence:?} not in {error}"
            );
            assert!(deployment.error.unwrap().contains(kind));
        }
        // A deployment Octopus refuses for this environment.
        setup.octopus.disallow("StatuscakeDSC", "Production");
        expect(
            &mut setup,
            &mut n,
            "deployment_rejected",
            "F9",
            Some(400),
            "Deployment creation failed.",
        );

        // 403: a key without ReleaseCreate.
        setup.octopus.add_key(KEY, &["ReleaseCreate"]);
        expect(
            &mut setup,
            &mut n,
            "octopus_forbidden",
            "F8",
            Some(403),
            "Missing permission: ReleaseCreate",
        );
        setup.octopus.add_key(KEY, &[]);

        // 401: the stand-in knows another key.
        setup.octopus.fault(
            "GET",
            "/api/users/me",
            Fault::Status(
                401,
                serde_json::json!({"ErrorMessage": tako_test_support::octopus::BAD_KEY})
                    .to_string(),
            ),
            1,
        );
        expect(
            &mut setup,
            &mut n,
            "octopus_unauthorized",
            "F1",
            Some(401),
            "The API key you provided was not valid",
        );

        // A project and environment that do not exist; decoys, and the
        // match behind Page.Next.
        setup.octopus.set_max_take(10);
        let many: Vec<String> = (0..35).map(|i| format!("Production {i:02}")).collect();
        setup
            .octopus
            .add_environments(&many.iter().map(String::as_str).collect::<Vec<_>>());
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true).replace("StatuscakeDSC", "Nope"),
        );
        expect(
            &mut setup,
            &mut n,
            "project_not_found",
            "F4",
            None,
            "no project named Nope",
        );
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true)
                .replace("Environment: Production", "Environment: Production 34"),
        );
        // Production 34 sits on the 4th page of 10: found; the deployment
        // then goes through (allowed), so disallow nothing there.
        n += 1;
        setup.push();
        let found = setup.finished(n);
        assert_eq!(found.state, DeploymentState::Success, "{:?}", found.error);
        assert_eq!(
            setup.forward(&found)["environment"]["name"],
            "Production 34"
        );
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true)
                .replace("Environment: Production", "Environment: Production-X"),
        );
        expect(
            &mut setup,
            &mut n,
            "environment_not_found",
            "F3",
            None,
            "no environment named Production-X",
        );
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true),
        );

        // A disabled project, a package-versioned one.
        setup.octopus.add_project(
            "Disabled",
            ProjectSpec {
                disabled: true,
                ..ProjectSpec::default()
            },
        );
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true)
                .replace("StatuscakeDSC", "Disabled"),
        );
        expect(
            &mut setup,
            &mut n,
            "project_disabled",
            "F4",
            None,
            "is disabled",
        );
        setup.octopus.add_project(
            "Packaged",
            ProjectSpec {
                package_versioned: true,
                packages: vec![Package {
                    action_name: "Deploy".into(),
                    package_id: "app".into(),
                    feed_id: "Feeds-1".into(),
                    resolvable: true,
                    ..Package::default()
                }],
                ..ProjectSpec::default()
            },
        );
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true)
                .replace("StatuscakeDSC", "Packaged"),
        );
        expect(
            &mut setup,
            &mut n,
            "no_version",
            "F6",
            None,
            "mode = \"executions\"",
        );

        // A duplicate version: the template proposes the next version of
        // the newest release; someone then made that version by hand in
        // between (a 400 from F8 with Octopus's sentence).
        setup.origin.work.write(
            "takofile.yml",
            &takofile(&format!("{}/", setup.octopus.url()), true),
        );
        setup.octopus.fault(
            "POST",
            "/api/Spaces-1/releases",
            Fault::Status(
                400,
                match style {
                    ErrorStyle::Message => serde_json::json!({"ErrorMessage": "Release '0.0.3' already exists for this project. Please use a different version, or look at using a mask to auto-increment the number.", "Errors": []}),
                    ErrorStyle::Errors => serde_json::json!({"ErrorMessage": "There was a problem with your request.", "Errors": ["Release '0.0.3' already exists for this project. Please use a different version, or look at using a mask to auto-increment the number."]}),
                }
                .to_string(),
            ),
            1,
        );
        expect(
            &mut setup,
            &mut n,
            "release_rejected",
            "F8",
            Some(400),
            "already exists for this project",
        );
        setup.assert_clean();
    }
}

#[test]
fn the_stand_in_answers_a_missing_and_a_wrong_key_as_octopus_does() {
    let octopus = OctopusStandIn::start(KEY);
    let address = octopus.url().replace("http://", "");
    let missing = request(&address, "GET", "/api/users/me", &[], b"").unwrap();
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.json()["ErrorMessage"],
        tako_test_support::octopus::NO_KEY
    );
    let wrong = request(
        &address,
        "GET",
        "/api/users/me",
        &[("X-Octopus-ApiKey", "API-WRONG")],
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json()["ErrorMessage"],
        tako_test_support::octopus::BAD_KEY
    );
    let unknown = request(
        &address,
        "GET",
        "/api/Spaces-1/nothing",
        &[("X-Octopus-ApiKey", KEY)],
        b"",
    )
    .unwrap();
    assert_eq!(unknown.status, 404);
    let method = request(
        &address,
        "DELETE",
        "/api/users/me",
        &[("X-Octopus-ApiKey", KEY)],
        b"",
    )
    .unwrap();
    assert_eq!(method.status, 405);
    let leaked = request(&address, "GET", "/api?apikey=API-X", &[], b"").unwrap();
    assert_eq!(leaked.status, 200);
    assert_eq!(octopus.violations().len(), 1);
}

#[test]
fn task_endings_map_to_deployment_states() {
    let mut setup = Setup::start("wait_timeout = \"2s\"", None, true);
    setup
        .octopus
        .set_task_script(&["Executing", "Failed(Step 'Publish' failed)"]);
    setup.push();
    let failed = setup.finished(1);
    assert_eq!(failed.state, DeploymentState::Failed);
    assert_eq!(failed.error.as_deref(), Some("Step 'Publish' failed"));
    assert_eq!(
        setup.forward(&failed)["task"]["error_message"],
        "Step 'Publish' failed"
    );
    assert!(
        setup
            .task_log(&failed)
            .contains("octopus: Step 'Publish' failed")
    );

    setup.octopus.set_task_script(&["Executing", "Canceled"]);
    setup.push();
    assert_eq!(setup.finished(2).state, DeploymentState::Cancelled);

    setup.octopus.set_task_script(&["Executing"]);
    setup.push();
    let interrupted = setup.finished(3);
    assert_eq!(interrupted.state, DeploymentState::Interrupted);
    let reason = interrupted.error.unwrap();
    assert!(
        reason.starts_with("stopped following Octopus task ServerTasks-")
            && reason.ends_with("after 2s (last state Executing)"),
        "{reason}"
    );
    setup.assert_clean();
}

#[test]
fn a_lost_response_is_adopted_by_its_marker_and_nothing_is_created_twice() {
    let mut setup = Setup::start("", None, true);
    setup
        .octopus
        .fault("POST", "/api/Spaces-1/releases", Fault::DropAfterStore, 1);
    setup.push();
    let first = setup.finished(1);
    assert_eq!(first.state, DeploymentState::Success, "{:?}", first.error);
    assert_eq!(setup.octopus.counts(), (1, 1));
    assert!(
        setup
            .octopus
            .calls()
            .contains(&"GET /api/Spaces-1/projects/Projects-5/releases/0.0.1".to_owned())
    );

    setup.octopus.fault(
        "POST",
        "/api/Spaces-1/deployments",
        Fault::DropAfterStore,
        1,
    );
    setup.push();
    let second = setup.finished(2);
    assert_eq!(second.state, DeploymentState::Success, "{:?}", second.error);
    assert_eq!(setup.octopus.counts(), (2, 2));
    assert!(setup.task_log(&second).contains("adopted"));
    setup.assert_clean();
}

#[test]
fn gets_are_retried_and_a_failed_post_is_checked_before_one_more() {
    let mut setup = Setup::start("", None, true);
    setup.octopus.fault(
        "GET",
        "/api/users/me",
        Fault::Status(503, "{\"ErrorMessage\":\"busy\"}".to_owned()),
        2,
    );
    setup.octopus.fault(
        "POST",
        "/api/Spaces-1/releases",
        Fault::Status(500, "{\"ErrorMessage\":\"boom\"}".to_owned()),
        1,
    );
    setup.push();
    let deployment = setup.finished(1);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    let calls = setup.octopus.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "GET /api/users/me").count(),
        3
    );
    let posts: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("POST /api/Spaces-1/releases"))
        .collect();
    assert_eq!(posts.len(), 2, "{calls:#?}");
    let check = calls
        .iter()
        .position(|c| c == "GET /api/Spaces-1/projects/Projects-5/releases/0.0.1")
        .expect("the release is looked up before posting again");
    let second_post = calls
        .iter()
        .rposition(|c| c == "POST /api/Spaces-1/releases")
        .unwrap();
    assert!(check < second_post);
    assert_eq!(setup.octopus.counts(), (1, 1));
}

#[test]
fn create_release_false_deploys_the_newest_release() {
    let mut setup = Setup::start("", None, false);
    setup
        .octopus
        .add_release("StatuscakeDSC", "1.0.0", "by hand");
    setup
        .octopus
        .add_release("StatuscakeDSC", "1.1.0", "by hand");
    setup.push();
    let deployment = setup.finished(1);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    let forward = setup.forward(&deployment);
    assert_eq!(forward["release"]["version"], "1.1.0");
    assert_eq!(forward["release"]["created"], false);
    assert!(
        !setup
            .octopus
            .calls()
            .iter()
            .any(|c| c.starts_with("POST /api/Spaces-1/releases"))
    );
    setup.assert_clean();
}

#[test]
fn a_forward_survives_kill_9_between_two_calls() {
    let mut setup = Setup::start("", None, true);
    // The task takes a while: Tako is killed while following it, after the
    // release and deployment were created.
    setup.octopus.set_task_script(&[
        "Queued",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Executing",
        "Success",
    ]);
    setup.push();
    assert!(wait_until(Duration::from_secs(30), || setup
        .octopus
        .calls()
        .iter()
        .any(|c| c.contains("/tasks/"))));
    setup.server.take().unwrap().kill();
    setup.boot();
    let deployment = setup.finished(1);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    assert_eq!(
        setup.octopus.counts(),
        (1, 1),
        "{:#?}",
        setup.octopus.calls()
    );
    assert!(setup.task_log(&deployment).contains("resum"));
}

#[test]
fn a_deployment_posted_just_before_kill_9_is_adopted_not_posted_again() {
    let mut setup = Setup::start("", None, true);
    // Octopus stores the deployment, then is slow to answer: Tako dies
    // while waiting.
    setup.octopus.fault(
        "POST",
        "/api/Spaces-1/deployments",
        Fault::Delay(Duration::from_secs(3)),
        1,
    );
    setup.push();
    assert!(wait_until(Duration::from_secs(30), || setup
        .octopus
        .calls()
        .iter()
        .any(|c| c == "POST /api/Spaces-1/deployments")));
    setup.server.take().unwrap().kill();
    setup.boot();
    let deployment = setup.finished(1);
    assert_eq!(
        deployment.state,
        DeploymentState::Success,
        "{:?}",
        deployment.error
    );
    assert_eq!(
        setup.octopus.counts(),
        (1, 1),
        "{:#?}",
        setup.octopus.calls()
    );
    let posts = setup
        .octopus
        .calls()
        .iter()
        .filter(|c| c.starts_with("POST "))
        .count();
    assert_eq!(
        posts,
        2,
        "one release, one deployment: {:#?}",
        setup.octopus.calls()
    );
    assert!(setup.task_log(&deployment).contains("adopted"));
    setup.assert_clean();
}
