//! Mirrors of local repositories (`file://` URLs and plain paths) with the
//! real git binary: clone, incremental fetch, serialized concurrent fetches,
//! reading files, checkouts, and the errors for unknown revisions,
//! unreachable repositories, hung servers and a missing git.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tako_git::{FetchOutcome, Git, GitError, Mirror, Mirrors, TAKOFILE_NAMES};
use tako_test_support::git_server::BareRepo;
use tako_test_support::{TempGitRepo, git_command, processes_with};
use tempfile::TempDir;

/// A work repository pushed to a bare one, and a mirrors cache.
struct Fixture {
    work: TempGitRepo,
    bare: BareRepo,
    cache: TempDir,
    mirrors: Mirrors,
}

impl Fixture {
    fn new() -> Fixture {
        let work = TempGitRepo::new();
        let bare = BareRepo::new("project.git");
        let cache = tempfile::tempdir().unwrap();
        let git = Git::new()
            .with_network_timeout(Duration::from_secs(60))
            .with_local_timeout(Duration::from_secs(60));
        let mirrors = Mirrors::with_git(cache.path().join("mirrors"), git);
        Fixture {
            work,
            bare,
            cache,
            mirrors,
        }
    }

    /// Writes files, commits and pushes `main`; returns the commit.
    fn push(&self, files: &[(&str, &str)], message: &str) -> String {
        for (path, content) in files {
            self.work.write(path, content);
        }
        let commit = self.work.commit(message);
        self.bare.push_from(&self.work, &["main"]);
        commit
    }

    async fn fetch(&self, want: Option<&str>) -> Result<Mirror, GitError> {
        self.mirrors.fetch(&self.bare.file_url(), None, want).await
    }
}

