//! Mirrors over smart HTTP against a real `git http-backend` on 127.0.0.1:
//! public and token-protected repositories, and the token never ending up in
//! a file, a checkout or an error.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use tako_git::{Credentials, FetchOutcome, Git, GitError, Mirrors};
use tako_test_support::TempGitRepo;
use tako_test_support::git_server::{BareRepo, GitHttpServer};

const TOKEN: &str = "ghs_Tak0TestT0ken4242";

fn mirrors(root: &Path) -> Mirrors {
    Mirrors::with_git(
        root,
        Git::new()
            .with_network_timeout(Duration::from_secs(60))
            .with_local_timeout(Duration::from_secs(60)),
    )
}

/// A repository with one commit, served from a bare repository.
fn repository(files: &[(&str, &str)]) -> (TempGitRepo, BareRepo, String) {
    let work = TempGitRepo::new();
    for (path, content) in files {
        work.write(path, content);
    }
    let commit = work.commit("first");
    let bare = BareRepo::new("project.git");
    bare.push_from(&work, &["main"]);
    (work, bare, commit)
}

/// Files under `dir` whose bytes contain the token or the header built from it.
fn files_holding_the_token(dir: &Path) -> Vec<String> {
    let header =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            if text.contains(TOKEN) || text.contains(&header) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_repositories_are_fetched_over_http() {
    let (work, bare, first) = repository(&[("takofile", "one\n")]);
    let server = GitHttpServer::start(bare.root());
    let cache = tempfile::tempdir().unwrap();
    let mirrors = mirrors(cache.path());
    let url = server.url(bare.name());

    let mirror = mirrors.fetch(&url, None, Some(&first)).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Cloned);
    assert_eq!(
        mirror
            .read_file("HEAD", "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("one\n")
    );

    work.write("takofile", "two\n");
    let second = work.commit("second");
    bare.push_from(&work, &["main"]);
    let mirror = mirrors.fetch(&url, None, Some(&second)).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    assert_eq!(
        mirror
            .read_file(&second, "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("two\n")
    );
    assert!(server.requests().iter().all(|r| r.status == 200));

    let missing = server.url("missing.git");
    let error = mirrors.fetch(&missing, None, None).await.unwrap_err();
    assert!(matches!(error, GitError::Unreachable { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_needs_the_right_token_which_is_never_stored() {
    let (work, bare, first) = repository(&[("takofile", "private\n")]);
    let server = GitHttpServer::with_token(bare.root(), TOKEN);
    let cache = tempfile::tempdir().unwrap();
    let mirrors = mirrors(&cache.path().join("mirrors"));
    let url = server.url(bare.name());
    let credentials = Credentials::token(TOKEN);

    let mirror = mirrors
        .fetch(&url, Some(&credentials), Some(&first))
        .await
        .unwrap();
    assert_eq!(
        mirror
            .read_file("HEAD", "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("private\n")
    );
    // Incremental fetches authenticate the same way.
    work.write("takofile", "private two\n");
    let second = work.commit("second");
    bare.push_from(&work, &["main"]);
    let mirror = mirrors
        .fetch(&url, Some(&credentials), Some(&second))
        .await
        .unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.authorized_header && r.status == 200)
    );

    // The checkout of a deployment is a repository without the token either.
    let dir = cache.path().join("deployments").join("1");
    mirror.checkout(&second, &dir).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("takofile")).unwrap(),
        "private two\n"
    );
    assert_eq!(files_holding_the_token(cache.path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_token_is_an_authentication_error_without_the_token() {
    let (_work, bare, _first) = repository(&[("takofile", "private\n")]);
    let server = GitHttpServer::with_token(bare.root(), TOKEN);
    let cache = tempfile::tempdir().unwrap();
    let mirrors = mirrors(cache.path());
    let url = server.url(bare.name());

    let wrong = Credentials::token(format!("{TOKEN}-wrong"));
    let error = mirrors.fetch(&url, Some(&wrong), None).await.unwrap_err();
    assert!(
        matches!(error, GitError::AuthenticationFailed { .. }),
        "{error}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains(&url), "{text}");

    let error = mirrors.fetch(&url, None, None).await.unwrap_err();
    assert!(
        matches!(error, GitError::AuthenticationFailed { .. }),
        "{error}"
    );

    assert!(server.requests().iter().any(|r| r.status == 401));
    assert_eq!(files_holding_the_token(cache.path()), Vec::<String>::new());

    // The right token works after failures: nothing half-made was left.
    let right = Credentials::token(TOKEN);
    let mirror = mirrors.fetch(&url, Some(&right), None).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Cloned);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_goes_to_the_repositorys_origin_even_unasked() {
    // Credentials are sent pre-emptively (an extra header scoped to the
    // repository's scheme, host and port), so a public server sees them too.
    let (_work, bare, _first) = repository(&[("takofile", "public\n")]);
    let server = GitHttpServer::start(bare.root());
    let cache = tempfile::tempdir().unwrap();
    let mirrors = mirrors(cache.path());
    let credentials = Credentials::token(TOKEN);
    mirrors
        .fetch(&server.url(bare.name()), Some(&credentials), None)
        .await
        .unwrap();
    assert!(server.requests().iter().all(|r| r.authorized_header));
}
