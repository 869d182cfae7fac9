//! The seed's pipeline end to end, with the real built-in steps: the
//! `examples/powershell-module` repository pushed to a bare origin, signed
//! pushes to a real `tako serve`, the module published to a real NuGet feed
//! (minchoc, from PyPI) on 127.0.0.1, the tag pushed to the origin, and Slack
//! (which cannot run here) stood in for by a receiver that records the JSON.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tako_store::{
    Deployment, DeploymentFilter, DeploymentState, LogCursor, PageRequest, SqliteStore, Store,
};
use tako_test_support::git_server::BareRepo;
use tako_test_support::github::{PushedCommit, push_payload};
use tako_test_support::http::{Receiver, request};
use tako_test_support::nuget::{NugetImpl, NugetPeer};
use tako_test_support::server::{DataDir, TakoServer};
use tako_test_support::{TempGitRepo, wait_until, workspace_root};

const SECRET: &str = "example-webhook-secret";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Pipeline {
    work: TempGitRepo,
    bare: BareRepo,
    server: TakoServer,
    data: DataDir,
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Runtime,
    pushes: usize,
}

impl Pipeline {
    fn push(&mut self, branch: &str, change: impl FnOnce(&Path), message: &str) -> Deployment {
        let current = self.work.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
        if current != branch {
            let exists = !self.work.git(&["branch", "--list", branch]).is_empty();
            if exists {
                self.work.git(&["checkout", "-q", branch]);
            } else {
                self.work.git(&["checkout", "-q", "-b", branch]);
            }
        }
        let before = self.bare.git(&[
            "for-each-ref",
            "--format=%(objectname)",
            &format!("refs/heads/{branch}"),
        ]);
        let before = if before.is_empty() {
            ZERO.to_owned()
        } else {
            before
        };
        change(self.work.path());
        let after = self.work.commit(message);
        self.bare.push_from(&self.work, &[branch]);
        let body = push_payload(
            &self.bare.file_url(),
            "master",
            &format!("refs/heads/{branch}"),
            &before,
            &after,
            &[PushedCommit {
                id: after.clone(),
                message: message.to_owned(),
            }],
        );
        self.pushes += 1;
        let delivery = format!("example-{}", self.pushes);
        let signature = tako_github::sign(SECRET.as_bytes(), &body);
        let answer = request(
            &self.server.address,
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
        assert_eq!(answer.status, 202, "{}", answer.text());
        let expected = self.pushes;
        let finished = wait_until(Duration::from_secs(120), || {
            let all = self.deployments();
            all.len() == expected
                && !matches!(
                    all[expected - 1].state,
                    DeploymentState::Queued | DeploymentState::Running
                )
        });
        let outcome = self
            .runtime
            .block_on(self.store.get_delivery(&tako_store::DeliveryId(delivery)))
            .ok();
        assert!(
            finished,
            "no finished deployment for push {expected}: {outcome:?}"
        );
        self.deployments().pop().unwrap()
    }

    fn deployments(&self) -> Vec<Deployment> {
        let mut all = self
            .runtime
            .block_on(
                self.store
                    .list_deployments(&DeploymentFilter::default(), PageRequest::first(100)),
            )
            .unwrap()
            .items;
        all.reverse();
        all
    }

    fn log(&self, deployment: &Deployment) -> String {
        let page = self
            .runtime
            .block_on(
                self.store
                    .read_log(deployment.id, LogCursor::START, 100_000),
            )
            .unwrap();
        page.lines
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn set_variable(&self, name: &str, value: &str, sensitive: bool) {
        let token = self.server.token.clone().unwrap();
        let body = serde_json::json!({ "value": value, "sensitive": sensitive }).to_string();
        let answer = request(
            &self.server.address,
            "PUT",
            &format!("/api/v1/projects/PSDemo/variables/{name}"),
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap();
        assert!(answer.status < 300, "{}", answer.text());
    }
}

#[test]
fn the_seeds_pipeline_tests_publishes_tags_and_announces() {
    let Some(feed) = NugetPeer::start(NugetImpl::Minchoc) else {
        return;
    };
    let slack = Receiver::start();
    let hook_url = slack.url("/services/T0000/B0000/secretHookToken123");

    // The example repository on master, in a bare origin whose HEAD is master.
    let work = TempGitRepo::new();
    work.git(&["checkout", "-q", "-b", "master"]);
    copy_dir(
        &workspace_root().join("examples/powershell-module"),
        work.path(),
    );
    work.commit("The PSDemo module");
    let bare = BareRepo::new("psdemo");
    bare.push_from(&work, &["master"]);
    bare.git(&["symbolic-ref", "HEAD", "refs/heads/master"]);

    let data = DataDir::new();
    let server = TakoServer::start(
        Path::new(env!("CARGO_BIN_EXE_tako")),
        &data.path,
        &[],
        &[("TAKO_WEBHOOK_SECRET", SECRET)],
    );
    let token = server.token.clone().unwrap();
    let register =
        serde_json::json!({ "name": "PSDemo", "repository": bare.file_url() }).to_string();
    let answer = request(
        &server.address,
        "POST",
        "/api/v1/projects",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        register.as_bytes(),
    )
    .unwrap();
    assert_eq!(answer.status, 201, "{}", answer.text());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data.path.join("tako.db")).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pipeline = Pipeline {
        work,
        bare,
        server,
        data,
        store,
        runtime,
        pushes: 0,
    };
    pipeline.set_variable("PSGalleryApiKey", feed.api_key(), true);
    pipeline.set_variable("SlackWebhookUrl", &hook_url, true);
    pipeline.set_variable("NuGetFeed", &feed.feed_url(), false);

    // 1. develop → DevTest: tested, not published, Slack hears success.
    let devtest = pipeline.push(
        "develop",
        |dir| std::fs::write(dir.join("NOTES.md"), "develop\n").unwrap(),
        "Start develop",
    );
    let log = pipeline.log(&devtest);
    assert_eq!(devtest.environment, "DevTest");
    assert_eq!(devtest.state, DeploymentState::Success, "{log}");
    assert!(
        log.contains("settings greeting: Hello from DevTest"),
        "{log}"
    );
    assert!(
        log.contains("all 2 checks passed for PSDemo 1.0.0"),
        "{log}"
    );
    assert!(log.contains("skipped: not scoped to DevTest"), "{log}");
    assert!(
        feed.package("PSDemo", "1.0.0").is_none(),
        "DevTest must not publish"
    );
    let messages = slack.requests();
    assert_eq!(messages.len(), 1);
    let message = messages[0].json();
    assert_eq!(
        messages[0].target,
        "/services/T0000/B0000/secretHookToken123"
    );
    assert_eq!(message["attachments"][0]["color"], "good", "{message}");
    assert!(
        message["text"]
            .as_str()
            .unwrap()
            .contains("Deployed PSDemo 1.0.0-ci.1 to DevTest"),
        "{message}"
    );

    // 2. master → Production: published to the feed, tagged, announced.
    let production = pipeline.push(
        "master",
        |dir| std::fs::write(dir.join("NOTES.md"), "release\n").unwrap(),
        "Release 1.0.0",
    );
    let log = pipeline.log(&production);
    assert_eq!(production.state, DeploymentState::Success, "{log}");
    assert!(
        log.contains("settings greeting: Hello from Production"),
        "{log}"
    );
    let package = feed
        .package("PSDemo", "1.0.0")
        .expect("the module is on the feed");
    assert!(!package.is_empty());
    let tagged = pipeline
        .bare
        .git(&["rev-parse", "refs/tags/v1.0.0^{commit}"]);
    assert_eq!(tagged, pipeline.work.git(&["rev-parse", "master"]));
    let message = slack.requests()[1].json();
    assert_eq!(message["attachments"][0]["color"], "good", "{message}");
    assert!(
        message["text"].as_str().unwrap().contains("to Production"),
        "{message}"
    );

    // 3. master again without a version bump: nothing to publish, still green.
    let again = pipeline.push(
        "master",
        |dir| std::fs::write(dir.join("NOTES.md"), "docs only\n").unwrap(),
        "Docs only",
    );
    let log = pipeline.log(&again);
    assert_eq!(again.state, DeploymentState::Success, "{log}");
    assert!(log.contains("already on the feed"), "{log}");
    assert!(
        log.contains("Step 'Tag release' skipped: condition"),
        "{log}"
    );
    assert_eq!(
        slack.requests()[2].json()["attachments"][0]["color"],
        "good"
    );

    // 4. A failing test: no publish, no tag, Slack names the failing step.
    let broken = pipeline.push(
        "master",
        |dir| {
            let psm1 = dir.join("Modules/PSDemo/PSDemo.psm1");
            let text = std::fs::read_to_string(&psm1)
                .unwrap()
                .replace("function Set-Greeting", "function Set-Salutation");
            std::fs::write(psm1, text).unwrap();
        },
        "Rename a function (breaks the export)",
    );
    let log = pipeline.log(&broken);
    assert_eq!(broken.state, DeploymentState::Failed, "{log}");
    assert!(
        log.contains("Step 'Publish to PS Gallery' skipped: an earlier step failed"),
        "{log}"
    );
    assert!(log.contains("Step 'Tag release' skipped"), "{log}");
    let message = slack.requests()[3].json();
    assert_eq!(message["attachments"][0]["color"], "danger", "{message}");
    let text = message.to_string();
    assert!(
        text.contains("Run tests") && text.contains("Set-Greeting is exported but not defined"),
        "{text}"
    );

    // Secrets never reached the task logs or Slack.
    for deployment in pipeline.deployments() {
        let log = pipeline.log(&deployment);
        assert!(
            !log.contains(feed.api_key()) && !log.contains("secretHookToken123"),
            "{log}"
        );
    }
    assert!(
        slack
            .requests()
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains(feed.api_key()))
    );
    drop(pipeline.data);
}