fn mirror_count(root: &Path) -> usize {
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn first_fetch_clones_and_reads_files() {
    let fixture = Fixture::new();
    let commit = fixture.push(&[("takofile", "project: demo\n")], "first");
    let mirror = fixture.fetch(Some(&commit)).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Cloned);
    assert!(mirror.path().starts_with(fixture.mirrors.root()));
    assert_eq!(
        mirror.resolve("main").await.unwrap().as_deref(),
        Some(commit.as_str())
    );
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("main")
    );
    assert_eq!(
        mirror
            .read_file("HEAD", "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("project: demo\n")
    );
    assert_eq!(
        mirror
            .read_file(&commit, "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("project: demo\n")
    );
    assert_eq!(mirror.read_file("HEAD", "missing.txt").await.unwrap(), None);
    // The mirror is bare and holds no hooks or credentials in its config.
    assert!(mirror.path().join("HEAD").is_file());
    let config = std::fs::read_to_string(mirror.path().join("config")).unwrap();
    assert!(config.contains("bare = true"), "{config}");
    assert_eq!(mirror_count(fixture.mirrors.root()), 1);
}

#[tokio::test]
async fn a_plain_path_works_like_a_file_url() {
    let fixture = Fixture::new();
    let commit = fixture.push(&[("takofile", "x\n")], "first");
    let url = fixture.bare.path().display().to_string();
    let mirror = fixture.mirrors.fetch(&url, None, None).await.unwrap();
    assert_eq!(mirror.resolve("HEAD").await.unwrap(), Some(commit));
}

#[tokio::test]
async fn incremental_fetch_picks_up_new_commits_and_branches() {
    let fixture = Fixture::new();
    let first = fixture.push(&[("takofile", "one\n")], "first");
    fixture.fetch(None).await.unwrap();
    let second = fixture.push(&[("takofile", "two\n")], "second");
    fixture.work.checkout_new_branch("feature");
    fixture.work.write("feature.txt", "f\n");
    let feature = fixture.work.commit("feature");
    fixture.bare.push_from(&fixture.work, &["feature"]);

    let mirror = fixture.fetch(Some(&second)).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    assert_eq!(mirror.resolve("main").await.unwrap(), Some(second.clone()));
    assert_eq!(
        mirror.resolve("feature").await.unwrap(),
        Some(feature.clone())
    );
    assert_eq!(
        mirror
            .read_file("HEAD", "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("two\n")
    );
    assert_eq!(
        mirror
            .read_file(&first, "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("one\n")
    );
    assert_eq!(
        mirror
            .read_file(&feature, "feature.txt")
            .await
            .unwrap()
            .as_deref(),
        Some("f\n")
    );

    // Already there: nothing fetched.
    let again = fixture.fetch(Some(&feature)).await.unwrap();
    assert_eq!(again.outcome(), FetchOutcome::AlreadyPresent);

    // A deleted branch is pruned; a new default branch is followed.
    fixture
        .bare
        .git(&["symbolic-ref", "HEAD", "refs/heads/feature"]);
    fixture.bare.git(&["branch", "-D", "main"]);
    let mirror = fixture.fetch(None).await.unwrap();
    assert_eq!(mirror.resolve("main").await.unwrap(), None);
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("feature")
    );
    assert_eq!(mirror.resolve("HEAD").await.unwrap(), Some(feature));
}

#[tokio::test]
async fn tags_are_mirrored() {
    let fixture = Fixture::new();
    let commit = fixture.push(&[("a", "1\n")], "first");
    fixture.work.git(&["tag", "-a", "v1", "-m", "v1"]);
    fixture.bare.push_from(&fixture.work, &["--tags"]);
    let mirror = fixture.fetch(None).await.unwrap();
    assert_eq!(mirror.resolve("v1").await.unwrap(), Some(commit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetches_of_one_repository_are_serialized() {
    let fixture = Fixture::new();
    let commit = fixture.push(&[("takofile", "x\n")], "first");
    let url = fixture.bare.file_url();

    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let mirrors = fixture.mirrors.clone();
            let url = url.clone();
            let commit = commit.clone();
            tokio::spawn(async move { mirrors.fetch(&url, None, Some(&commit)).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap().outcome());
    }
    let cloned = outcomes
        .iter()
        .filter(|o| **o == FetchOutcome::Cloned)
        .count();
    let present = outcomes
        .iter()
        .filter(|o| **o == FetchOutcome::AlreadyPresent)
        .count();
    assert_eq!((cloned, present), (1, 4), "{outcomes:?}");

    // Without a wanted commit, every caller fetches, one after the other.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let mirrors = fixture.mirrors.clone();
            let url = url.clone();
            tokio::spawn(async move { mirrors.fetch(&url, None, None).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().outcome(),
            FetchOutcome::Fetched
        );
    }
    assert_eq!(mirror_count(fixture.mirrors.root()), 1);
}

#[tokio::test]
async fn first_file_follows_the_lookup_order() {
    let fixture = Fixture::new();
    let none = fixture.push(&[("readme", "r\n")], "no takofile");
    let yaml = fixture.push(&[("takofile.yaml", "yaml\n")], "yaml");
    let yml = fixture.push(&[("takofile.yml", "yml\n")], "yml");
    let plain = fixture.push(&[("takofile", "plain\n")], "plain");
    let mirror = fixture.fetch(None).await.unwrap();

    let found = |text: &str, name: &str| Some((name.to_owned(), text.to_owned()));
    assert_eq!(
        mirror.first_file(&none, TAKOFILE_NAMES).await.unwrap(),
        None
    );
    assert_eq!(
        mirror.first_file(&yaml, TAKOFILE_NAMES).await.unwrap(),
        found("yaml\n", "takofile.yaml")
    );
    assert_eq!(
        mirror.first_file(&yml, TAKOFILE_NAMES).await.unwrap(),
        found("yml\n", "takofile.yml")
    );
    assert_eq!(
        mirror.first_file(&plain, TAKOFILE_NAMES).await.unwrap(),
        found("plain\n", "takofile")
    );
    // Nested paths, directories and bad paths.
    let nested = fixture.push(&[("deploy/takofile", "nested\n")], "nested");
    let mirror = fixture.fetch(Some(&nested)).await.unwrap();
    assert_eq!(
        mirror
            .read_file(&nested, "deploy/takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("nested\n")
    );
    assert_eq!(mirror.read_file(&nested, "deploy").await.unwrap(), None);
    assert!(matches!(
        mirror.read_file(&nested, "../etc/passwd").await,
        Err(GitError::InvalidPath { .. })
    ));
}

#[tokio::test]
async fn checkout_produces_the_commits_exact_tree() {
    let fixture = Fixture::new();
    let first = fixture.push(
        &[("takofile", "one\n"), ("scripts/deploy.sh", "echo hi\n")],
        "first",
    );
    let second = fixture.push(&[("takofile", "two\n"), ("later.txt", "l\n")], "second");
    let mirror = fixture.fetch(None).await.unwrap();

    let dir = fixture.cache.path().join("deployments").join("d1");
    let checked_out = mirror.checkout(&first, &dir).await.unwrap();
    assert_eq!(checked_out, first);
    let git = |args: &[&str]| {
        let output = git_command(&dir).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(git(&["rev-parse", "HEAD"]), first);
    assert_eq!(
        git(&["rev-parse", "HEAD^{tree}"]),
        fixture
            .work
            .git(&["rev-parse", &format!("{first}^{{tree}}")])
    );
    assert_eq!(git(&["status", "--porcelain", "--untracked-files=all"]), "");
    assert_eq!(
        std::fs::read_to_string(dir.join("takofile")).unwrap(),
        "one\n"
    );
    assert!(!dir.join("later.txt").exists());
    // A complete repository of its own, pointing at the real remote.
    assert_eq!(
        git(&["remote", "get-url", "origin"]),
        fixture.bare.file_url()
    );
    assert!(!dir.join(".git/objects/info/alternates").exists());
    assert_eq!(git(&["rev-parse", "origin/main"]), second);

    // A second deployment of another commit, independent of the first.
    let dir2 = fixture.cache.path().join("deployments").join("d2");
    mirror.checkout("main", &dir2).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir2.join("takofile")).unwrap(),
        "two\n"
    );
    // Non-empty target directories are refused.
    let refused = mirror.checkout("main", &dir2).await.unwrap_err();
    assert!(refused.to_string().contains("not empty"), "{refused}");
}

#[tokio::test]
async fn unknown_revisions_are_clear_errors() {
    let fixture = Fixture::new();
    fixture.push(&[("takofile", "x\n")], "first");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let error = fixture.fetch(Some(missing)).await.unwrap_err();
    assert!(matches!(error, GitError::UnknownRevision { .. }), "{error}");
    assert!(error.to_string().contains(missing), "{error}");

    let mirror = fixture
        .mirrors
        .open(&fixture.bare.file_url())
        .unwrap()
        .unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Opened);
    assert_eq!(mirror.resolve("no-such-branch").await.unwrap(), None);
    assert_eq!(mirror.resolve(missing).await.unwrap(), None);
    let error = mirror
        .read_file("no-such-branch", "takofile")
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::UnknownRevision { .. }), "{error}");
    let error = mirror
        .checkout(missing, &fixture.cache.path().join("d"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("unknown revision {missing} in {}", fixture.bare.file_url())
    );
    // Option-like revisions are revisions, not options.
    assert_eq!(mirror.resolve("--all").await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_repositories_fail_fast_and_clearly() {
    let cache = tempfile::tempdir().unwrap();
    let mirrors = Mirrors::new(cache.path());
    let start = Instant::now();
    let missing = cache.path().join("nothing-here.git");
    let error = mirrors
        .fetch(&format!("file://{}", missing.display()), None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::Unreachable { .. }), "{error}");
    assert!(error.to_string().contains("nothing-here.git"), "{error}");

    // A port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = mirrors
        .fetch(&format!("http://127.0.0.1:{port}/r.git"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::Unreachable { .. }), "{error}");
    assert!(start.elapsed() < Duration::from_secs(30));
    // Nothing half-made is left behind.
    assert_eq!(mirror_count(cache.path()), 0);
}

#[tokio::test]
async fn a_hung_server_times_out_and_leaves_no_processes() {
    // Accepts connections (the kernel's backlog) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hung-repo.git", listener.local_addr().unwrap());
    let cache = tempfile::tempdir().unwrap();
    let git = Git::new().with_network_timeout(Duration::from_secs(1));
    let mirrors = Mirrors::with_git(cache.path(), git);
    let start = Instant::now();
    let error = mirrors.fetch(&url, None, None).await.unwrap_err();
    assert!(matches!(error, GitError::Timeout { .. }), "{error}");
    assert_eq!(error.to_string(), "git clone timed out after 1s");
    assert!(start.elapsed() < Duration::from_secs(20));
    assert!(
        tako_test_support::wait_until(Duration::from_secs(5), || processes_with(&url).is_empty()),
        "git processes left: {:?}",
        processes_with(&url)
    );
    drop(listener);
}

#[tokio::test]
async fn invalid_urls_and_a_missing_git_are_reported() {
    let cache = tempfile::tempdir().unwrap();
    let mirrors = Mirrors::new(cache.path());
    let error = mirrors
        .fetch("https://me:hunter22@example.com/r.git", None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl { .. }), "{error}");
    assert!(!error.to_string().contains("hunter22"), "{error}");
    let error = mirrors
        .fetch("ext::sh -c id", None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::InvalidUrl { .. }), "{error}");

    let bare = BareRepo::new("r.git");
    let mirrors = Mirrors::with_git(
        cache.path(),
        Git::new().with_program("/nonexistent/bin/git"),
    );
    let error = mirrors
        .fetch(&bare.file_url(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(error, GitError::NotInstalled { .. }), "{error}");
}

#[tokio::test]
async fn a_commit_on_no_branch_is_fetched_by_id_and_kept() {
    // Like a pull request's head: reachable on the server, but not from a
    // branch or tag.
    let fixture = Fixture::new();
    fixture.push(&[("takofile", "main\n")], "first");
    fixture.work.write("takofile", "pull request\n");
    let pull = fixture.work.commit("pull request");
    fixture
        .bare
        .push_from(&fixture.work, &["HEAD:refs/pull/1/head"]);
    let mirror = fixture.fetch(Some(&pull)).await.unwrap();
    assert_eq!(
        mirror
            .read_file(&pull, "takofile")
            .await
            .unwrap()
            .as_deref(),
        Some("pull request\n")
    );
    let kept = format!("refs/tako/commits/{pull}");
    assert_eq!(mirror.resolve(&kept).await.unwrap(), Some(pull));
}

#[tokio::test]
async fn contains_tells_whether_a_commit_is_in_a_branchs_history() {
    let fixture = Fixture::new();
    let first = fixture.push(&[("takofile", "one\n")], "first");
    let second = fixture.push(&[("takofile", "two\n")], "second");
    fixture.work.checkout_new_branch("feature");
    fixture.work.write("takofile", "feature\n");
    let feature = fixture.work.commit("feature");
    fixture.bare.push_from(&fixture.work, &["feature"]);
    let mirror = fixture.fetch(None).await.unwrap();

    assert!(mirror.contains("refs/heads/main", &first).await.unwrap());
    assert!(mirror.contains("refs/heads/main", &second).await.unwrap());
    assert!(mirror.contains("refs/heads/feature", &first).await.unwrap());
    assert!(!mirror.contains("refs/heads/main", &feature).await.unwrap());
    // Unknown on either side: not contained, not an error.
    assert!(!mirror.contains("refs/heads/nope", &first).await.unwrap());
    let missing = "0123456789abcdef0123456789abcdef01234567";
    assert!(!mirror.contains("refs/heads/main", missing).await.unwrap());
}

#[tokio::test]
async fn a_checkout_keeps_modes_links_tags_and_is_a_clean_complete_repository() {
    let fixture = Fixture::new();
    use std::os::unix::fs::PermissionsExt;
    fixture
        .work
        .write("scripts/deploy.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        fixture.work.path().join("scripts/deploy.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("scripts/deploy.sh", fixture.work.path().join("run")).unwrap();
    let commit = fixture.push(
        &[
            ("takofile", "x\n"),
            (".gitattributes", "*.bat text eol=crlf\n"),
            ("setup.bat", "echo one\necho two\n"),
            ("deep/er/still/file.txt", "deep\n"),
        ],
        "modes, links and attributes",
    );
    fixture
        .work
        .git(&["tag", "-a", "v1.2.0", "-m", "release 1.2.0", &commit]);
    fixture
        .bare
        .push_from(&fixture.work, &["refs/tags/v1.2.0:refs/tags/v1.2.0"]);
    let mirror = fixture.fetch(None).await.unwrap();

    let dir = fixture.cache.path().join("work").join("d1");
    assert_eq!(mirror.checkout(&commit, &dir).await.unwrap(), commit);
    let git = |args: &[&str]| {
        let output = git_command(&dir).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let mode = std::fs::metadata(dir.join("scripts/deploy.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept: {mode:o}");
    assert_eq!(
        std::fs::read_link(dir.join("run")).unwrap(),
        Path::new("scripts/deploy.sh")
    );
    // Line endings as the attributes ask, like git's own checkout.
    assert_eq!(
        std::fs::read_to_string(dir.join("setup.bat")).unwrap(),
        "echo one\r\necho two\r\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("deep/er/still/file.txt")).unwrap(),
        "deep\n"
    );
    // The index matches the files without a refresh, and status is clean.
    git(&["diff-index", "--quiet", "HEAD", "--"]);
    assert_eq!(git(&["status", "--porcelain", "--untracked-files=all"]), "");
    // Annotated tags and remote-tracking branches are there, as after a clone.
    assert_eq!(git(&["describe", "--tags", "--exact-match"]), "v1.2.0");
    assert_eq!(git(&["rev-parse", "origin/main"]), commit);
    assert_eq!(
        git(&["symbolic-ref", "refs/remotes/origin/HEAD"]),
        "refs/remotes/origin/main"
    );
    // Complete on its own: every object reachable, none borrowed.
    git(&["fsck", "--connectivity-only", "--no-dangling"]);
    assert!(!dir.join(".git/objects/info/alternates").exists());
    // Objects are hard links into the mirror's (no copy of the history).
    let linked = std::fs::read_dir(dir.join(".git/objects/pack"))
        .unwrap()
        .flatten()
        .any(|e| {
            use std::os::unix::fs::MetadataExt;
            e.metadata().unwrap().nlink() > 1
        });
    assert!(linked, "the packs are hard-linked");
    // The work tree's git can fetch and commit like any clone's.
    git(&["fetch", "--quiet", "origin"]);
    std::fs::write(dir.join("new.txt"), "n\n").unwrap();
    git(&["add", "new.txt"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.com",
        "commit",
        "-qm",
        "local",
    ]);
}

#[tokio::test]
async fn a_pushs_default_branch_points_head_without_asking_the_remote() {
    let fixture = Fixture::new();
    let first = fixture.push(&[("takofile", "x\n")], "first");
    fixture.fetch(None).await.unwrap();
    let second = fixture.push(&[("takofile", "y\n")], "second");
    fixture.bare.push_from(&fixture.work, &["main:develop"]);

    let mirror = fixture
        .mirrors
        .fetch_push(
            &fixture.bare.file_url(),
            None,
            &second,
            Some("develop"),
            "develop",
        )
        .await
        .unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("develop")
    );
    assert_eq!(
        mirror.resolve("HEAD").await.unwrap().as_deref(),
        Some(second.as_str())
    );
    assert_ne!(first, second);

    // A name git would refuse is not used: the remote is asked instead.
    let third = fixture.push(&[("takofile", "z\n")], "third");
    let mirror = fixture
        .mirrors
        .fetch_push(
            &fixture.bare.file_url(),
            None,
            &third,
            Some("main"),
            "-bad..name",
        )
        .await
        .unwrap();
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("main")
    );
    // So is a branch the mirror does not have (old payloads say `master`).
    let fourth = fixture.push(&[("takofile", "w\n")], "fourth");
    fixture
        .bare
        .git(&["symbolic-ref", "HEAD", "refs/heads/develop"]);
    let mirror = fixture
        .mirrors
        .fetch_push(&fixture.bare.file_url(), None, &fourth, None, "master")
        .await
        .unwrap();
    assert_eq!(
        mirror.default_branch().await.unwrap().as_deref(),
        Some("develop")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_leave_few_packs_by_repacking_in_the_background() {
    let fixture = Fixture::new();
    let packs = |mirror: &Mirror| {
        std::fs::read_dir(mirror.path().join("objects/pack"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .count()
    };
    let mut last = fixture.push(&[("takofile", "0\n")], "c0");
    let mut mirror = fixture.fetch(None).await.unwrap();
    let mut most = 0;
    for round in 1..=40 {
        last = fixture.push(&[("takofile", &format!("{round}\n"))], &format!("c{round}"));
        mirror = fixture.fetch(Some(&last)).await.unwrap();
        most = most.max(packs(&mirror));
        // Checkouts go on while a repack may be running.
        if round % 10 == 0 {
            let dir = fixture.cache.path().join("work").join(round.to_string());
            mirror.checkout(&last, &dir).await.unwrap();
        }
    }
    // Each fetch adds a pack; the background repacks keep them few.
    assert!(most > 8, "each fetch keeps a pack ({most})");
    assert!(most < 20, "repacked as they come ({most})");
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        while packs(&mirror) > 8 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "still {} packs", packs(&mirror));
    let dir = fixture.cache.path().join("work").join("last");
    mirror.checkout(&last, &dir).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("takofile")).unwrap(),
        "40\n"
    );
}

/// Runs git in the bare repository `git_dir`; its standard output.
fn git_in(git_dir: &Path, args: &[&str]) -> String {
    let output = git_command(git_dir)
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `git for-each-ref` of branches and tags: name and object.
fn branches_and_tags(git_dir: &Path) -> String {
    git_in(
        git_dir,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            "refs/tags",
        ],
    )
}

/// Every object reachable from the repository's references is in it.
fn assert_complete(git_dir: &Path) {
    git_in(git_dir, &["fsck", "--connectivity-only", "--no-dangling"]);
}

#[tokio::test]
async fn a_local_fetch_leaves_what_git_fetch_prune_would() {
    let fixture = Fixture::new();
    fixture.push(&[("a", "1\n")], "first");
    fixture.work.git(&["tag", "-a", "v1", "-m", "v1"]);
    fixture.work.git(&["tag", "light"]);
    fixture.work.checkout_new_branch("feature");
    fixture.work.write("f", "f\n");
    fixture.work.commit("feature");
    fixture.bare.push_from(&fixture.work, &["--all"]);
    fixture.bare.push_from(&fixture.work, &["--tags"]);
    let mirror = fixture.fetch(None).await.unwrap();
    assert_eq!(
        branches_and_tags(mirror.path()),
        branches_and_tags(&fixture.bare.path())
    );

    // A submodule's commit (a gitlink) is not an object of this repository.
    fixture.work.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{},vendored", "5".repeat(40)),
    ]);
    fixture.work.git(&["commit", "-qm", "a submodule"]);

    // Rewritten history (a force push), a deleted tag, a deleted branch, a
    // moved tag, a new branch.
    fixture.work.git(&["checkout", "-q", "main"]);
    fixture.work.git(&["reset", "-q", "--hard", "HEAD"]);
    fixture.work.write("a", "rewritten\n");
    fixture
        .work
        .git(&["commit", "-q", "--amend", "-am", "rewritten"]);
    fixture.work.git(&["tag", "-f", "light"]);
    fixture.work.git(&["tag", "-d", "v1"]);
    fixture.work.checkout_new_branch("next");
    fixture.bare.git(&["tag", "-d", "v1"]);
    fixture.bare.git(&["branch", "-D", "feature"]);
    fixture
        .bare
        .push_from(&fixture.work, &["--force", "main", "next", "light"]);
    fixture
        .bare
        .push_from(&fixture.work, &["--force", "--tags"]);
    let rewritten = fixture.work.git(&["rev-parse", "main"]);
    let mirror = fixture.fetch(Some(&rewritten)).await.unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    let expected = branches_and_tags(&fixture.bare.path());
    assert!(!expected.contains("refs/tags/v1") && !expected.contains("feature"));
    assert_eq!(branches_and_tags(mirror.path()), expected);
    assert_eq!(
        mirror.read_file("main", "a").await.unwrap().as_deref(),
        Some("rewritten\n")
    );
    // The mirror is a sound repository for git itself.
    assert_complete(mirror.path());
}

#[tokio::test]
async fn a_local_repository_that_disappeared_is_unreachable() {
    let fixture = Fixture::new();
    fixture.push(&[("a", "1\n")], "first");
    fixture.fetch(None).await.unwrap();
    std::fs::remove_dir_all(fixture.bare.path()).unwrap();
    let error = fixture.fetch(None).await.unwrap_err();
    assert!(matches!(error, GitError::Unreachable { .. }), "{error}");
    assert!(
        error.to_string().contains(&fixture.bare.file_url()),
        "{error}"
    );
}

#[tokio::test]
async fn a_push_too_large_to_copy_goes_through_upload_pack_from_the_pushed_branch() {
    let fixture = Fixture::new();
    fixture.push(&[("takofile", "x\n")], "first");
    fixture.work.checkout_new_branch("feature");
    fixture.work.write("f", "f\n");
    fixture.work.commit("feature");
    fixture.bare.push_from(&fixture.work, &["feature"]);
    fixture.fetch(None).await.unwrap();

    // More objects than a direct copy takes: 2,100 files in one commit.
    for i in 0..2_100 {
        fixture
            .work
            .write(&format!("many/file-{i}.txt"), &format!("{i}\n"));
    }
    let big = fixture.work.commit("many files");
    fixture.bare.push_from(&fixture.work, &["feature"]);
    let mirror = fixture
        .mirrors
        .fetch_push(
            &fixture.bare.file_url(),
            None,
            &big,
            Some("feature"),
            "main",
        )
        .await
        .unwrap();
    assert_eq!(mirror.outcome(), FetchOutcome::Fetched);
    assert_eq!(
        branches_and_tags(mirror.path()),
        branches_and_tags(&fixture.bare.path())
    );
    assert_eq!(
        mirror
            .read_file(&big, "many/file-2099.txt")
            .await
            .unwrap()
            .as_deref(),
        Some("2099\n")
    );
    assert_complete(mirror.path());
}

#[tokio::test]
async fn a_shallow_local_repository_is_fetched_through_upload_pack() {
    let fixture = Fixture::new();
    fixture.push(&[("a", "1\n")], "first");
    fixture.push(&[("a", "2\n")], "second");
    // A shallow clone of the bare repository is the remote.
    let shallow = tempfile::tempdir().unwrap();
    let shallow_path = shallow.path().join("shallow.git");
    let status = std::process::Command::new("git")
        .args(["clone", "-q", "--bare", "--depth", "1"])
        .arg(fixture.bare.file_url())
        .arg(&shallow_path)
        .status()
        .unwrap();
    assert!(status.success());
    let url = format!("file://{}", shallow_path.display());
    let mirror = fixture.mirrors.fetch(&url, None, None).await.unwrap();
    assert_eq!(
        mirror.read_file("main", "a").await.unwrap().as_deref(),
        Some("2\n")
    );
    // A new commit on the shallow remote arrives through git-upload-pack.
    let work = tempfile::tempdir().unwrap();
    let run = |dir: &Path, args: &[&str]| {
        let output = git_command(dir).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    run(work.path(), &["clone", "-q", &url, "w"]);
    let w = work.path().join("w");
    std::fs::write(w.join("a"), "3\n").unwrap();
    run(&w, &["commit", "-qam", "third"]);
    run(&w, &["push", "-q", "origin", "HEAD:main"]);
    let third = run(&w, &["rev-parse", "HEAD"]);
    let mirror = fixture
        .mirrors
        .fetch_push(&url, None, &third, Some("main"), "main")
        .await
        .unwrap();
    assert_eq!(
        mirror.read_file(&third, "a").await.unwrap().as_deref(),
        Some("3\n")
    );
}

#[tokio::test]
async fn leftovers_of_a_killed_process_are_removed_and_mirrors_kept() {
    let fixture = Fixture::new();
    fixture.push(&[("a", "1\n")], "first");
    fixture.fetch(None).await.unwrap();
    let root = fixture.mirrors.root().to_owned();
    for leftover in [".clone-abc123", ".fetch-def456"] {
        std::fs::create_dir_all(root.join(leftover).join("objects")).unwrap();
    }
    assert_eq!(fixture.mirrors.remove_leftovers(), 2);
    assert!(!root.join(".clone-abc123").exists() && !root.join(".fetch-def456").exists());
    assert_eq!(mirror_count(&root), 1);
    let mirror = fixture.fetch(None).await.unwrap();
    assert_eq!(
        mirror.read_file("main", "a").await.unwrap().as_deref(),
        Some("1\n")
    );
}

#[tokio::test]
async fn a_commits_files_stream_as_a_tar_archive() {
    let fixture = Fixture::new();
    let first = fixture.push(&[("a.txt", "one\n"), ("dir/b.txt", "two\n")], "first");
    fixture.push(&[("a.txt", "changed\n")], "second");
    let mirror = fixture.fetch(None).await.unwrap();
    let mut archive = mirror.archive(&first).await.unwrap();
    let mut tar = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let read = archive.read(&mut buffer).await.unwrap();
        if read == 0 {
            break;
        }
        tar.extend_from_slice(&buffer[..read]);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.tar"), &tar).unwrap();
    let status = std::process::Command::new("tar")
        .args(["-xf", "x.tar"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "one\n",
        "the first commit's files, not the branch's"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("dir/b.txt")).unwrap(),
        "two\n"
    );
    let unknown = mirror
        .archive("0123456789abcdef0123456789abcdef01234567")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, GitError::UnknownRevision { .. }),
        "{unknown}"
    );
}

#[tokio::test]
async fn log_lists_a_range_oldest_first_keeping_the_newest_and_counting_all() {
    let fixture = Fixture::new();
    let base = fixture.push(&[("takofile", "0\n")], "base");
    let mut pushed = Vec::new();
    for n in 1..=5 {
        pushed.push(fixture.push(
            &[("takofile", &format!("{n}\n"))],
            &format!("Change {n}\n\nBody {n}\n"),
        ));
    }
    let mirror = fixture.fetch(None).await.unwrap();
    let head = pushed.last().unwrap().clone();

    let (all, count) = mirror.log(Some(&base), &head, 100).await.unwrap();
    assert_eq!(count, 5);
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    let expected: Vec<&str> = pushed.iter().map(String::as_str).collect();
    assert_eq!(ids, expected);
    assert!(
        all[0].message.starts_with("Change 1\n\nBody 1"),
        "{:?}",
        all[0]
    );
    assert!(!all[0].author.is_empty());

    // At most `max`: the newest, still oldest first.
    let (newest, count) = mirror.log(Some(&base), &head, 2).await.unwrap();
    assert_eq!(count, 5);
    assert_eq!(
        newest.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        expected[3..].to_vec()
    );

    // Without a start: the commit and its history.
    let (alone, count) = mirror.log(None, &base, 1).await.unwrap();
    assert_eq!((alone.len(), count), (1, 1));
    assert_eq!(alone[0].id, base);

    let missing = "0123456789abcdef0123456789abcdef01234567";
    assert!(matches!(
        mirror.log(Some(missing), &head, 10).await,
        Err(GitError::UnknownRevision { .. })
    ));
}

/// Reads a whole archive.
async fn archive_bytes(mut archive: tako_git::Archive) -> Vec<u8> {
    let mut tar = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = archive.read(&mut buffer).await.unwrap();
        if read == 0 {
            break;
        }
        tar.extend_from_slice(&buffer[..read]);
    }
    tar
}

/// What `tar -xf` makes of `tar`: every path with its kind, executable bit
/// and content (or link target), sorted.
fn extracted(tar: &[u8]) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.tar"), tar).unwrap();
    let into = dir.path().join("x");
    std::fs::create_dir(&into).unwrap();
    let status = std::process::Command::new("tar")
        .args(["-xf", "../x.tar"])
        .current_dir(&into)
        .status()
        .unwrap();
    assert!(status.success());
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((name, format!("link -> {}", target.display())));
            } else if meta.is_dir() {
                out.push((name, "dir".to_owned()));
                walk(root, &path, out);
            } else {
                let exec = meta.permissions().mode() & 0o111 != 0;
                let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                out.push((name, format!("file exec={exec} {content:?}")));
            }
        }
    }
    let mut out = Vec::new();
    walk(&into, &into, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn an_archive_built_in_process_extracts_to_what_git_archive_gives() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new();
    let long = format!("{}/{}.txt", "d".repeat(60), "f".repeat(80));
    fixture
        .work
        .write("scripts/deploy.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(
        fixture.work.path().join("scripts/deploy.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("scripts/deploy.sh", fixture.work.path().join("run")).unwrap();
    for (path, content) in [
        ("takofile", "x\n"),
        ("a.txt", "one\r\ntwo\n"),
        ("empty.txt", ""),
        ("deep/er/still/file.txt", "deep\n"),
        (long.as_str(), "a long path\n"),
        ("sp ace/ü.txt", "unicode\n"),
    ] {
        fixture.work.write(path, content);
    }
    let commit = fixture.push(&[], "everything a tree holds");
    let mirror = fixture.fetch(None).await.unwrap();

    let built = mirror.archive(&commit).await.unwrap();
    assert!(built.is_built_in_process());
    let ours = extracted(&archive_bytes(built).await);
    let git = extracted(&archive_bytes(mirror.archive_with_git(&commit).await.unwrap()).await);
    assert_eq!(ours, git);
    assert!(ours.iter().any(|(p, _)| p == &long), "{ours:?}");
    assert!(
        ours.contains(&("run".to_owned(), "link -> scripts/deploy.sh".to_owned())),
        "{ours:?}"
    );

    // export-ignore (and any attribute) is git's: the archive is git's.
    let ignoring = fixture.push(
        &[
            (
                ".gitattributes",
                "secret/ export-ignore\n*.bat text eol=crlf\n",
            ),
            ("secret/key.txt", "not exported\n"),
            ("setup.bat", "echo one\necho two\n"),
        ],
        "attributes",
    );
    let mirror = fixture.fetch(None).await.unwrap();
    let archive = mirror.archive(&ignoring).await.unwrap();
    assert!(!archive.is_built_in_process());
    let ours = extracted(&archive_bytes(archive).await);
    assert!(
        !ours.iter().any(|(p, _)| p.starts_with("secret")),
        "{ours:?}"
    );
    assert!(
        ours.contains(&(
            "setup.bat".to_owned(),
            format!("file exec=false {:?}", "echo one\r\necho two\r\n")
        )),
        "{ours:?}"
    );
    let git = extracted(&archive_bytes(mirror.archive_with_git(&ignoring).await.unwrap()).await);
    assert_eq!(ours, git);
}
