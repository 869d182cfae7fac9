//! Module manifests: the typed view of a `.psd1` module manifest that
//! publishing to the PowerShell Gallery needs.
//!
//! Field names follow `about_Module_Manifests` and `New-ModuleManifest`.
//! Gallery metadata lives under `PrivateData.PSData`. Rules:
//!
//! - `ModuleVersion` is required and must look like a `System.Version`
//!   (two to four dot-separated non-negative integers, e.g. `1.0` or
//!   `1.2.3.4`); an unquoted number such as `1.0` is accepted.
//! - `RootModule` falls back to the legacy `ModuleToProcess`.
//! - String fields accept a string or a bare number (`PowerShellVersion = 5.1`).
//!   `$null` counts as absent.
//! - List fields accept a single string or an array of strings; `$null`, an
//!   empty string and `@()` give an empty list.
//! - The `*ToExport` fields are `Option`s: `None` when the key is absent
//!   (PowerShell then exports everything), `Some(vec![])` when it is `@()`.
//! - `RequiredModules` and `NestedModules` items are a module name or a
//!   module specification `@{ ModuleName = ..; ModuleVersion = ..;
//!   RequiredVersion = ..; MaximumVersion = ..; GUID = .. }` (`ModuleName`
//!   required).
//! - Keys are case-insensitive; unknown keys are kept in [`ModuleManifest::data`].

use crate::error::Psd1Error;
use crate::value::{Hashtable, Value};

/// Why a manifest could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not a valid data file.
    #[error(transparent)]
    Parse(#[from] Psd1Error),
    /// The file holds something other than a hashtable.
    #[error("a module manifest must be a hashtable `@{{ ... }}`, found {found}")]
    NotAHashtable {
        /// The kind of value found instead (e.g. `"an array"`).
        found: &'static str,
    },
    /// A required field is absent.
    #[error("module manifest is missing the required field {field}")]
    MissingField {
        /// The field's name, e.g. `ModuleVersion`.
        field: String,
    },
    /// A field has the wrong type or an invalid value.
    #[error("module manifest field {field}: {message}")]
    InvalidField {
        /// The field's path, e.g. `PrivateData.PSData.Tags`.
        field: String,
        /// What was expected.
        message: String,
    },
}

/// A module a manifest depends on or nests (`RequiredModules`,
/// `NestedModules`): either just a name, or a module specification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiredModule {
    /// `ModuleName` (or the plain string).
    pub name: String,
    /// `GUID`, if given.
    pub guid: Option<String>,
    /// `ModuleVersion`: the minimum acceptable version.
    pub module_version: Option<String>,
    /// `RequiredVersion`: the exact version required.
    pub required_version: Option<String>,
    /// `MaximumVersion`: the highest acceptable version (may use `*`).
    pub maximum_version: Option<String>,
}

/// The fields of a PowerShell module manifest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModuleManifest {
    /// `ModuleVersion` (required), e.g. `1.2.3`.
    pub version: String,
    /// `RootModule` (or the legacy `ModuleToProcess`).
    pub root_module: Option<String>,
    /// `GUID`.
    pub guid: Option<String>,
    /// `Author`.
    pub author: Option<String>,
    /// `CompanyName`.
    pub company_name: Option<String>,
    /// `Copyright`.
    pub copyright: Option<String>,
    /// `Description` (the Gallery requires one).
    pub description: Option<String>,
    /// `CompatiblePSEditions` (`Desktop`, `Core`).
    pub compatible_ps_editions: Vec<String>,
    /// `PowerShellVersion`: minimum engine version.
    pub powershell_version: Option<String>,
    /// `PowerShellHostName`.
    pub powershell_host_name: Option<String>,
    /// `PowerShellHostVersion`.
    pub powershell_host_version: Option<String>,
    /// `DotNetFrameworkVersion`.
    pub dotnet_framework_version: Option<String>,
    /// `ClrVersion` (also spelled `CLRVersion`; keys are case-insensitive).
    pub clr_version: Option<String>,
    /// `ProcessorArchitecture` (`None`, `X86`, `Amd64`, ...).
    pub processor_architecture: Option<String>,
    /// `RequiredModules`.
    pub required_modules: Vec<RequiredModule>,
    /// `RequiredAssemblies`.
    pub required_assemblies: Vec<String>,
    /// `ScriptsToProcess`.
    pub scripts_to_process: Vec<String>,
    /// `TypesToProcess`.
    pub types_to_process: Vec<String>,
    /// `FormatsToProcess`.
    pub formats_to_process: Vec<String>,
    /// `NestedModules`.
    pub nested_modules: Vec<RequiredModule>,
    /// `FunctionsToExport` (`None` when absent).
    pub functions_to_export: Option<Vec<String>>,
    /// `CmdletsToExport` (`None` when absent).
    pub cmdlets_to_export: Option<Vec<String>>,
    /// `VariablesToExport` (`None` when absent).
    pub variables_to_export: Option<Vec<String>>,
    /// `AliasesToExport` (`None` when absent).
    pub aliases_to_export: Option<Vec<String>>,
    /// `DscResourcesToExport` (`None` when absent).
    pub dsc_resources_to_export: Option<Vec<String>>,
    /// `ModuleList`.
    pub module_list: Vec<String>,
    /// `FileList`.
    pub file_list: Vec<String>,
    /// `HelpInfoURI`.
    pub help_info_uri: Option<String>,
    /// `DefaultCommandPrefix`.
    pub default_command_prefix: Option<String>,
    /// `PrivateData.PSData.Tags`.
    pub tags: Vec<String>,
    /// `PrivateData.PSData.ProjectUri`.
    pub project_uri: Option<String>,
    /// `PrivateData.PSData.LicenseUri`.
    pub license_uri: Option<String>,
    /// `PrivateData.PSData.IconUri`.
    pub icon_uri: Option<String>,
    /// `PrivateData.PSData.ReleaseNotes`.
    pub release_notes: Option<String>,
    /// `PrivateData.PSData.Prerelease`, e.g. `beta1` (appended to the
    /// version as `1.2.3-beta1` when published).
    pub prerelease: Option<String>,
    /// `PrivateData.PSData.RequireLicenseAcceptance` (default `false`).
    pub require_license_acceptance: bool,
    /// `PrivateData.PSData.ExternalModuleDependencies`.
    pub external_module_dependencies: Vec<String>,
    /// The whole parsed hashtable, for fields not modelled above.
    pub data: Hashtable,
}

