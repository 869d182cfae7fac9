//! A module's package metadata and its `.nuspec`, as PowerShellGet's
//! `New-NuspecFile` fills it and NuGet's packer rewrites it inside the
//! `.nupkg` (pure: no I/O).
//!
//! - `id` is the module's name; `version` is `ModuleVersion` plus
//!   `-Prerelease`, in NuGet's normalized form (three parts, a fourth only
//!   when non-zero: `1.0` → `1.0.0`).
//! - Tags, in `Publish-PSArtifactUtility`'s order: `PSData.Tags`, `PSModule`,
//!   `PSIncludes_Cmdlet` with `PSCmdlet_*`, `PSIncludes_Function` with
//!   `PSFunction_*`, `PSCommand_*` (cmdlets, functions, aliases),
//!   `PSIncludes_DscResource` with `PSDscResource_*`,
//!   `PSIncludes_RoleCapability` with `PSRoleCapability_*`; split on spaces
//!   and de-duplicated (the packer keeps a set), first occurrence first.
//! - Dependencies come from `RequiredModules` (less those listed in
//!   `PSData.ExternalModuleDependencies`). New-NuspecFile writes
//!   `RequiredVersion` as `[v]`, `ModuleVersion` as `v`, `MaximumVersion` as
//!   `(,max]` and both bounds as `[min,max]`; the packer re-serializes the
//!   range the NuGet 2.8.3 way with normalized versions: `[1.0.0]`, `1.0.0`,
//!   `(, 2.0.0]`, `[1.0.0, 2.0.0]`. A bare module name has no `version`.
//! - The schema namespace is the lowest that fits (NuGet's
//!   `ManifestVersionUtility`): `2011/10` for a prerelease version, `2011/08`
//!   when copyright or release notes are set, `2010/07` otherwise.
//! - Elements in the packer's order: id, version, authors, owners,
//!   requireLicenseAcceptance, licenseUrl, projectUrl, iconUrl, description,
//!   releaseNotes, copyright, tags, dependencies; empty ones are left out.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use tako_psd1::{ModuleManifest, RequiredModule};

/// The nuspec schema of NuGet 1.x (the baseline).
pub const NS_2010_07: &str = "http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd";
/// The schema that added `copyright` and `releaseNotes`.
pub const NS_2011_08: &str = "http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd";
/// The schema that added SemVer prerelease versions.
pub const NS_2011_10: &str = "http://schemas.microsoft.com/packaging/2011/10/nuspec.xsd";

/// What the package says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageMetadata {
    /// The package id (the module's name).
    pub id: String,
    /// The version, NuGet-normalized (`1.2.0`, `2.0.0-beta1`).
    pub version: String,
    /// Whether the version has a prerelease label.
    pub prerelease: bool,
    /// `Author`.
    pub authors: String,
    /// `CompanyName`.
    pub owners: String,
    /// `Description`.
    pub description: String,
    /// `PSData.ReleaseNotes`.
    pub release_notes: String,
    /// `Copyright`.
    pub copyright: String,
    /// `PSData.RequireLicenseAcceptance`.
    pub require_license_acceptance: bool,
    /// `PSData.LicenseUri`.
    pub license_url: String,
    /// `PSData.ProjectUri`.
    pub project_url: String,
    /// `PSData.IconUri`.
    pub icon_url: String,
    /// The tags, in order, without duplicates.
    pub tags: Vec<String>,
    /// `(id, version range)`; an empty range writes no `version` attribute.
    pub dependencies: Vec<(String, String)>,
}

/// What reading the module's files found, beyond its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Discovered {
    /// Functions defined in the module's `.psm1` files (`function Name`), in
    /// order: used when `FunctionsToExport` is absent or has wildcards.
    pub functions: Vec<String>,
    /// Folder names under `DSCResources` (when `DscResourcesToExport` is
    /// absent or has wildcards).
    pub dsc_resources: Vec<String>,
    /// `RoleCapabilities/*.psrc` names.
    pub role_capabilities: Vec<String>,
}

