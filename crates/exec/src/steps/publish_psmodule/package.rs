//! The `.nupkg`: which module files go in, and the zip NuGet's
//! `PackageBuilder` writes around them.
//!
//! Files: everything under the module folder, at the package root, except
//! hidden names (starting with `.`, at any depth), `*.nupkg` and `*.nuspec`,
//! and what `ExcludePaths` matches (globs relative to the module folder,
//! case-insensitive; `*` also crosses `/`; a pattern matching a folder leaves
//! out all of it). A symbolic link is followed only when it stays inside the
//! checkout.
//!
//! Entries, in `PackageBuilder`'s order: `_rels/.rels` (the manifest and
//! core-properties relationships, ids `R` + 16 hex of SHA-512 of the
//! target), `<Id>.nuspec`, the module files (names escaped per segment like
//! `Uri.EscapeDataString`), `[Content_Types].xml` (`rels`, `psmdcp`, then
//! every extension as `application/octet`, an `Override` per file without
//! one), `package/services/metadata/core-properties/<32 hex>.psmdcp`.

use std::collections::HashSet;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha512};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::confine::{self, ConfineError};

use super::nuspec::{Discovered, PackageMetadata, nuspec_xml};

/// One module file: its path inside the package (`/`-separated, as on disk)
/// and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The path relative to the module folder.
    pub path: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// Why the package could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The path, relative to the module folder.
        path: String,
        /// The system's reason.
        message: String,
    },
    /// A symbolic link leads outside the checkout.
    #[error("{0} is a symbolic link that leads outside the checkout")]
    Escapes(String),
    /// An `ExcludePaths` pattern is not a glob.
    #[error("ExcludePaths pattern {pattern:?} is not a valid glob: {message}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// Writing the zip failed.
    #[error("cannot write the package: {0}")]
    Zip(String),
}

