//! Real-world module manifests: parse snapshots and manifest fields.

use tako_psd1::{ModuleManifest, RequiredModule, Value, parse};

const STATUSCAKE: &str = include_str!("fixtures/StatusCakeDSC.psd1");
const PESTER: &str = include_str!("fixtures/Pester.psd1");
const PSSA: &str = include_str!("fixtures/PSScriptAnalyzer.psd1");
const POSH_ACME: &str = include_str!("fixtures/Posh-ACME.psd1");
const AZS: &str = include_str!("fixtures/Azs.Fabric.Admin.psd1");

const ALL: [(&str, &str); 5] = [
    ("StatusCakeDSC", STATUSCAKE),
    ("Pester", PESTER),
    ("PSScriptAnalyzer", PSSA),
    ("Posh-ACME", POSH_ACME),
    ("Azs.Fabric.Admin", AZS),
];

/// As `New-ModuleManifest` writes on Windows: BOM and CRLF.
fn windows_flavour(text: &str) -> String {
    format!("\u{feff}{}", text.replace('\n', "\r\n"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_fixture_parses_to_a_hashtable() {
    for (name, text) in ALL {
        let value = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(value.as_hashtable().is_some(), "{name}");
        ModuleManifest::from_text(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn crlf_and_bom_parse_the_same() {
    for (name, text) in ALL {
        let lf = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let crlf = parse(&windows_flavour(text)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(lf, crlf, "{name}");
    }
}

#[test]
fn snapshot_statuscake() {
    insta::assert_debug_snapshot!(parse(STATUSCAKE).unwrap());
}

#[test]
fn snapshot_pester() {
    insta::assert_debug_snapshot!(parse(PESTER).unwrap());
}

#[test]
fn snapshot_posh_acme() {
    insta::assert_debug_snapshot!(parse(POSH_ACME).unwrap());
}

#[test]
fn snapshot_azs_fabric_admin() {
    insta::assert_debug_snapshot!(parse(AZS).unwrap());
}

#[test]
fn statuscake_manifest() {
    let m = ModuleManifest::from_text(STATUSCAKE).unwrap();
    assert_eq!(m.version, "2.3.5");
    assert_eq!(m.full_version(), "2.3.5");
    assert_eq!(m.root_module.as_deref(), Some("StatusCakeDSC"));
    assert_eq!(
        m.guid.as_deref(),
        Some("14c4f055-b47b-4ea8-a8d8-86aec7ad737c")
    );
    assert_eq!(m.author.as_deref(), Some("Jason Brown"));
    assert_eq!(
        m.company_name.as_deref(),
        Some("https://github.com/stopthatastronaut")
    );
    assert_eq!(
        m.description.as_deref(),
        Some("Provisions and manages checks and resources on statuscake.com")
    );
    assert_eq!(m.powershell_version.as_deref(), Some("5.0"));
    assert_eq!(
        m.nested_modules
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        [
            "StatusCakeSSL.psm1",
            "StatusCakeTest.psm1",
            "StatusCakeContactGroup.psm1"
        ]
    );
    assert_eq!(m.functions_to_export, Some(strings(&["*"])));
    assert_eq!(m.cmdlets_to_export, None, "commented out");
    assert_eq!(
        m.dsc_resources_to_export,
        Some(strings(&[
            "StatusCakeSSL",
            "StatusCakeTest",
            "StatusCakeContactGroup"
        ]))
    );
    assert_eq!(
        m.help_info_uri.as_deref(),
        Some("https://github.com/stopthatastronaut/StatusCakeDSC")
    );
    assert!(m.tags.is_empty());
    assert_eq!(m.project_uri, None);
}

#[test]
fn pester_manifest() {
    let m = ModuleManifest::from_text(PESTER).unwrap();
    assert_eq!(m.version, "5.2.0");
    assert_eq!(m.prerelease.as_deref(), Some("rc2"));
    assert_eq!(m.full_version(), "5.2.0-rc2");
    assert_eq!(m.types_to_process, Vec::<String>::new());
    let functions = m.functions_to_export.unwrap();
    assert_eq!(functions.len(), 26);
    assert_eq!(functions.first().map(String::as_str), Some("Invoke-Pester"));
    assert_eq!(functions.last().map(String::as_str), Some("New-Fixture"));
    assert_eq!(m.cmdlets_to_export, Some(vec![]), "'' means none");
    assert_eq!(m.variables_to_export, Some(vec![]));
    assert_eq!(
        m.aliases_to_export,
        Some(strings(&["Add-AssertionOperator", "Get-AssertionOperator"]))
    );
    assert_eq!(m.tags.len(), 10);
    assert_eq!(m.tags[0], "powershell");
    assert_eq!(
        m.icon_uri.as_deref(),
        Some("https://raw.githubusercontent.com/pester/Pester/master/images/pester.PNG")
    );
    assert_eq!(
        m.project_uri.as_deref(),
        Some("https://github.com/Pester/Pester")
    );
    assert_eq!(
        m.license_uri.as_deref(),
        Some("https://www.apache.org/licenses/LICENSE-2.0.html")
    );
    assert_eq!(
        m.release_notes.as_deref(),
        Some("https://github.com/pester/Pester/releases/tag/5.2.0-rc1")
    );
    assert!(!m.require_license_acceptance);
    // Unmodelled keys stay reachable.
    let private = m.data.get("privatedata").and_then(Value::as_hashtable);
    assert_eq!(
        private
            .and_then(|p| p.get("RequiredAssemblyVersion"))
            .and_then(Value::as_str),
        Some("5.2.0")
    );
}

#[test]
fn psscriptanalyzer_manifest() {
    let m = ModuleManifest::from_text(PSSA).unwrap();
    assert_eq!(m.version, "1.0");
    assert_eq!(m.author, None);
    assert_eq!(m.company_name.as_deref(), Some("Microsoft"));
    assert_eq!(
        m.types_to_process,
        strings(&["ScriptAnalyzer.types.ps1xml"])
    );
    assert_eq!(
        m.formats_to_process,
        strings(&["ScriptAnalyzer.format.ps1xml"])
    );
    assert_eq!(m.required_modules, vec![]);
    assert_eq!(
        m.help_info_uri.as_deref(),
        Some("http://go.microsoft.com/fwlink/?LinkId=525911")
    );
}

#[test]
fn posh_acme_manifest() {
    let m = ModuleManifest::from_text(POSH_ACME).unwrap();
    assert_eq!(m.version, "4.15.0");
    assert_eq!(
        m.description.as_deref(),
        Some(
            "ACME protocol client for obtaining certificates using Let's Encrypt (or other ACME compliant CA)"
        )
    );
    assert_eq!(m.compatible_ps_editions, strings(&["Desktop", "Core"]));
    assert_eq!(
        m.required_assemblies,
        strings(&[
            "lib\\BC.Crypto.1.8.8.2-netstandard2.0.dll",
            "System.Net.Http"
        ])
    );
    assert_eq!(m.functions_to_export.map(|f| f.len()), Some(31));
    assert_eq!(m.cmdlets_to_export, Some(vec![]));
    assert_eq!(
        m.tags,
        strings(&[
            "LetsEncrypt",
            "ssl",
            "tls",
            "certificates",
            "acme",
            "Linux",
            "Mac"
        ])
    );
    assert_eq!(m.icon_uri, None);
    let notes = m.release_notes.unwrap();
    assert!(notes.starts_with("## 4.15.0 (2022-08-26)\n\n* PAOrder objects"));
    assert!(notes.ends_with("not provided in the order."));
    assert!(notes.contains("-UseModernPfxEncryption:$false"));
}

#[test]
fn posh_acme_here_string_is_the_same_with_crlf() {
    let lf = ModuleManifest::from_text(POSH_ACME).unwrap();
    let crlf = ModuleManifest::from_text(&windows_flavour(POSH_ACME)).unwrap();
    assert_eq!(lf.release_notes, crlf.release_notes);
    assert!(!crlf.release_notes.unwrap_or_default().contains('\r'));
}

#[test]
fn azs_manifest() {
    let m = ModuleManifest::from_text(AZS).unwrap();
    assert_eq!(m.version, "1.0.1");
    assert_eq!(m.compatible_ps_editions, strings(&["Core", "Desktop"]));
    assert_eq!(
        m.required_assemblies,
        strings(&["./bin/Azs.Fabric.Admin.private.dll"])
    );
    assert_eq!(
        m.required_modules,
        vec![
            RequiredModule {
                name: "Az.Accounts".to_owned(),
                required_version: Some("2.2.8".to_owned()),
                ..RequiredModule::default()
            },
            RequiredModule {
                name: "Az.Resources".to_owned(),
                required_version: Some("0.11.0".to_owned()),
                ..RequiredModule::default()
            },
        ]
    );
    assert_eq!(m.functions_to_export.map(|f| f.len()), Some(27));
    assert_eq!(
        m.tags,
        strings(&["AzureStack", "ResourceManager", "ARM", "PSModule"])
    );
    assert_eq!(
        m.license_uri.as_deref(),
        Some("https://aka.ms/azps-license")
    );
}