/// Why the manifest cannot become a package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `Test-ModuleManifest`'s MissingRequiredModuleManifestKeys.
    #[error(
        "module manifest {manifest} must set {} (Publish-Module requires Author and Description)",
        missing.join(" and ")
    )]
    MissingKeys {
        /// The manifest's path, as shown.
        manifest: String,
        /// `Author`, `Description`.
        missing: Vec<&'static str>,
    },
    /// The module's name is not a valid NuGet id.
    #[error("module name {0:?} is not a valid package id (letters, digits, _ . -)")]
    BadId(String),
    /// The prerelease label is not a SemVer 1 label, or the version has not
    /// three parts.
    #[error("module manifest {manifest}: {message}")]
    BadVersion {
        /// The manifest's path, as shown.
        manifest: String,
        /// What is wrong.
        message: String,
    },
    /// `RequireLicenseAcceptance` without a licence.
    #[error("module manifest {0}: PrivateData.PSData.RequireLicenseAcceptance needs a LicenseUri")]
    LicenseRequired(String),
}

/// The package metadata of module `id` from its `manifest` (shown as
/// `manifest_name` in errors) and what its files revealed.
pub fn metadata(
    id: &str,
    manifest: &ModuleManifest,
    manifest_name: &str,
    discovered: &Discovered,
) -> Result<PackageMetadata, MetadataError> {
    let author = non_empty(manifest.author.as_deref());
    let description = non_empty(manifest.description.as_deref());
    let mut missing = Vec::new();
    if author.is_empty() {
        missing.push("Author");
    }
    if description.is_empty() {
        missing.push("Description");
    }
    if !missing.is_empty() {
        return Err(MetadataError::MissingKeys {
            manifest: manifest_name.to_owned(),
            missing,
        });
    }
    if !is_valid_id(id) {
        return Err(MetadataError::BadId(id.to_owned()));
    }
    let prerelease = prerelease_label(manifest).map_err(|message| MetadataError::BadVersion {
        manifest: manifest_name.to_owned(),
        message,
    })?;
    let mut version = normalize_version(&manifest.version).unwrap_or(manifest.version.clone());
    if let Some(label) = &prerelease {
        if manifest.version.split('.').count() != 3 {
            return Err(MetadataError::BadVersion {
                manifest: manifest_name.to_owned(),
                message: format!(
                    "ModuleVersion {} must have exactly 3 parts to be used with Prerelease {label}",
                    manifest.version
                ),
            });
        }
        version = format!("{version}-{label}");
    }
    let license_url = non_empty(manifest.license_uri.as_deref());
    if manifest.require_license_acceptance && license_url.is_empty() {
        return Err(MetadataError::LicenseRequired(manifest_name.to_owned()));
    }
    Ok(PackageMetadata {
        id: id.to_owned(),
        version,
        prerelease: prerelease.is_some(),
        authors: author,
        owners: non_empty(manifest.company_name.as_deref()),
        description,
        release_notes: non_empty(manifest.release_notes.as_deref()),
        copyright: non_empty(manifest.copyright.as_deref()),
        require_license_acceptance: manifest.require_license_acceptance,
        license_url,
        project_url: non_empty(manifest.project_uri.as_deref()),
        icon_url: non_empty(manifest.icon_uri.as_deref()),
        tags: tags(manifest, discovered),
        dependencies: dependencies(manifest),
    })
}

/// The version as the module's author wrote it: `ModuleVersion`, plus
/// `-Prerelease` when set (a leading `-` in the label is not doubled).
pub fn display_version(manifest: &ModuleManifest) -> String {
    match manifest.prerelease.as_deref().map(str::trim) {
        Some(label) if !label.trim_start_matches('-').is_empty() => {
            format!("{}-{}", manifest.version, label.trim_start_matches('-'))
        }
        _ => manifest.version.clone(),
    }
}

