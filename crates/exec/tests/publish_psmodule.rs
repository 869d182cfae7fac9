//! `publish-psmodule` against real NuGet v2 servers (minchoc and pynuget
//! from PyPI, started on 127.0.0.1 by `tako_test_support::nuget`): publish,
//! read the package back, publish again, a refused key, a lost race, a
//! prerelease, a v3 service index, cancellation.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use tako_core::Masker;
use tako_core::system::DeploymentFacts;
use tako_exec::sink::{MemorySink, TaskLog};
use tako_exec::steps::StepContext;
use tako_exec::steps::publish_psmodule::{ExistenceCheck, nuspec, package, run};
use tako_takofile::WithValue;
use tako_test_support::nuget::{MINCHOC_API_KEY, NugetImpl, NugetPeer};
use tokio_util::sync::CancellationToken;

/// A realistic module: exported functions, tags, dependencies, help, a
/// hidden file, a `.git` folder, tests and a build script to leave out.
fn write_module(root: &Path, name: &str, version: &str, extra_psdata: &str, requires: &str) {
    let dir = root.join("src").join(name);
    let write = |relative: &str, text: &str| {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        &format!("{name}.psd1"),
        &format!(
            r#"# Module manifest for module '{name}'
@{{
    RootModule        = '{name}.psm1'
    ModuleVersion     = '{version}'
    GUID              = '6f1c8a5e-3b1d-4e8a-9a51-0c1d2e3f4a5b'
    Author            = 'Ada Lovelace'
    CompanyName       = 'Analytical Engines Ltd'
    Copyright         = '(c) 2026 Ada Lovelace. All rights reserved.'
    Description       = 'Tools for {name}: deploys, checks & reports'
    PowerShellVersion = '5.1'
    RequiredModules   = @({requires})
    FunctionsToExport = @('Get-{name}Status', 'Set-{name}Config')
    CmdletsToExport   = @()
    VariablesToExport = @()
    AliasesToExport   = @('g{name}')
    PrivateData = @{{
        PSData = @{{
            Tags         = @('deployment', 'cd')
            LicenseUri   = 'https://example.invalid/{name}/LICENSE'
            ProjectUri   = 'https://example.invalid/{name}'
            ReleaseNotes = @'
First release.
Second line.
'@
{extra_psdata}
        }}
    }}
}}
"#
        ),
    );
    write(
        &format!("{name}.psm1"),
        &format!(
            "function Get-{name}Status {{ 'ok' }}\nfunction Set-{name}Config {{ param($Value) }}\nfunction helper {{ }}\n"
        ),
    );
    write(&format!("en-US/about_{name}.help.txt"), "TOPIC\n");
    write("Private/Helpers.ps1", "function Get-Private { }\n");
    write(".hidden-notes.txt", "not for the package\n");
    write(".git/config", "[core]\n");
    write(&format!("tests/{name}.Tests.ps1"), "Describe 'x' { }\n");
    write("build.ps1", "Invoke-Build\n");
    write(&format!("Private/{name}.Tests.ps1"), "Describe 'y' { }\n");
}

const REQUIRES: &str = "'PSReadLine', @{ ModuleName = 'Pester'; ModuleVersion = '5.0' }, @{ ModuleName = 'PSScriptAnalyzer'; RequiredVersion = '1.21.0' }";
const REQUIRES_VERSIONED: &str =
    "@{ ModuleName = 'Pester'; ModuleVersion = '5.0'; MaximumVersion = '5.9' }";

fn text(value: &str) -> WithValue {
    WithValue::Text(value.to_owned())
}

fn params(pairs: &[(&str, WithValue)]) -> Vec<(String, WithValue)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

struct Outcome {
    result: Result<Vec<(String, String)>, String>,
    log: String,
}

impl Outcome {
    fn output(&self, name: &str) -> String {
        let outputs = self.result.as_ref().unwrap_or_else(|e| {
            panic!("the step failed: {e}\nlog:\n{}", self.log);
        });
        outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no output {name}"))
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(outputs) => panic!("the step succeeded: {outputs:?}\nlog:\n{}", self.log),
            Err(e) => e.clone(),
        }
    }
}

async fn publish_with(
    root: &Path,
    parameters: Vec<(String, WithValue)>,
    check: ExistenceCheck,
    cancel: &CancellationToken,
) -> Outcome {
    let sink = MemorySink::new();
    let log = TaskLog::new(&sink, Masker::new());
    let scratch = tempfile::tempdir().unwrap();
    let facts = DeploymentFacts::default();
    let context = StepContext {
        step: "Publish",
        root,
        working_dir: root,
        scratch_dir: scratch.path(),
        parameters: &parameters,
        facts: &facts,
        error: None,
        steps_so_far: &[],
        log: &log,
        cancel,
    };
    let result = run(&context, check).await.map_err(|e| e.to_string());
    Outcome {
        result,
        log: sink.text(),
    }
}

