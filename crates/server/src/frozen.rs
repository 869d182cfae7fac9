//! The variables frozen into a release (as Octopus snapshots a project's
//! variables when a release is created), as JSON in the store.
//!
//! Sensitive values are frozen too, because a release must deploy the same
//! way later; the security milestone encrypts them at rest like every other
//! sensitive value.

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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sensitive: bool,
}

impl FrozenVariables {
    /// Freezes the project's variables as the store returns them.
    pub fn from_store(variables: &[tako_store::Variable]) -> FrozenVariables {
        FrozenVariables(
            variables
                .iter()
                .map(|v| FrozenVariable {
                    name: v.name.clone(),
                    value: v.value.clone(),
                    environments: v.environments.clone(),
                    sensitive: v.sensitive,
                })
                .collect(),
        )
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

    /// As project-source candidates for a deployment.
    pub fn values(&self) -> Vec<VariableValue> {
        self.0
            .iter()
            .map(|v| {
                let value =
                    VariableValue::new(VariableSource::Project, v.name.clone(), v.value.clone())
                        .scoped(v.environments.clone());
                if v.sensitive {
                    value.sensitive()
                } else {
                    value
                }
            })
            .collect()
    }
}