fn prerelease_label(manifest: &ModuleManifest) -> Result<Option<String>, String> {
    let Some(label) = manifest.prerelease.as_deref().map(str::trim) else {
        return Ok(None);
    };
    let label = label.strip_prefix('-').unwrap_or(label);
    if label.is_empty() {
        return Ok(None);
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "Prerelease {label:?} may hold only ASCII letters, digits and hyphens"
        ));
    }
    Ok(Some(label.to_owned()))
}

/// NuGet's normalized form of a `System.Version`-like text (`1.0` →
/// `1.0.0`, `1.2.3.0` → `1.2.3`, `1.2.3.4` stays); `None` if it is not one.
/// A `-label` suffix is kept.
pub fn normalize_version(version: &str) -> Option<String> {
    let (numbers, label) = match version.split_once('-') {
        Some((numbers, label)) => (numbers, Some(label)),
        None => (version, None),
    };
    let mut parts = numbers
        .trim()
        .split('.')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    while parts.len() < 3 {
        parts.push(0);
    }
    if parts.len() == 4 && parts[3] == 0 {
        parts.pop();
    }
    let mut out = parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".");
    if let Some(label) = label {
        out.push('-');
        out.push_str(label);
    }
    Some(out)
}

/// NuGet's id rule: `\w+([.-]\w+)*`, at most 100 characters.
pub fn is_valid_id(id: &str) -> bool {
    let word = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || c == '_' || (!c.is_ascii() && c.is_alphanumeric())
            })
    };
    id.chars().count() <= 100 && id.split(['.', '-']).all(word)
}

fn non_empty(value: Option<&str>) -> String {
    value.map(str::trim).unwrap_or_default().to_owned()
}

fn has_wildcard(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// PowerShell's `-like` on names (case-insensitive `*` and `?`).
fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => {
                n.first()
                    .is_some_and(|m| m.to_lowercase().eq(c.to_lowercase()))
                    && go(rest, &n[1..])
            }
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// The names a `*ToExport` entry exports: the entry itself when it lists
/// plain names, else the `found` names it matches (all of them when absent).
fn exported(entry: Option<&Vec<String>>, found: &[String]) -> Vec<String> {
    match entry {
        Some(names) if !names.iter().any(|n| has_wildcard(n)) => names.clone(),
        Some(patterns) => found
            .iter()
            .filter(|name| patterns.iter().any(|p| like(p, name)))
            .cloned()
            .collect(),
        None => found.to_vec(),
    }
}

/// Plain names only (binary cmdlets and aliases cannot be discovered
/// without PowerShell).
fn explicit(entry: Option<&Vec<String>>) -> Vec<String> {
    entry
        .map(|names| names.iter().filter(|n| !has_wildcard(n)).cloned().collect())
        .unwrap_or_default()
}

/// The package's tags, in PowerShellGet's order.
pub fn tags(manifest: &ModuleManifest, discovered: &Discovered) -> Vec<String> {
    let cmdlets = explicit(manifest.cmdlets_to_export.as_ref());
    let functions = exported(manifest.functions_to_export.as_ref(), &discovered.functions);
    let aliases = explicit(manifest.aliases_to_export.as_ref());
    let dsc = exported(
        manifest.dsc_resources_to_export.as_ref(),
        &discovered.dsc_resources,
    );
    let mut all: Vec<String> = manifest.tags.clone();
    all.push("PSModule".to_owned());
    if !cmdlets.is_empty() {
        all.push("PSIncludes_Cmdlet".to_owned());
        all.extend(cmdlets.iter().map(|c| format!("PSCmdlet_{c}")));
    }
    if !functions.is_empty() {
        all.push("PSIncludes_Function".to_owned());
        all.extend(functions.iter().map(|f| format!("PSFunction_{f}")));
    }
    all.extend(
        cmdlets
            .iter()
            .chain(&functions)
            .chain(&aliases)
            .map(|c| format!("PSCommand_{c}")),
    );
    if !dsc.is_empty() {
        all.push("PSIncludes_DscResource".to_owned());
        all.extend(dsc.iter().map(|d| format!("PSDscResource_{d}")));
    }
    if !discovered.role_capabilities.is_empty() {
        all.push("PSIncludes_RoleCapability".to_owned());
        all.extend(
            discovered
                .role_capabilities
                .iter()
                .map(|r| format!("PSRoleCapability_{r}")),
        );
    }
    let mut out: Vec<String> = Vec::with_capacity(all.len());
    for tag in all.iter().flat_map(|t| t.split_whitespace()) {
        if !out.iter().any(|seen| seen == tag) {
            out.push(tag.to_owned());
        }
    }
    out
}

/// The dependencies: `(id, range)` for each `RequiredModules` entry not
/// listed in `ExternalModuleDependencies`.
pub fn dependencies(manifest: &ModuleManifest) -> Vec<(String, String)> {
    manifest
        .required_modules
        .iter()
        .filter(|m| {
            !manifest
                .external_module_dependencies
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&m.name))
        })
        .map(|m| (m.name.clone(), version_range(m)))
        .collect()
}