async fn publish(root: &Path, parameters: Vec<(String, WithValue)>) -> Outcome {
    publish_with(
        root,
        parameters,
        ExistenceCheck::Ask,
        &CancellationToken::new(),
    )
    .await
}

fn zip_entries(bytes: &[u8]) -> (Vec<String>, String) {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().into_owned())
        .collect();
    let nuspec_name = names
        .iter()
        .find(|n| n.ends_with(".nuspec"))
        .unwrap()
        .clone();
    let mut nuspec = String::new();
    archive
        .by_name(&nuspec_name)
        .unwrap()
        .read_to_string(&mut nuspec)
        .unwrap();
    (names, nuspec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_reads_back_and_publishes_nothing_the_second_time() {
    let Some(peer) = NugetPeer::start(NugetImpl::Minchoc) else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    write_module(repo.path(), "CdTools", "1.2", "", REQUIRES);
    let parameters = params(&[
        ("Path", text("src/CdTools")),
        ("Feed", text(&peer.feed_url())),
        ("ApiKey", text(MINCHOC_API_KEY)),
        (
            "ExcludePaths",
            WithValue::List(vec![text("tests"), text("build.ps1"), text("*.Tests.ps1")]),
        ),
    ]);

    let first = publish(repo.path(), parameters.clone()).await;
    assert_eq!(first.output("Published"), "True", "log:\n{}", first.log);
    assert_eq!(first.output("Version"), "1.2");
    assert!(
        first.log.contains("Published CdTools 1.2 to"),
        "{}",
        first.log
    );
    assert!(!first.log.contains(MINCHOC_API_KEY), "{}", first.log);

    // The feed knows it, under the normalized version.
    let found = peer.get("/api/v2/Packages(Id='CdTools',Version='1.2.0')");
    assert_eq!(found.status, 200);
    assert!(
        found.text().contains("<d:Version>1.2.0</d:Version>"),
        "{}",
        found.text()
    );

    // The package as the server gives it back.
    let bytes = peer
        .package("CdTools", "1.2.0")
        .expect("the server serves the package");
    let (names, nuspec) = zip_entries(&bytes);
    let psmdcp = names.last().unwrap().clone();
    assert!(
        psmdcp.starts_with("package/services/metadata/core-properties/")
            && psmdcp.ends_with(".psmdcp"),
        "{names:?}"
    );
    assert_eq!(
        names[..names.len() - 1],
        [
            "_rels/.rels",
            "CdTools.nuspec",
            "CdTools.psd1",
            "CdTools.psm1",
            "Private/Helpers.ps1",
            "en-US/about_CdTools.help.txt",
            "[Content_Types].xml",
        ]
    );
    assert!(
        nuspec.contains(
            r#"<package xmlns="http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd">"#
        ),
        "{nuspec}"
    );
    for field in [
        "<id>CdTools</id>",
        "<version>1.2.0</version>",
        "<authors>Ada Lovelace</authors>",
        "<owners>Analytical Engines Ltd</owners>",
        "<requireLicenseAcceptance>false</requireLicenseAcceptance>",
        "<licenseUrl>https://example.invalid/CdTools/LICENSE</licenseUrl>",
        "<projectUrl>https://example.invalid/CdTools</projectUrl>",
        "<description>Tools for CdTools: deploys, checks &amp; reports</description>",
        "<releaseNotes>First release.\nSecond line.</releaseNotes>",
        "<copyright>(c) 2026 Ada Lovelace. All rights reserved.</copyright>",
        "<tags>deployment cd PSModule PSIncludes_Function PSFunction_Get-CdToolsStatus PSFunction_Set-CdToolsConfig PSCommand_Get-CdToolsStatus PSCommand_Set-CdToolsConfig PSCommand_gCdTools</tags>",
        r#"<dependency id="PSReadLine"/>"#,
        r#"<dependency id="Pester" version="5.0.0"/>"#,
        r#"<dependency id="PSScriptAnalyzer" version="[1.21.0]"/>"#,
    ] {
        assert!(nuspec.contains(field), "{field} not in\n{nuspec}");
    }
    let order: Vec<usize> = [
        "<id>",
        "<version>",
        "<authors>",
        "<owners>",
        "<requireLicenseAcceptance>",
        "<licenseUrl>",
        "<projectUrl>",
        "<description>",
        "<releaseNotes>",
        "<copyright>",
        "<tags>",
        "<dependencies>",
    ]
    .iter()
    .map(|tag| nuspec.find(tag).unwrap())
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{nuspec}");

    let second = publish(repo.path(), parameters).await;
    assert_eq!(second.output("Published"), "False");
    assert_eq!(second.output("Version"), "1.2");
    assert!(
        second
            .log
            .contains("CdTools 1.2 is already on the feed: nothing to publish"),
        "{}",
        second.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_never_shown() {
    let Some(peer) = NugetPeer::start(NugetImpl::Minchoc) else {
        return;
    };
    let wrong = "0badc0de-1111-4222-8333-944445555666";
    let repo = tempfile::tempdir().unwrap();
    write_module(repo.path(), "KeyTest", "0.3.0", "", REQUIRES);
    let outcome = publish(
        repo.path(),
        params(&[
            ("Path", text("src/KeyTest")),
            ("Feed", text(&peer.feed_url())),
            ("ApiKey", text(wrong)),
        ]),
    )
    .await;
    let error = outcome.error();
    assert!(error.contains("the feed refused the API key"), "{error}");
    assert!(error.contains("HTTP 403"), "{error}");
    assert!(!error.contains(wrong), "{error}");
    assert!(!outcome.log.is_empty());
    for line in outcome.log.lines() {
        assert!(!line.contains(wrong), "unmasked key in {line:?}");
    }
    assert_eq!(
        peer.get("/api/v2/Packages(Id='KeyTest',Version='0.3.0')")
            .status,
        404
    );
}

/// Someone else pushes the same version between the step's question and
/// its push: the step reports it, against both servers (400 and 409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_is_already_published_by_someone_else() {
    for kind in [NugetImpl::Minchoc, NugetImpl::Pynuget] {
        let Some(peer) = NugetPeer::start(kind) else {
            return;
        };
        let repo = tempfile::tempdir().unwrap();
        write_module(repo.path(), "RaceMod", "1.0.0", "", REQUIRES_VERSIONED);

        // The other publisher's package, built from the same folder.
        let dir = repo.path().join("src/RaceMod");
        let files = package::collect(&dir, repo.path(), &package::excludes(&[]).unwrap()).unwrap();
        let manifest = tako_psd1::ModuleManifest::from_text(
            &std::fs::read_to_string(dir.join("RaceMod.psd1")).unwrap(),
        )
        .unwrap();
        let meta = nuspec::metadata(
            "RaceMod",
            &manifest,
            "RaceMod.psd1",
            &package::discover(&files),
        )
        .unwrap();
        let nupkg =
            package::build(&meta, &files, &"0".repeat(32), zip::DateTime::default()).unwrap();
        let pushed = peer.push(&nupkg);
        assert_eq!(pushed.status, 201, "{kind:?}: {}", pushed.text());

        let outcome = publish_with(
            repo.path(),
            params(&[
                ("Path", text("src/RaceMod")),
                ("Feed", text(&peer.feed_url())),
                ("ApiKey", text(peer.api_key())),
            ]),
            ExistenceCheck::Skip,
            &CancellationToken::new(),
        )
        .await;
        let error = outcome.error();
        assert!(
            error.contains("RaceMod 1.0.0 was already published by someone else"),
            "{kind:?}: {error}"
        );
        let status = if kind == NugetImpl::Minchoc {
            "HTTP 400"
        } else {
            "HTTP 409"
        };
        assert!(error.contains(status), "{kind:?}: {error}");
        assert!(!error.contains(peer.api_key()), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prerelease_is_published_with_its_label() {
    let Some(peer) = NugetPeer::start(NugetImpl::Pynuget) else {
        return;
    };
    let repo = tempfile::tempdir().unwrap();
    write_module(
        repo.path(),
        "PreMod",
        "2.0.0",
        "            Prerelease = 'beta1'",
        REQUIRES_VERSIONED,
    );
    let parameters = params(&[
        ("Path", text("src/PreMod")),
        ("Feed", text(&peer.feed_url())),
        ("ApiKey", text(peer.api_key())),
        ("ExcludePaths", text("tests, build.ps1, **/*.Tests.ps1")),
    ]);
    let first = publish(repo.path(), parameters.clone()).await;
    assert_eq!(first.output("Published"), "True", "{}", first.log);
    assert_eq!(first.output("Version"), "2.0.0-beta1");

    let bytes = peer
        .package("PreMod", "2.0.0-beta1")
        .unwrap_or_else(|| panic!("pynuget stored no package; log:\n{}", peer.log()));
    let (names, nuspec) = zip_entries(&bytes);
    assert!(
        !names
            .iter()
            .any(|n| n.contains("Tests") || n.contains("build") || n.contains(".hidden")),
        "{names:?}"
    );
    assert!(
        nuspec.contains("http://schemas.microsoft.com/packaging/2011/10/nuspec.xsd"),
        "{nuspec}"
    );
    assert!(
        nuspec.contains("<version>2.0.0-beta1</version>"),
        "{nuspec}"
    );
    assert!(
        nuspec.contains(r#"<dependency id="Pester" version="[5.0.0, 5.9.0]"/>"#),
        "{nuspec}"
    );

    let second = publish(repo.path(), parameters).await;
    assert_eq!(second.output("Published"), "False", "{}", second.log);
    assert!(
        second
            .log
            .contains("PreMod 2.0.0-beta1 is already on the feed: nothing to publish"),
        "{}",
        second.log
    );
}

#[tokio::test]
async fn a_manifest_without_author_or_description_fails_by_name() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("modules/NoAuthor");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("NoAuthor.psd1"),
        "@{ ModuleVersion = '1.0.0'; Description = 'Has no author' }",
    )
    .unwrap();
    let outcome = publish(
        repo.path(),
        params(&[
            ("Path", text("modules/NoAuthor")),
            // Never contacted: the manifest is checked first.
            ("Feed", text("http://127.0.0.1:9/api/v2")),
            ("ApiKey", text("some-key-value")),
        ]),
    )
    .await;
    let error = outcome.error();
    assert!(
        error.contains("module manifest modules/NoAuthor/NoAuthor.psd1 must set Author"),
        "{error}"
    );
    for escape in ["../outside", "/etc"] {
        let outcome = publish(
            repo.path(),
            params(&[("Path", text(escape)), ("ApiKey", text("some-key-value"))]),
        )
        .await;
        assert!(
            outcome.error().contains("Path"),
            "{escape}: {}",
            outcome.error()
        );
    }
}

/// Serves fixed documents over HTTP on 127.0.0.1 (a v3 service index and a
/// flat-container version list are documents, not services).
fn serve_documents(documents: Vec<(String, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_owned();
            let (status, body) = documents
                .iter()
                .find(|(p, _)| *p == path)
                .map_or(("404 Not Found", String::new()), |(_, b)| {
                    ("200 OK", b.clone())
                });
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_service_index_leads_to_the_feed() {
    let Some(peer) = NugetPeer::start(NugetImpl::Minchoc) else {
        return;
    };
    let push = format!("http://{}/api/v2/package", peer.address());
    let legacy = peer.feed_url();
    let index = format!(
        r#"{{"version": "3.0.0", "resources": [
            {{"@id": "{push}", "@type": "PackagePublish/2.0.0"}},
            {{"@id": "{legacy}", "@type": "LegacyGallery/2.0.0"}}
        ]}}"#
    );
    let address = serve_documents(vec![("/v3/index.json".to_owned(), index)]);
    let repo = tempfile::tempdir().unwrap();
    write_module(repo.path(), "V3Mod", "3.1.0", "", REQUIRES);
    let parameters = params(&[
        ("Path", text("src/V3Mod")),
        ("Feed", text(&format!("http://{address}/v3/index.json"))),
        ("ApiKey", text(MINCHOC_API_KEY)),
    ]);
    let first = publish(repo.path(), parameters.clone()).await;
    assert_eq!(first.output("Published"), "True", "{}", first.log);
    assert!(peer.package("V3Mod", "3.1.0").is_some());
    let second = publish(repo.path(), parameters).await;
    assert_eq!(second.output("Published"), "False", "{}", second.log);

    // A flat container answers "is it there?" when the index has one.
    let flat = serve_documents(vec![(
        "/v3/flat/flatmod/index.json".to_owned(),
        r#"{"versions": ["0.9.0", "1.0.0"]}"#.to_owned(),
    )]);
    let flat_index = format!(
        r#"{{"version": "3.0.0", "resources": [
            {{"@id": "{push}", "@type": "PackagePublish/2.0.0"}},
            {{"@id": "http://{flat}/v3/flat/", "@type": "PackageBaseAddress/3.0.0"}}
        ]}}"#
    );
    let address = serve_documents(vec![("/v3/index.json".to_owned(), flat_index)]);
    write_module(repo.path(), "FlatMod", "1.0", "", REQUIRES);
    let outcome = publish(
        repo.path(),
        params(&[
            ("Path", text("src/FlatMod")),
            ("Feed", text(&format!("http://{address}/v3/index.json"))),
            ("ApiKey", text(MINCHOC_API_KEY)),
        ]),
    )
    .await;
    assert_eq!(outcome.output("Published"), "False", "{}", outcome.log);
    assert!(
        outcome.log.contains("FlatMod 1.0 is already on the feed"),
        "{}",
        outcome.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_aborts_the_request() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap();
    let repo = tempfile::tempdir().unwrap();
    write_module(repo.path(), "Slow", "1.0.0", "", REQUIRES);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let start = Instant::now();
    let outcome = publish_with(
        repo.path(),
        params(&[
            ("Path", text("src/Slow")),
            ("Feed", text(&format!("http://{address}/api/v2"))),
            ("ApiKey", text("some-key-value")),
        ]),
        ExistenceCheck::Ask,
        &cancel,
    )
    .await;
    let error = outcome.error();
    assert!(error.ends_with("cancelled"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(silent);
}
