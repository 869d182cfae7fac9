//! Work trees against real remotes: clones and fetches of branches, tags
//! and commits (over `file://` and over smart HTTP with a token), tags
//! created and pushed to a real bare repository.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tako_git::{Credentials, Git, GitError, RemoteUrl};
use tako_test_support::TempGitRepo;
use tako_test_support::git_server::{BareRepo, GitHttpServer};

const TOKEN: &str = "ghs_W0rkTreeT0ken77";

fn git() -> Git {
    Git::new()
        .with_network_timeout(Duration::from_secs(60))
        .with_local_timeout(Duration::from_secs(60))
}

/// `main` (two commits), `develop` (one more), tag `v1` on main's first.
struct Remote {
    work: TempGitRepo,
    bare: BareRepo,
    first: String,
    second: String,
    develop: String,
}

fn remote() -> Remote {
    let work = TempGitRepo::new();
    work.write("file", "one\n");
    let first = work.commit("first");
    work.git(&["tag", "v1"]);
    work.write("file", "two\n");
    let second = work.commit("second");
    work.checkout_new_branch("develop");
    work.write("file", "develop\n");
    let develop = work.commit("on develop");
    work.git(&["checkout", "-q", "main"]);
    let bare = BareRepo::new("project.git");
    bare.push_from(&work, &["main", "develop", "--tags"]);
    Remote {
        work,
        bare,
        first,
        second,
        develop,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_resolves_branches_tags_and_commits() {
    let remote = remote();
    let url = RemoteUrl::parse(&remote.bare.file_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("nested/clone");
    let tree = git().clone_into(&url, None, &target).await.unwrap();
    assert_eq!(
        tree.origin_url().await.unwrap().as_deref(),
        Some(url.as_str())
    );
    for (rev, expected) in [
        ("main", &remote.second),
        ("develop", &remote.develop),
        ("refs/heads/develop", &remote.develop),
        ("v1", &remote.first),
        ("refs/tags/v1", &remote.first),
        (remote.first.as_str(), &remote.first),
        (&remote.first[..10], &remote.first),
    ] {
        let commit = tree.fetch_ref(&url, None, rev).await.unwrap();
        assert_eq!(&commit, expected, "{rev}");
        tree.checkout_detached(&commit).await.unwrap();
        assert_eq!(&tree.head().await.unwrap(), expected);
    }
    assert_eq!(
        std::fs::read_to_string(target.join("file")).unwrap(),
        "one\n"
    );

    let error = tree.fetch_ref(&url, None, "no-such-branch").await;
    assert!(
        matches!(&error, Err(GitError::UnknownRevision { rev, .. }) if rev == "no-such-branch"),
        "{error:?}"
    );
    let missing_id = "0".repeat(40);
    let error = tree.fetch_ref(&url, None, &missing_id).await;
    assert!(
        matches!(&error, Err(GitError::UnknownRevision { .. })),
        "{error:?}"
    );
    let error = tree.fetch_ref(&url, None, "main~1").await;
    assert!(
        matches!(&error, Err(GitError::InvalidRevision { .. })),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_follows_new_commits_and_commits_off_every_branch() {
    let remote = remote();
    let url = RemoteUrl::parse(&remote.bare.file_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = git().clone_into(&url, None, dir.path()).await.unwrap();
    remote.work.write("file", "three\n");
    let third = remote.work.commit("third");
    remote.bare.push_from(&remote.work, &["main"]);
    assert_eq!(tree.fetch_ref(&url, None, "main").await.unwrap(), third);
    // Force main back: `third` is on no branch any more but still on the
    // server, and fetched by id.
    remote.work.git(&["reset", "-q", "--hard", &remote.second]);
    remote.bare.push_from(&remote.work, &["main"]);
    let other = tempfile::tempdir().unwrap();
    let fresh = git().clone_into(&url, None, other.path()).await.unwrap();
    assert_eq!(fresh.resolve(&third).await.unwrap(), None);
    assert_eq!(fresh.fetch_ref(&url, None, &third).await.unwrap(), third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_work_over_http_and_stay_out_of_config_and_errors() {
    let remote = remote();
    let server = GitHttpServer::with_token(remote.bare.root(), TOKEN);
    let url = RemoteUrl::parse(&server.url(remote.bare.name())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = Credentials::token(TOKEN);

    let refused = git()
        .clone_into(
            &url,
            Some(&Credentials::token("wrong-token-123")),
            &dir.path().join("refused"),
        )
        .await;
    let message = refused.as_ref().err().map(ToString::to_string);
    assert!(
        matches!(refused, Err(GitError::AuthenticationFailed { .. })),
        "{message:?}"
    );
    assert!(!message.unwrap_or_default().contains("wrong-token-123"));

    let tree = git()
        .clone_into(&url, Some(&credentials), &dir.path().join("ok"))
        .await
        .unwrap();
    assert_eq!(
        tree.fetch_ref(&url, Some(&credentials), "develop")
            .await
            .unwrap(),
        remote.develop
    );
    let config = std::fs::read_to_string(dir.path().join("ok/.git/config")).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    assert!(
        !config.to_ascii_lowercase().contains("extraheader"),
        "{config}"
    );

    let tag = git()
        .remote_tag(dir.path(), &url, Some(&credentials), "v1")
        .await
        .unwrap();
    assert_eq!(tag.map(|t| t.commit), Some(remote.first.clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_remotes_fail_quickly_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = RemoteUrl::parse(&format!("http://127.0.0.1:{port}/nothing.git")).unwrap();
    let started = std::time::Instant::now();
    let error = git().clone_into(&url, None, &dir.path().join("x")).await;
    assert!(
        matches!(error, Err(GitError::Unreachable { .. })),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    let missing = RemoteUrl::parse(&format!("file://{}/absent.git", dir.path().display())).unwrap();
    let error = git()
        .clone_into(&missing, None, &dir.path().join("y"))
        .await;
    assert!(
        matches!(error, Err(GitError::Unreachable { .. })),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_created_and_pushed() {
    let remote = remote();
    let url = RemoteUrl::parse(&remote.bare.file_url()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tree = git().clone_into(&url, None, dir.path()).await.unwrap();
    tree.fetch_ref(&url, None, "main").await.unwrap();

    // Lightweight.
    tree.tag("v2", &remote.second, None, false).await.unwrap();
    assert_eq!(
        tree.local_tag("v2").await.unwrap().as_deref(),
        Some(remote.second.as_str())
    );
    tree.push_tag(&url, None, "v2", false).await.unwrap();
    assert_eq!(
        remote.bare.git(&["rev-parse", "refs/tags/v2"]),
        remote.second
    );
    assert_eq!(remote.bare.git(&["cat-file", "-t", "v2"]), "commit");

    // Annotated, with the default tagger.
    tree.tag("v3", &remote.first, Some("-release three\n"), false)
        .await
        .unwrap();
    tree.push_tag(&url, None, "v3", false).await.unwrap();
    assert_eq!(remote.bare.git(&["cat-file", "-t", "v3"]), "tag");
    let object = remote.bare.git(&["cat-file", "tag", "v3"]);
    assert!(object.contains("tagger Tako <tako@localhost>"), "{object}");
    assert!(object.contains("-release three"), "{object}");
    let seen = git()
        .remote_tag(dir.path(), &url, None, "v3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.commit, remote.first);
    assert_ne!(seen.id, remote.first);
    assert_eq!(
        git()
            .remote_tag(dir.path(), &url, None, "v9")
            .await
            .unwrap(),
        None
    );

    // Moving a tag: refused without force, done with it.
    tree.tag("v2", &remote.first, None, true).await.unwrap();
    let refused = tree.push_tag(&url, None, "v2", false).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(
        remote.bare.git(&["rev-parse", "refs/tags/v2"]),
        remote.second
    );
    tree.push_tag(&url, None, "v2", true).await.unwrap();
    assert_eq!(
        remote.bare.git(&["rev-parse", "refs/tags/v2"]),
        remote.first
    );
}