/// A `RequiredModules` entry's version range, as it reads in the package.
pub fn version_range(module: &RequiredModule) -> String {
    let norm = |v: &str| normalize_version(v.trim()).unwrap_or_else(|| v.trim().to_owned());
    let present = |v: &Option<String>| v.as_deref().filter(|v| !v.trim().is_empty()).map(norm);
    match (
        present(&module.required_version),
        present(&module.module_version),
        present(&module.maximum_version),
    ) {
        (Some(exact), _, _) => format!("[{exact}]"),
        (None, Some(min), Some(max)) if min == max => format!("[{min}]"),
        (None, Some(min), Some(max)) => format!("[{min}, {max}]"),
        (None, None, Some(max)) => format!("(, {max}]"),
        (None, Some(min), None) => min,
        (None, None, None) => String::new(),
    }
}

/// The schema namespace the packer picks for `meta`.
pub fn namespace(meta: &PackageMetadata) -> &'static str {
    if meta.prerelease {
        NS_2011_10
    } else if !meta.copyright.is_empty() || !meta.release_notes.is_empty() {
        NS_2011_08
    } else {
        NS_2010_07
    }
}

/// The `.nuspec` document, as it is stored in the package.
pub fn nuspec_xml(meta: &PackageMetadata) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing to a Vec cannot fail.
    let _ = write_nuspec(&mut writer, meta);
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

