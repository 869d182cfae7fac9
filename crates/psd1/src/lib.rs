//! Reader for PowerShell data files (`.psd1`), such as module manifests.
//!
//! A data file holds one value in PowerShell's restricted data language,
//! normally a hashtable literal:
//!
//! ```
//! let value = tako_psd1::parse("@{ ModuleVersion = '1.2.3'; Tags = 'a', 'b' }")?;
//! let table = value.as_hashtable().ok_or("not a hashtable")?;
//! assert_eq!(table.get("moduleversion").and_then(|v| v.as_str()), Some("1.2.3"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Supported: `@{ }` hashtables (entries separated by newlines or `;`, keys
//! bare or quoted, compared case-insensitively, file order kept), `@( )`
//! arrays (items separated by commas, newlines or `;`), bare comma lists
//! (`'a', 'b'`) and the unary comma (`,'a'`), single-quoted strings (`''`
//! escape), double-quoted strings (backtick escapes such as `` `n `t `" ``
//! and `` `u{..} ``, `""` escape; `$name` stays literal text and `$(...)` is
//! refused), here-strings `@' '@` and `@" "@`, `$true`, `$false`, `$null`,
//! integers, decimals, exponents, hex (`0x1F`), `l`/`d` suffixes and `kb`..`pb`
//! multipliers, `#` and `<# #>` comments, backtick line continuations, a
//! leading byte-order mark, and LF, CRLF or CR line endings (CRLF inside
//! strings becomes LF). PowerShell's typographic quotes count as quotes.
//!
//! Anything else (commands, variables, casts, parentheses, operators) is a
//! [`Psd1Error`] naming the line, column and what was expected. Parsing never
//! panics and refuses nesting deeper than 64 levels.
//!
//! [`ModuleManifest`] reads the fields of a module manifest.

mod error;
mod manifest;
mod parser;
mod value;

pub use error::Psd1Error;
pub use manifest::{ManifestError, ModuleManifest, RequiredModule};
pub use value::{Hashtable, Number, Value};

/// Parses the text of a PowerShell data file into its single value.
pub fn parse(text: &str) -> Result<Value, Psd1Error> {
    parser::parse(text)
}
