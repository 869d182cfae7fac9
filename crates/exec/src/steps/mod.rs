//! Built-in step kinds (`Uses:`), each Rust code rather than a script.

pub mod step_template;
pub mod write_file;

use tako_takofile::WithValue;

/// The text of parameter `name` (case-insensitive), if given.
pub(crate) fn text<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<Option<&'a str>, String> {
    match parameters
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
    {
        None => Ok(None),
        Some((_, WithValue::Text(text))) => Ok(Some(text)),
        Some((key, _)) => Err(format!("parameter {key} must be text, not a list or map")),
    }
}

/// The text of required parameter `name`.
pub(crate) fn required<'a>(
    parameters: &'a [(String, WithValue)],
    name: &str,
) -> Result<&'a str, String> {
    text(parameters, name)?.ok_or_else(|| format!("parameter {name} is required"))
}
