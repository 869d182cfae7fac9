//! The variables frozen into a release (as Octopus snapshots a project's
//! variables when a release is created), as JSON in the store. This module
//! is the one owner of that format: the server freezes and opens them, the
//! sealing layer re-seals them on a key rotation, both through these types.
//!
//! Sensitive values are frozen too, because a release must deploy the same
//! way later, but sealed (the store's [`Keyring`]): the release's JSON never
//! holds one in the clear, and a sensitive value is opened only for a
//! deployment into an environment its scope allows.

use crate::seal::{Keyring, SealError};
use serde::{Deserialize, Serialize};
use tako_core::variables::{VariableSource, VariableValue};

/// A release's project variables.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenVariables(Vec<FrozenVariable>);

impl std::fmt::Debug for FrozenVariables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|v| &v.name))
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct FrozenVariable {
    name: String,
    value: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    environments: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sensitive: bool,
}

impl FrozenVariables {
    /// Freezes the project's variables as the store returns them, sealing
    /// the sensitive ones.
    pub fn from_store(
        variables: &[crate::model::Variable],
        keyring: &Keyring,
    ) -> Result<FrozenVariables, SealError> {
        variables
            .iter()
            .map(|v| {
                Ok(FrozenVariable {
                    name: v.name.clone(),
                    value: if v.sensitive {
                        keyring.seal(&v.value)?
                    } else {
                        v.value.clone()
                    },
                    environments: v.environments.clone(),
                    roles: v.roles.clone(),
                    sensitive: v.sensitive,
                })
            })
            .collect::<Result<_, _>>()
            .map(FrozenVariables)
    }

    /// As stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Reads them back; an empty text is no variables.
    pub fn from_json(text: &str) -> Result<FrozenVariables, serde_json::Error> {
        if text.trim().is_empty() {
            return Ok(FrozenVariables::default());
        }
        serde_json::from_str(text)
    }

    /// Re-seals every sensitive value under `keyring`'s current key (one
    /// stored in the clear before encryption at rest is sealed too);
    /// `true` when anything changed.
    pub fn reseal(&mut self, keyring: &Keyring) -> Result<bool, SealError> {
        let mut changed = false;
        for variable in &mut self.0 {
            let sealed_already = crate::seal::sealed_key_id(&variable.value).is_some();
            if !variable.sensitive && !sealed_already {
                continue;
            }
            if keyring.is_current(&variable.value) {
                continue;
            }
            let plain = if sealed_already {
                keyring.open(&variable.value)?
            } else {
                variable.value.clone()
            };
            variable.value = keyring.seal(&plain)?;
            changed = true;
        }
        Ok(changed)
    }

    /// The non-sensitive values only (a release number is never made from
    /// a secret).
    pub fn public_values(&self) -> Vec<VariableValue> {
        self.0
            .iter()
            .filter(|v| !v.sensitive)
            .map(|v| {
                VariableValue::new(VariableSource::Project, v.name.clone(), v.value.clone())
                    .scoped(v.environments.clone())
                    .for_roles(v.roles.clone())
            })
            .collect()
    }

    /// As project-source candidates for a deployment into `environment`: a
    /// sensitive value whose scope does not include `environment` is left out
    /// without being opened.
    pub fn values_for(
        &self,
        environment: &str,
        keyring: &Keyring,
    ) -> Result<Vec<VariableValue>, SealError> {
        let mut values = Vec::with_capacity(self.0.len());
        for v in &self.0 {
            let in_scope = v.environments.is_empty()
                || v.environments
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(environment));
            if v.sensitive && !in_scope {
                continue;
            }
            let value = if v.sensitive {
                keyring.open(&v.value)?
            } else {
                v.value.clone()
            };
            let value = VariableValue::new(VariableSource::Project, v.name.clone(), value)
                .scoped(v.environments.clone())
                .for_roles(v.roles.clone());
            values.push(if v.sensitive {
                value.sensitive()
            } else {
                value
            });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{ProjectId, Variable, VariableId};

    #[test]
    fn sensitive_values_are_sealed_and_opened_only_in_scope() {
        let keyring = Keyring::new(&[3; 32]);
        let variable = |name: &str, value: &str, envs: &[&str], sensitive| Variable {
            id: VariableId(1),
            project: ProjectId(1),
            name: name.to_owned(),
            value: value.to_owned(),
            environments: envs.iter().map(|e| (*e).to_owned()).collect(),
            roles: Vec::new(),
            sensitive,
        };
        let frozen = FrozenVariables::from_store(
            &[
                variable("Key", "prod-secret", &["Production"], true),
                variable("Token", "any-secret", &[], true),
                variable("Plain", "visible", &["Production"], false),
            ],
            &keyring,
        )
        .unwrap();
        let json = frozen.to_json();
        assert!(!json.contains("prod-secret") && !json.contains("any-secret"));
        let back = FrozenVariables::from_json(&json).unwrap();
        let names = |values: Vec<VariableValue>| -> Vec<String> {
            values.iter().map(|v| v.value.clone()).collect()
        };
        assert_eq!(
            names(back.values_for("production", &keyring).unwrap()),
            vec!["prod-secret", "any-secret", "visible"]
        );
        assert_eq!(
            names(back.values_for("Staging", &keyring).unwrap()),
            vec!["any-secret", "visible"]
        );
        assert_eq!(names(back.public_values()), vec!["visible"]);
    }

    #[test]
    fn resealing_moves_sensitive_values_to_the_current_key_and_seals_clear_ones() {
        let old = Keyring::new(&[3; 32]);
        let variable = |name: &str, value: &str, sensitive| Variable {
            id: VariableId(1),
            project: ProjectId(1),
            name: name.to_owned(),
            value: value.to_owned(),
            environments: Vec::new(),
            roles: Vec::new(),
            sensitive,
        };
        let mut frozen =
            FrozenVariables::from_store(&[variable("Key", "k-secret", true)], &old).unwrap();
        // As an old Tako stored it: a sensitive value in the clear.
        let mut clear = FrozenVariables::from_json(
            r#"[{"name":"Legacy","value":"legacy-secret","sensitive":true},{"name":"Plain","value":"p"}]"#,
        )
        .unwrap();
        let keyring = Keyring::new(&[3; 32]);
        let new_id = keyring.add(&[4; 32]);
        assert!(keyring.set_current(&new_id));
        assert!(frozen.reseal(&keyring).unwrap());
        assert!(!frozen.reseal(&keyring).unwrap(), "nothing left to do");
        assert!(keyring.is_current(&frozen.0[0].value));
        assert!(clear.reseal(&keyring).unwrap());
        let json = clear.to_json();
        assert!(
            !json.contains("legacy-secret") && json.contains(r#""value":"p""#),
            "{json}"
        );
        let opened = clear.values_for("Production", &keyring).unwrap();
        assert_eq!(opened[0].value, "legacy-secret");
    }
}