/// The `ExcludePaths` globs as one matcher.
pub fn excludes(patterns: &[String]) -> Result<GlobSet, PackageError> {
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let clean = pattern
            .trim()
            .trim_start_matches("./")
            .trim_end_matches('/');
        if clean.is_empty() {
            continue;
        }
        let glob = GlobBuilder::new(clean)
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| PackageError::BadPattern {
                pattern: pattern.clone(),
                message: e.kind().to_string(),
            })?;
        set.add(glob);
    }
    set.build().map_err(|e| PackageError::BadPattern {
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// The files of `module_dir` that go into the package, in a stable order;
/// `root` is the checkout every symbolic link must stay in.
pub fn collect(
    module_dir: &Path,
    root: &Path,
    excludes: &GlobSet,
) -> Result<Vec<PackageFile>, PackageError> {
    let real_root = confine::real_root(root).map_err(|e| PackageError::Read {
        path: root.display().to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    walk(module_dir, "", &real_root, excludes, &mut visited, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    real_root: &Path,
    excludes: &GlobSet,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<PackageFile>,
) -> Result<(), PackageError> {
    let shown = |relative: &str| {
        if relative.is_empty() {
            ".".to_owned()
        } else {
            relative.to_owned()
        }
    };
    let read_error = |relative: &str, e: std::io::Error| PackageError::Read {
        path: shown(relative),
        message: e.to_string(),
    };
    let real_dir = inside(real_root, dir, prefix)?;
    if !visited.insert(real_dir) {
        return Ok(());
    }
    let mut entries = fs::read_dir(dir)
        .map_err(|e| read_error(prefix, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(prefix, e))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if excludes.is_match(&relative) {
            continue;
        }
        let path = entry.path();
        let mut file_type = entry.file_type().map_err(|e| read_error(&relative, e))?;
        if file_type.is_symlink() {
            let target = inside(real_root, &path, &relative)?;
            file_type = fs::metadata(&target)
                .map_err(|e| read_error(&relative, e))?
                .file_type();
        }
        if file_type.is_dir() {
            walk(&path, &relative, real_root, excludes, visited, out)?;
        } else if file_type.is_file() {
            let lower = name.to_ascii_lowercase();
            if lower.ends_with(".nupkg") || lower.ends_with(".nuspec") {
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| read_error(&relative, e))?;
            out.push(PackageFile {
                path: relative,
                bytes,
            });
        }
    }
    Ok(())
}

/// The real location of `path` (shown as `relative`), which must stay
/// inside the checkout.
fn inside(real_root: &Path, path: &Path, relative: &str) -> Result<PathBuf, PackageError> {
    let shown = if relative.is_empty() { "." } else { relative };
    match confine::resolve_inside(real_root, path) {
        Ok(real) => Ok(real),
        Err(ConfineError::Escapes) => Err(PackageError::Escapes(shown.to_owned())),
        Err(ConfineError::Resolve { message }) => Err(PackageError::Read {
            path: shown.to_owned(),
            message,
        }),
        Err(error) => Err(PackageError::Read {
            path: shown.to_owned(),
            message: error.to_string(),
        }),
    }
}

/// What the files say beyond the manifest: functions defined in the
/// `.psm1` files at the module's root, DSC resource folders, role capability
/// files.
pub fn discover(files: &[PackageFile]) -> Discovered {
    let mut found = Discovered::default();
    for file in files {
        let lower = file.path.to_ascii_lowercase();
        // Only the module's own scripts (at its root) export functions.
        if lower.ends_with(".psm1") && !file.path.contains('/') {
            for name in function_names(&String::from_utf8_lossy(&file.bytes)) {
                if !found.functions.contains(&name) {
                    found.functions.push(name);
                }
            }
        }
        let parts: Vec<&str> = file.path.split('/').collect();
        if parts.len() >= 3 && parts[0].eq_ignore_ascii_case("DSCResources") {
            let name = parts[1].to_owned();
            if !found.dsc_resources.contains(&name) {
                found.dsc_resources.push(name);
            }
        }
        if parts.len() == 2
            && parts[0].eq_ignore_ascii_case("RoleCapabilities")
            && lower.ends_with(".psrc")
        {
            let stem = &parts[1][..parts[1].len() - ".psrc".len()];
            found.role_capabilities.push(stem.to_owned());
        }
    }
    found
}

/// Names of the functions a script defines at the start of a line
/// (`function Get-Thing {`), without scope prefixes.
fn function_names(script: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in script.trim_start_matches('\u{feff}').lines() {
        let line = line.trim_start();
        let Some(keyword) = line.get(..8) else {
            continue;
        };
        if !keyword.eq_ignore_ascii_case("function") {
            continue;
        }
        let rest = &line[8..];
        if !rest.starts_with([' ', '\t']) {
            continue;
        }
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '{' && *c != '(')
            .collect();
        let lower = name.to_ascii_lowercase();
        let name = ["global:", "script:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map_or(name.as_str(), |p| &name[p.len()..]);
        if !name.is_empty() && !name.contains(':') && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// `<Id>.<Version>.nupkg`.
pub fn file_name(meta: &PackageMetadata) -> String {
    format!("{}.{}.nupkg", meta.id, meta.version)
}

/// A zip entry name: each segment escaped like .NET's `Uri.EscapeDataString`.
pub fn entry_name(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let mut out = String::with_capacity(segment.len());
            for byte in segment.bytes() {
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                    out.push(char::from(byte));
                } else {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The relationship id NuGet gives a part: `R` + 16 hex of SHA-512(target).
fn relationship_id(target: &str) -> String {
    let digest = Sha512::digest(target.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("R{}", &hex[..16])
}

/// Builds the package. `psmdcp` is the 32-hex name of the core-properties
/// part; `time` the entries' modification time.
pub fn build(
    meta: &PackageMetadata,
    files: &[PackageFile],
    psmdcp: &str,
    time: zip::DateTime,
) -> Result<Vec<u8>, PackageError> {
    let zip_error = |e: &dyn std::fmt::Display| PackageError::Zip(e.to_string());
    let nuspec_name = format!("{}.nuspec", meta.id);
    let psmdcp_path = format!("package/services/metadata/core-properties/{psmdcp}.psmdcp");
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(time)
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let mut add = |name: &str, bytes: &[u8]| -> Result<(), PackageError> {
        zip.start_file(name, options).map_err(|e| zip_error(&e))?;
        zip.write_all(bytes).map_err(|e| zip_error(&e))
    };
    add(
        "_rels/.rels",
        rels_xml(&nuspec_name, &psmdcp_path).as_bytes(),
    )?;
    add(&nuspec_name, nuspec_xml(meta).as_bytes())?;
    for file in files {
        add(&entry_name(&file.path), &file.bytes)?;
    }
    add("[Content_Types].xml", content_types_xml(files).as_bytes())?;
    add(&psmdcp_path, core_properties_xml(meta).as_bytes())?;
    let cursor = zip.finish().map_err(|e| zip_error(&e))?;
    Ok(cursor.into_inner())
}

fn document(write: impl FnOnce(&mut Writer<Vec<u8>>) -> std::io::Result<()>) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .and_then(|()| write(&mut writer));
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

fn rels_xml(nuspec_name: &str, psmdcp_path: &str) -> String {
    let manifest_target = format!("/{nuspec_name}");
    let psmdcp_target = format!("/{psmdcp_path}");
    document(|w| {
        w.create_element("Relationships")
            .with_attribute((
                "xmlns",
                "http://schemas.openxmlformats.org/package/2006/relationships",
            ))
            .write_inner_content(|w| {
                w.create_element("Relationship")
                    .with_attribute((
                        "Type",
                        "http://schemas.microsoft.com/packaging/2010/07/manifest",
                    ))
                    .with_attribute(("Target", manifest_target.as_str()))
                    .with_attribute(("Id", relationship_id(&manifest_target).as_str()))
                    .write_empty()?;
                w.create_element("Relationship")
                    .with_attribute((
                        "Type",
                        "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties",
                    ))
                    .with_attribute(("Target", psmdcp_target.as_str()))
                    .with_attribute(("Id", relationship_id(&psmdcp_target).as_str()))
                    .write_empty()?;
                Ok(())
            })?;
        Ok(())
    })
}

fn content_types_xml(files: &[PackageFile]) -> String {
    let mut extensions: Vec<String> = Vec::new();
    let mut without_extension: Vec<String> = Vec::new();
    let names = files
        .iter()
        .map(|f| f.path.as_str())
        .chain(std::iter::once("x.nuspec"));
    for path in names {
        let file = path.rsplit('/').next().unwrap_or(path);
        match file.rsplit_once('.') {
            Some((_, ext)) if !ext.is_empty() => {
                let taken = ["rels", "psmdcp"]
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(ext))
                    || extensions.iter().any(|e| e.eq_ignore_ascii_case(ext));
                if !taken {
                    extensions.push(ext.to_owned());
                }
            }
            _ => without_extension.push(format!("/{}", entry_name(path))),
        }
    }
    document(|w| {
        w.create_element("Types")
            .with_attribute((
                "xmlns",
                "http://schemas.openxmlformats.org/package/2006/content-types",
            ))
            .write_inner_content(|w| {
                w.create_element("Default")
                    .with_attribute(("Extension", "rels"))
                    .with_attribute((
                        "ContentType",
                        "application/vnd.openxmlformats-package.relationships+xml",
                    ))
                    .write_empty()?;
                w.create_element("Default")
                    .with_attribute(("Extension", "psmdcp"))
                    .with_attribute((
                        "ContentType",
                        "application/vnd.openxmlformats-package.core-properties+xml",
                    ))
                    .write_empty()?;
                for ext in &extensions {
                    w.create_element("Default")
                        .with_attribute(("Extension", ext.as_str()))
                        .with_attribute(("ContentType", "application/octet"))
                        .write_empty()?;
                }
                for part in &without_extension {
                    w.create_element("Override")
                        .with_attribute(("PartName", part.as_str()))
                        .with_attribute(("ContentType", "application/octet"))
                        .write_empty()?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

fn core_properties_xml(meta: &PackageMetadata) -> String {
    let tags = meta.tags.join(" ");
    let modified_by = format!("Tako {} (publish-psmodule)", env!("CARGO_PKG_VERSION"));
    document(|w| {
        w.create_element("coreProperties")
            .with_attribute(("xmlns:dc", "http://purl.org/dc/elements/1.1/"))
            .with_attribute(("xmlns:dcterms", "http://purl.org/dc/terms/"))
            .with_attribute(("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"))
            .with_attribute((
                "xmlns",
                "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
            ))
            .write_inner_content(|w| {
                for (name, value) in [
                    ("dc:creator", meta.authors.as_str()),
                    ("dc:description", meta.description.as_str()),
                    ("dc:identifier", meta.id.as_str()),
                    ("version", meta.version.as_str()),
                    ("keywords", tags.as_str()),
                    ("lastModifiedBy", modified_by.as_str()),
                ] {
                    w.create_element(name)
                        .write_text_content(BytesText::new(value))?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn meta() -> PackageMetadata {
        PackageMetadata {
            id: "Demo".to_owned(),
            version: "1.0.0".to_owned(),
            authors: "A".to_owned(),
            description: "D".to_owned(),
            tags: vec!["PSModule".to_owned()],
            ..PackageMetadata::default()
        }
    }

    #[test]
    fn functions_are_found_in_scripts() {
        let script = "\u{feff}function Get-A {\n}\n  FUNCTION global:Set-B($x) {}\nfunction private:hidden {}\n# function Not-This\nfunctions x\nfunction Get-A {}\n";
        assert_eq!(function_names(script), ["Get-A", "Set-B"]);
    }

    #[test]
    fn entries_are_in_package_builder_order() {
        let files = vec![
            PackageFile {
                path: "Demo.psd1".to_owned(),
                bytes: b"@{}".to_vec(),
            },
            PackageFile {
                path: "en-US/about Demo.help.txt".to_owned(),
                bytes: b"help".to_vec(),
            },
            PackageFile {
                path: "LICENSE".to_owned(),
                bytes: b"MIT".to_vec(),
            },
        ];
        let bytes =
            build(&meta(), &files, &"ab".repeat(16), zip::DateTime::default()).expect("zip");
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let names: Vec<String> = (0..archive.len())
            .map(|i| {
                archive
                    .by_index(i)
                    .expect("entry")
                    .name()
                    .expect("name")
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "_rels/.rels",
                "Demo.nuspec",
                "Demo.psd1",
                "en-US/about%20Demo.help.txt",
                "LICENSE",
                "[Content_Types].xml",
                "package/services/metadata/core-properties/abababababababababababababababab.psmdcp",
            ]
        );
        let mut types = String::new();
        archive
            .by_name("[Content_Types].xml")
            .expect("content types")
            .read_to_string(&mut types)
            .expect("text");
        assert!(
            types.contains(r#"<Default Extension="psd1" ContentType="application/octet"/>"#),
            "{types}"
        );
        assert!(
            types.contains(r#"<Default Extension="nuspec" ContentType="application/octet"/>"#),
            "{types}"
        );
        assert!(
            types.contains(r#"<Override PartName="/LICENSE" ContentType="application/octet"/>"#),
            "{types}"
        );
        let mut rels = String::new();
        archive
            .by_name("_rels/.rels")
            .expect("rels")
            .read_to_string(&mut rels)
            .expect("text");
        assert!(
            rels.contains(&format!(
                r#"Target="/Demo.nuspec" Id="{}""#,
                relationship_id("/Demo.nuspec")
            )),
            "{rels}"
        );
    }

    #[test]
    fn discovery_reads_dsc_and_role_capabilities() {
        let file = |path: &str, text: &str| PackageFile {
            path: path.to_owned(),
            bytes: text.as_bytes().to_vec(),
        };
        let found = discover(&[
            file("Demo.psm1", "function Get-X {}"),
            file(
                "DSCResources/Res_A/Res_A.psm1",
                "function Get-TargetResource {}",
            ),
            file("RoleCapabilities/Operator.psrc", "@{}"),
        ]);
        assert_eq!(found.functions, ["Get-X"]);
        assert_eq!(found.dsc_resources, ["Res_A"]);
        assert_eq!(found.role_capabilities, ["Operator"]);
    }
}