impl ModuleManifest {
    /// Parses the text of a `.psd1` module manifest.
    pub fn from_text(text: &str) -> Result<ModuleManifest, ManifestError> {
        let value = crate::parse(text)?;
        ModuleManifest::from_value(value)
    }

    /// Builds a manifest from an already parsed value.
    pub fn from_value(value: Value) -> Result<ModuleManifest, ManifestError> {
        let Value::Hashtable(data) = value else {
            return Err(ManifestError::NotAHashtable {
                found: value.kind(),
            });
        };
        let fields = Fields {
            table: &data,
            prefix: "",
        };
        let version = match fields.string("ModuleVersion")? {
            Some(v) => v,
            None => {
                return Err(ManifestError::MissingField {
                    field: "ModuleVersion".to_owned(),
                });
            }
        };
        if !is_dotnet_version(&version) {
            return Err(ManifestError::InvalidField {
                field: "ModuleVersion".to_owned(),
                message: format!(
                    "expected a version of two to four numbers like 1.0 or 1.2.3, found {version:?}"
                ),
            });
        }
        let root_module = match fields.string("RootModule")? {
            Some(root) => Some(root),
            None => fields.string("ModuleToProcess")?,
        };

        let private_data = fields.hashtable("PrivateData")?;
        let ps_data = match private_data {
            Some(table) => Fields {
                table,
                prefix: "PrivateData.",
            }
            .hashtable("PSData")?,
            None => None,
        };
        let empty = Hashtable::new();
        let ps = Fields {
            table: ps_data.unwrap_or(&empty),
            prefix: "PrivateData.PSData.",
        };

        Ok(ModuleManifest {
            version,
            root_module,
            guid: fields.string("GUID")?,
            author: fields.string("Author")?,
            company_name: fields.string("CompanyName")?,
            copyright: fields.string("Copyright")?,
            description: fields.string("Description")?,
            compatible_ps_editions: fields.list("CompatiblePSEditions")?.unwrap_or_default(),
            powershell_version: fields.string("PowerShellVersion")?,
            powershell_host_name: fields.string("PowerShellHostName")?,
            powershell_host_version: fields.string("PowerShellHostVersion")?,
            dotnet_framework_version: fields.string("DotNetFrameworkVersion")?,
            clr_version: fields.string("ClrVersion")?,
            processor_architecture: fields.string("ProcessorArchitecture")?,
            required_modules: fields.modules("RequiredModules")?,
            required_assemblies: fields.list("RequiredAssemblies")?.unwrap_or_default(),
            scripts_to_process: fields.list("ScriptsToProcess")?.unwrap_or_default(),
            types_to_process: fields.list("TypesToProcess")?.unwrap_or_default(),
            formats_to_process: fields.list("FormatsToProcess")?.unwrap_or_default(),
            nested_modules: fields.modules("NestedModules")?,
            functions_to_export: fields.list("FunctionsToExport")?,
            cmdlets_to_export: fields.list("CmdletsToExport")?,
            variables_to_export: fields.list("VariablesToExport")?,
            aliases_to_export: fields.list("AliasesToExport")?,
            dsc_resources_to_export: fields.list("DscResourcesToExport")?,
            module_list: fields.list("ModuleList")?.unwrap_or_default(),
            file_list: fields.list("FileList")?.unwrap_or_default(),
            help_info_uri: fields.string("HelpInfoURI")?,
            default_command_prefix: fields.string("DefaultCommandPrefix")?,
            tags: ps.list("Tags")?.unwrap_or_default(),
            project_uri: ps.string("ProjectUri")?,
            license_uri: ps.string("LicenseUri")?,
            icon_uri: ps.string("IconUri")?,
            release_notes: ps.string("ReleaseNotes")?,
            prerelease: ps.string("Prerelease")?,
            require_license_acceptance: ps.bool("RequireLicenseAcceptance")?.unwrap_or(false),
            external_module_dependencies: ps
                .list("ExternalModuleDependencies")?
                .unwrap_or_default(),
            data,
        })
    }

