//! The sealing layer, the same for every store implementation: what is
//! sealed and how. Sealed: a project's webhook secret, repository token and
//! forge status token,
//! a sensitive variable's value, and every sensitive entry of a release's
//! frozen variables (sealed by the server, re-sealed here on rotation).
//!
//! An implementation calls these inside its write transaction (SQLite: the
//! writer's job, so a rotation, also a writer job, never races a write
//! sealed under the key it retires) and as values are read; it keeps only
//! the SQL of which rows to read and write.

use crate::error::{StoreError, StoreResult};
use crate::frozen::FrozenVariables;
use crate::model::{
    ForgeStatus, NewProject, NewVariable, Project, RepositoryToken, Variable, WebhookSecret,
};
use crate::seal::{Keyring, SealError};

fn sealing_failed(error: SealError) -> StoreError {
    StoreError::unavailable("cannot seal or open a secret", error)
}

pub(crate) fn seal(keys: Option<&Keyring>, value: &str) -> StoreResult<String> {
    match keys {
        Some(keys) => keys.seal(value).map_err(sealing_failed),
        None => Ok(value.to_owned()),
    }
}

pub(crate) fn open(keys: Option<&Keyring>, value: &str) -> StoreResult<String> {
    match keys {
        Some(keys) => keys.open(value).map_err(sealing_failed),
        None => Ok(value.to_owned()),
    }
}

/// A new project with its secrets sealed.
pub(crate) fn seal_project(
    keys: Option<&Keyring>,
    project: &NewProject,
) -> StoreResult<NewProject> {
    Ok(NewProject {
        name: project.name.clone(),
        repository_url: project.repository_url.clone(),
        webhook_secret: match &project.webhook_secret {
            Some(secret) => Some(WebhookSecret(seal(keys, &secret.0)?)),
            None => None,
        },
        repository_token: match &project.repository_token {
            Some(token) => Some(RepositoryToken(seal(keys, &token.0)?)),
            None => None,
        },
    })
}

/// A webhook secret, sealed.
pub(crate) fn seal_secret(keys: Option<&Keyring>, secret: &str) -> StoreResult<String> {
    seal(keys, secret)
}

/// A forge status setting with its token sealed.
pub(crate) fn seal_forge_status(
    keys: Option<&Keyring>,
    mut status: ForgeStatus,
) -> StoreResult<ForgeStatus> {
    status.token.0 = seal(keys, &status.token.0)?;
    Ok(status)
}

/// A project as read, its secrets opened.
pub(crate) fn open_project(keys: Option<&Keyring>, mut project: Project) -> StoreResult<Project> {
    if let Some(secret) = &mut project.webhook_secret {
        secret.0 = open(keys, &secret.0)?;
    }
    if let Some(token) = &mut project.repository_token {
        token.0 = open(keys, &token.0)?;
    }
    if let Some(status) = &mut project.forge_status {
        status.token.0 = open(keys, &status.token.0)?;
    }
    Ok(project)
}

/// A new variable, its value sealed when it is sensitive.
pub(crate) fn seal_variable(
    keys: Option<&Keyring>,
    variable: &NewVariable,
) -> StoreResult<NewVariable> {
    let mut sealed = variable.clone();
    if sealed.sensitive {
        sealed.value = seal(keys, &variable.value)?;
    }
    Ok(sealed)
}

/// A variable as read, its value opened when it is sensitive.
pub(crate) fn open_variable(
    keys: Option<&Keyring>,
    mut variable: Variable,
) -> StoreResult<Variable> {
    if variable.sensitive {
        variable.value = open(keys, &variable.value)?;
    }
    Ok(variable)
}

/// `stored` under the current key: opened and sealed again, unless it is
/// under the current key already. `None` when nothing changes.
pub(crate) fn reseal(keys: &Keyring, stored: &str) -> StoreResult<Option<String>> {
    if keys.is_current(stored) {
        return Ok(None);
    }
    let plain = keys.open(stored).map_err(sealing_failed)?;
    keys.seal(&plain).map(Some).map_err(sealing_failed)
}

/// Re-seals a release's frozen variables (their JSON as stored): every
/// sensitive entry ends under the current key, sealed even if it was stored
/// in the clear before encryption at rest. `None` when nothing changes (or
/// the text is not frozen variables: it is left as it is).
pub(crate) fn reseal_frozen(keys: &Keyring, text: &str) -> StoreResult<Option<String>> {
    let Ok(mut frozen) = FrozenVariables::from_json(text) else {
        return Ok(None);
    };
    if frozen.reseal(keys).map_err(sealing_failed)? {
        Ok(Some(frozen.to_json()))
    } else {
        Ok(None)
    }
}
