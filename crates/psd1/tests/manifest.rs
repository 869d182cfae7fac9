//! Module manifest field mapping beyond the real-world fixtures.

use tako_psd1::{ModuleManifest, RequiredModule};

const FULL: &str = r#"
@{
    ModuleToProcess = 'Legacy.psm1'
    ModuleVersion = 1.2
    GUID = "0b0a8c47-0000-4000-8000-000000000001"
    PowerShellVersion = 5.1
    ClrVersion = '4.0'
    ProcessorArchitecture = 'Amd64'
    DefaultCommandPrefix = 'Tk'
    RequiredModules = @(
        'PSReadLine'
        @{ ModuleName = 'Az.Accounts'; ModuleVersion = '2.2.8' }
        @{
            ModuleName = 'Pester'
            GUID = 'a699dea5-2c73-4616-a270-1f7abb777e71'
            RequiredVersion = '5.2.0'
        }
        @{ ModuleName = 'Other'; MaximumVersion = '3.*' }
    )
    ScriptsToProcess = 'init.ps1'
    ModuleList = @()
    FileList = 'a.ps1', 'b.ps1'
    FunctionsToExport = @()
    PrivateData = @{
        PSData = @{
            Tags = 'one'
            ReleaseNotes = @"
Fixed `"quotes`" and `$money.
"@
            Prerelease = 'beta1'
            RequireLicenseAcceptance = $true
            ExternalModuleDependencies = @('SqlServer')
        }
    }
}
"#;

#[test]
fn full_manifest() {
    let m = ModuleManifest::from_text(FULL).unwrap();
    assert_eq!(m.version, "1.2", "an unquoted decimal keeps its text");
    assert_eq!(m.full_version(), "1.2-beta1");
    assert_eq!(m.root_module.as_deref(), Some("Legacy.psm1"));
    assert_eq!(m.powershell_version.as_deref(), Some("5.1"));
    assert_eq!(m.clr_version.as_deref(), Some("4.0"));
    assert_eq!(m.processor_architecture.as_deref(), Some("Amd64"));
    assert_eq!(m.default_command_prefix.as_deref(), Some("Tk"));
    assert_eq!(
        m.required_modules,
        vec![
            RequiredModule {
                name: "PSReadLine".to_owned(),
                ..RequiredModule::default()
            },
            RequiredModule {
                name: "Az.Accounts".to_owned(),
                module_version: Some("2.2.8".to_owned()),
                ..RequiredModule::default()
            },
            RequiredModule {
                name: "Pester".to_owned(),
                guid: Some("a699dea5-2c73-4616-a270-1f7abb777e71".to_owned()),
                required_version: Some("5.2.0".to_owned()),
                ..RequiredModule::default()
            },
            RequiredModule {
                name: "Other".to_owned(),
                maximum_version: Some("3.*".to_owned()),
                ..RequiredModule::default()
            },
        ]
    );
    assert_eq!(m.scripts_to_process, ["init.ps1"]);
    assert!(m.module_list.is_empty());
    assert_eq!(m.file_list, ["a.ps1", "b.ps1"]);
    assert_eq!(m.functions_to_export, Some(vec![]));
    assert_eq!(m.cmdlets_to_export, None);
    assert_eq!(m.tags, ["one"]);
    assert_eq!(
        m.release_notes.as_deref(),
        Some("Fixed \"quotes\" and $money.")
    );
    assert_eq!(m.prerelease.as_deref(), Some("beta1"));
    assert!(m.require_license_acceptance);
    assert_eq!(m.external_module_dependencies, ["SqlServer"]);
}

#[test]
fn keys_are_case_insensitive() {
    let m = ModuleManifest::from_text(
        "@{ moduleversion = '0.1'; privatedata = @{ psdata = @{ projecturi = 'https://x' } } }",
    )
    .unwrap();
    assert_eq!(m.version, "0.1");
    assert_eq!(m.project_uri.as_deref(), Some("https://x"));
}

#[test]
fn null_and_empty_private_data_are_absent() {
    for private in ["$null", "''", "@{}", "@{ PSData = $null }"] {
        let m = ModuleManifest::from_text(&format!(
            "@{{ ModuleVersion = '1.0'; PrivateData = {private} }}"
        ))
        .unwrap();
        assert!(m.tags.is_empty(), "{private}");
        assert_eq!(m.prerelease, None, "{private}");
    }
}

#[test]
fn wrong_types_are_reported_with_their_path() {
    for (text, expected) in [
        (
            "@{ ModuleVersion = '1.0'; Author = @('a') }",
            "module manifest field Author: expected a string, found an array",
        ),
        (
            "@{ ModuleVersion = '1.0'; PrivateData = @{ PSData = 'x' } }",
            "module manifest field PrivateData.PSData: expected a hashtable, found a string",
        ),
        (
            "@{ ModuleVersion = '1.0'; PrivateData = @{ PSData = @{ RequireLicenseAcceptance = 'yes' } } }",
            "module manifest field PrivateData.PSData.RequireLicenseAcceptance: expected $true or $false, found a string",
        ),
        (
            "@{ ModuleVersion = '1.0'; RequiredModules = @(1) }",
            "module manifest field RequiredModules: expected a module name or a hashtable @{ ModuleName = ... }, found an integer at item 1",
        ),
        (
            "@{ ModuleVersion = '1.0'; RequiredModules = @(@{ ModuleName = @('x') }) }",
            "module manifest field RequiredModules[0].ModuleName: expected a string",
        ),
        (
            "@{ ModuleVersion = '1.0.0.0.0' }",
            "module manifest field ModuleVersion: expected a version of two to four numbers like 1.0 or 1.2.3, found \"1.0.0.0.0\"",
        ),
    ] {
        let err = ModuleManifest::from_text(text).unwrap_err();
        assert_eq!(err.to_string(), expected, "{text}");
    }
}