fn write_nuspec(writer: &mut Writer<Vec<u8>>, meta: &PackageMetadata) -> std::io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
    writer
        .create_element("package")
        .with_attribute(("xmlns", namespace(meta)))
        .write_inner_content(|w| {
            w.create_element("metadata").write_inner_content(|w| {
                let tags = meta.tags.join(" ");
                let require = if meta.require_license_acceptance {
                    "true"
                } else {
                    "false"
                };
                let fields: [(&str, &str); 12] = [
                    ("id", &meta.id),
                    ("version", &meta.version),
                    ("authors", &meta.authors),
                    ("owners", &meta.owners),
                    ("requireLicenseAcceptance", require),
                    ("licenseUrl", &meta.license_url),
                    ("projectUrl", &meta.project_url),
                    ("iconUrl", &meta.icon_url),
                    ("description", &meta.description),
                    ("releaseNotes", &meta.release_notes),
                    ("copyright", &meta.copyright),
                    ("tags", &tags),
                ];
                for (name, value) in fields {
                    if !value.is_empty() {
                        w.create_element(name)
                            .write_text_content(BytesText::new(value))?;
                    }
                }
                if !meta.dependencies.is_empty() {
                    w.create_element("dependencies").write_inner_content(|w| {
                        for (id, range) in &meta.dependencies {
                            let element = w
                                .create_element("dependency")
                                .with_attribute(("id", id.as_str()));
                            if range.is_empty() {
                                element.write_empty()?;
                            } else {
                                element
                                    .with_attribute(("version", range.as_str()))
                                    .write_empty()?;
                            }
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> ModuleManifest {
        ModuleManifest::from_text(text).expect("a valid manifest")
    }

    const FULL: &str = r#"@{
        RootModule = 'Demo.psm1'
        ModuleVersion = '1.4'
        Author = 'Ada Lovelace'
        CompanyName = 'Demo Co'
        Copyright = '(c) Demo Co & friends'
        Description = 'Does <things>'
        FunctionsToExport = @('Get-Thing', 'Set-Thing')
        CmdletsToExport = @('Invoke-Binary')
        AliasesToExport = @('gt')
        DscResourcesToExport = @('DemoResource')
        RequiredModules = @(
            'Plain',
            @{ ModuleName = 'Exact'; RequiredVersion = '1.0' },
            @{ ModuleName = 'Min'; ModuleVersion = '2.1.0.0' },
            @{ ModuleName = 'Max'; MaximumVersion = '3.0' },
            @{ ModuleName = 'Both'; ModuleVersion = '1.0'; MaximumVersion = '1.9.9' },
            @{ ModuleName = 'External'; ModuleVersion = '1.0' }
        )
        PrivateData = @{ PSData = @{
            Tags = @('demo', 'two words', 'PSModule')
            ReleaseNotes = 'First'
            ProjectUri = 'https://example.invalid/p'
            LicenseUri = 'https://example.invalid/l'
            ExternalModuleDependencies = @('External')
        } }
    }"#;

    #[test]
    fn tags_follow_powershellget_order() {
        let m = manifest(FULL);
        let found = Discovered {
            role_capabilities: vec!["Operator".to_owned()],
            ..Discovered::default()
        };
        assert_eq!(
            tags(&m, &found),
            [
                "demo",
                "two",
                "words",
                "PSModule",
                "PSIncludes_Cmdlet",
                "PSCmdlet_Invoke-Binary",
                "PSIncludes_Function",
                "PSFunction_Get-Thing",
                "PSFunction_Set-Thing",
                "PSCommand_Invoke-Binary",
                "PSCommand_Get-Thing",
                "PSCommand_Set-Thing",
                "PSCommand_gt",
                "PSIncludes_DscResource",
                "PSDscResource_DemoResource",
                "PSIncludes_RoleCapability",
                "PSRoleCapability_Operator",
            ]
        );
    }

    #[test]
    fn wildcard_exports_use_discovered_functions() {
        let found = Discovered {
            functions: vec!["Get-A".to_owned(), "Set-B".to_owned(), "helper".to_owned()],
            ..Discovered::default()
        };
        let base = "ModuleVersion = '1.0'; Author = 'a'; Description = 'd'";
        let star = manifest(&format!("@{{ {base}; FunctionsToExport = '*' }}"));
        assert_eq!(
            tags(&star, &found)[..3],
            ["PSModule", "PSIncludes_Function", "PSFunction_Get-A"]
        );
        let some = manifest(&format!("@{{ {base}; FunctionsToExport = 'get-*' }}"));
        assert_eq!(
            tags(&some, &found),
            [
                "PSModule",
                "PSIncludes_Function",
                "PSFunction_Get-A",
                "PSCommand_Get-A"
            ]
        );
        let none = manifest(&format!("@{{ {base}; FunctionsToExport = @() }}"));
        assert_eq!(tags(&none, &found), ["PSModule"]);
    }

    #[test]
    fn dependency_ranges_as_the_packer_writes_them() {
        let m = manifest(FULL);
        assert_eq!(
            dependencies(&m),
            [
                ("Plain".to_owned(), String::new()),
                ("Exact".to_owned(), "[1.0.0]".to_owned()),
                ("Min".to_owned(), "2.1.0".to_owned()),
                ("Max".to_owned(), "(, 3.0.0]".to_owned()),
                ("Both".to_owned(), "[1.0.0, 1.9.9]".to_owned()),
            ]
        );
    }

    #[test]
    fn namespace_is_the_lowest_that_fits() {
        let base = "ModuleVersion = '1.0.0'; Author = 'a'; Description = 'd'";
        let ns = |extra: &str| {
            let m = manifest(&format!("@{{ {base}; {extra} }}"));
            namespace(&metadata("M", &m, "M.psd1", &Discovered::default()).expect("metadata"))
        };
        assert_eq!(ns("GUID = 'x'"), NS_2010_07);
        assert_eq!(ns("Copyright = '(c) me'"), NS_2011_08);
        assert_eq!(
            ns("PrivateData = @{ PSData = @{ ReleaseNotes = 'n' } }"),
            NS_2011_08
        );
        assert_eq!(
            ns("Copyright = 'c'; PrivateData = @{ PSData = @{ Prerelease = 'beta1' } }"),
            NS_2011_10
        );
    }

    #[test]
    fn nuspec_document() {
        let m = manifest(FULL);
        let meta = metadata("Demo", &m, "Demo/Demo.psd1", &Discovered::default()).expect("meta");
        assert_eq!(meta.version, "1.4.0");
        let xml = nuspec_xml(&meta);
        let expected = r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2011/08/nuspec.xsd">
  <metadata>
    <id>Demo</id>
    <version>1.4.0</version>
    <authors>Ada Lovelace</authors>
    <owners>Demo Co</owners>
    <requireLicenseAcceptance>false</requireLicenseAcceptance>
    <licenseUrl>https://example.invalid/l</licenseUrl>
    <projectUrl>https://example.invalid/p</projectUrl>
    <description>Does &lt;things&gt;</description>
    <releaseNotes>First</releaseNotes>
    <copyright>(c) Demo Co &amp; friends</copyright>
    <tags>demo two words PSModule PSIncludes_Cmdlet PSCmdlet_Invoke-Binary PSIncludes_Function PSFunction_Get-Thing PSFunction_Set-Thing PSCommand_Invoke-Binary PSCommand_Get-Thing PSCommand_Set-Thing PSCommand_gt PSIncludes_DscResource PSDscResource_DemoResource</tags>
    <dependencies>
      <dependency id="Plain"/>
      <dependency id="Exact" version="[1.0.0]"/>
      <dependency id="Min" version="2.1.0"/>
      <dependency id="Max" version="(, 3.0.0]"/>
      <dependency id="Both" version="[1.0.0, 1.9.9]"/>
    </dependencies>
  </metadata>
</package>"#;
        assert_eq!(xml, expected);
    }

    #[test]
    fn required_keys_and_versions() {
        let error = metadata(
            "M",
            &manifest("@{ ModuleVersion = '1.0'; Author = '  ' }"),
            "src/M/M.psd1",
            &Discovered::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "module manifest src/M/M.psd1 must set Author and Description (Publish-Module requires Author and Description)"
        );
        let pre = |version: &str, label: &str| {
            metadata(
                "M",
                &manifest(&format!(
                    "@{{ ModuleVersion = '{version}'; Author = 'a'; Description = 'd'; PrivateData = @{{ PSData = @{{ Prerelease = '{label}' }} }} }}"
                )),
                "M.psd1",
                &Discovered::default(),
            )
            .map(|m| m.version)
        };
        assert_eq!(pre("2.0.0", "beta1").as_deref(), Ok("2.0.0-beta1"));
        assert_eq!(pre("2.0.0", "-rc-2").as_deref(), Ok("2.0.0-rc-2"));
        assert_eq!(pre("2.0.0", "").as_deref(), Ok("2.0.0"));
        assert!(pre("2.0", "beta1").is_err());
        assert!(pre("2.0.0", "beta.1").is_err());
        assert_eq!(normalize_version("1.2.3.0").as_deref(), Some("1.2.3"));
        assert_eq!(normalize_version("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(normalize_version("01.0").as_deref(), Some("1.0.0"));
        assert!(is_valid_id("StatusCakeDSC"));
        assert!(is_valid_id("My.Module-2_x"));
        assert!(!is_valid_id("bad name"));
        assert!(!is_valid_id("trailing."));
    }
}