    /// The version as published to the Gallery: `ModuleVersion`, plus
    /// `-Prerelease` when a non-empty prerelease string is set.
    pub fn full_version(&self) -> String {
        match self.prerelease.as_deref() {
            Some(pre) if !pre.is_empty() => format!("{}-{pre}", self.version),
            _ => self.version.clone(),
        }
    }
}

/// Whether `s` parses as a .NET `System.Version`: 2 to 4 parts of digits.
fn is_dotnet_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
        && parts.iter().all(|p| p.parse::<i32>().is_ok())
}

/// Typed access to one hashtable's fields, with the path prefix used in errors.
struct Fields<'a> {
    table: &'a Hashtable,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn invalid(&self, key: &str, message: String) -> ManifestError {
        ManifestError::InvalidField {
            field: format!("{}{key}", self.prefix),
            message,
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.table.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ManifestError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        scalar_text(value)
            .map(Some)
            .ok_or_else(|| self.invalid(key, format!("expected a string, found {}", value.kind())))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.invalid(
                key,
                format!("expected $true or $false, found {}", other.kind()),
            )),
        }
    }

    fn hashtable(&self, key: &str) -> Result<Option<&'a Hashtable>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Hashtable(table)) => Ok(Some(table)),
            // `PrivateData = ''` appears in generated manifests: treat as absent.
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(other) => {
                Err(self.invalid(key, format!("expected a hashtable, found {}", other.kind())))
            }
        }
    }

    fn list(&self, key: &str) -> Result<Option<Vec<String>>, ManifestError> {
        let Some(value) = self.table.get(key) else {
            return Ok(None);
        };
        let items: &[Value] = match value {
            Value::Null => &[],
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match scalar_text(item) {
                Some(text) if text.is_empty() && items.len() == 1 => {}
                Some(text) => out.push(text),
                None => {
                    return Err(self.invalid(
                        key,
                        format!(
                            "expected a string or an array of strings, found {} at item {}",
                            item.kind(),
                            index + 1
                        ),
                    ));
                }
            }
        }
        Ok(Some(out))
    }

    fn modules(&self, key: &str) -> Result<Vec<RequiredModule>, ManifestError> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let items: &[Value] = match value {
            Value::Array(items) => items,
            single => std::slice::from_ref(single),
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{key}[{index}]");
            match item {
                Value::String(name) if !name.is_empty() => out.push(RequiredModule {
                    name: name.clone(),
                    ..RequiredModule::default()
                }),
                Value::Hashtable(spec) => {
                    let spec_fields = Fields {
                        table: spec,
                        prefix: "",
                    };
                    let field = |name: &str| {
                        spec_fields.string(name).map_err(|_| {
                            self.invalid(
                                &format!("{item_path}.{name}"),
                                "expected a string".to_owned(),
                            )
                        })
                    };
                    let Some(name) = field("ModuleName")? else {
                        return Err(ManifestError::MissingField {
                            field: format!("{}{item_path}.ModuleName", self.prefix),
                        });
                    };
                    out.push(RequiredModule {
                        name,
                        guid: field("GUID")?,
                        module_version: field("ModuleVersion")?,
                        required_version: field("RequiredVersion")?,
                        maximum_version: field("MaximumVersion")?,
                    });
                }
                other => {
                    return Err(self.invalid(
                        key,
                        format!(
                            "expected a module name or a hashtable @{{ ModuleName = ... }}, found {} at item {}",
                            other.kind(),
                            index + 1
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A string, or a number's text; `None` for anything else.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::is_dotnet_version;

    #[test]
    fn dotnet_versions() {
        for ok in ["1.0", "1.2.3", "1.2.3.4", "0.0", "2147483647.0"] {
            assert!(is_dotnet_version(ok), "{ok}");
        }
        for bad in [
            "1",
            "1.2.3.4.5",
            "1.x",
            "",
            "1..2",
            "v1.0",
            "1.0-beta",
            "2147483648.0",
        ] {
            assert!(!is_dotnet_version(bad), "{bad}");
        }
    }
}
