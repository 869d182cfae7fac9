//! The rule for names given by people (projects, variables, environments,
//! tokens, versions): 1 to 200 characters, no control characters, no `/`,
//! not only spaces.

use super::{ServiceError, ServiceResult};

/// The longest name.
const MAX_NAME_CHARS: usize = 200;

/// Checks a name given by a client; [`ServiceError::Invalid`] says what is
/// wrong with it (`what` names it: `project name`).
pub fn check_name(what: &str, name: &str) -> ServiceResult<()> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(ServiceError::invalid(format!("{what} must not be empty")));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ServiceError::invalid(format!(
            "{what} is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(ServiceError::invalid(format!(
            "{what} must not contain control characters or /"
        )));
    }
    Ok(())
}
