//! Octopus step templates (`Uses: path/to/template.json`): the JSON format of
//! the OctopusDeploy/Library community templates.
//!
//! A template's script body (`Octopus.Action.Script.ScriptBody`) runs with its
//! declared syntax (Bash, Python; PowerShell where `pwsh` is installed). Each
//! parameter becomes a variable named exactly as the parameter: the `With:`
//! value when given, else the template's `DefaultValue`; a parameter nobody
//! set whose default is empty is left undefined, as Octopus does. Parameters
//! whose control type is `Sensitive` are sensitive (masked).

use serde_json::Value;
use tako_takofile::{Shell, WithValue};

/// A template, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTemplate {
    /// The template's name.
    pub name: String,
    /// How to run the body.
    pub shell: Shell,
    /// The script body (unsubstituted).
    pub body: String,
    /// The parameters with their resolved raw values.
    pub parameters: Vec<TemplateParameter>,
}

/// One parameter's value for this step.
#[derive(Clone, PartialEq, Eq)]
pub struct TemplateParameter {
    /// The parameter's name (used as the variable name, exactly).
    pub name: String,
    /// Its raw value (may contain `#{...}`).
    pub value: String,
    /// Control type `Sensitive`.
    pub sensitive: bool,
}

impl std::fmt::Debug for TemplateParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.sensitive {
            tako_core::MASK
        } else {
            &self.value
        };
        f.debug_struct("TemplateParameter")
            .field("name", &self.name)
            .field("value", &value)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// Reads a template's JSON and applies the step's `With:` values.
pub fn load(json: &str, with: &[(String, WithValue)]) -> Result<StepTemplate, String> {
    let template: Value = serde_json::from_str(json)
        .map_err(|e| format!("not a step template: invalid JSON: {e}"))?;
    let name = template["Name"]
        .as_str()
        .unwrap_or("step template")
        .to_owned();
    let action_type = template["ActionType"].as_str().unwrap_or("Octopus.Script");
    if action_type != "Octopus.Script" {
        return Err(format!(
            "step template {name:?} has ActionType {action_type}; only Octopus.Script templates can run here"
        ));
    }
    let properties = &template["Properties"];
    let syntax = properties["Octopus.Action.Script.Syntax"]
        .as_str()
        .unwrap_or("PowerShell");
    let shell = match syntax.to_ascii_lowercase().as_str() {
        "bash" => Shell::Bash,
        "python" => Shell::Python,
        "powershell" => Shell::Pwsh,
        other => {
            return Err(format!(
                "step template {name:?} uses script syntax {other}, which Tako cannot run"
            ));
        }
    };
    let source = properties["Octopus.Action.Script.ScriptSource"]
        .as_str()
        .unwrap_or("Inline");
    if !source.eq_ignore_ascii_case("Inline") {
        return Err(format!(
            "step template {name:?} takes its script from a package; only inline scripts can run"
        ));
    }
    let body = properties["Octopus.Action.Script.ScriptBody"]
        .as_str()
        .ok_or_else(|| format!("step template {name:?} has no Octopus.Action.Script.ScriptBody"))?
        .replace("\r\n", "\n");

    let declared = template["Parameters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut parameters = Vec::new();
    for parameter in &declared {
        let Some(parameter_name) = parameter["Name"].as_str() else {
            continue;
        };
        let sensitive = parameter["DisplaySettings"]["Octopus.ControlType"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("Sensitive"));
        let given = with.iter().find(|(key, _)| key == parameter_name);
        let value = match given {
            Some((_, WithValue::Text(text))) => Some(text.clone()),
            Some((key, _)) => {
                return Err(format!("parameter {key} must be text, not a list or map"));
            }
            None => parameter["DefaultValue"]
                .as_str()
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        };
        if let Some(value) = value {
            parameters.push(TemplateParameter {
                name: parameter_name.to_owned(),
                value,
                sensitive,
            });
        }
    }
    for (key, _) in with {
        if !declared
            .iter()
            .any(|p| p["Name"].as_str() == Some(key.as_str()))
        {
            let known: Vec<&str> = declared.iter().filter_map(|p| p["Name"].as_str()).collect();
            return Err(format!(
                "step template {name:?} has no parameter {key}; its parameters are: {}",
                known.join(", ")
            ));
        }
    }
    Ok(StepTemplate {
        name,
        shell,
        body,
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{
      "Name": "Say hello",
      "ActionType": "Octopus.Script",
      "Properties": {
        "Octopus.Action.Script.ScriptSource": "Inline",
        "Octopus.Action.Script.Syntax": "Bash",
        "Octopus.Action.Script.ScriptBody": "echo hi\r\necho $(get_octopusvariable \"Greeting.Name\")"
      },
      "Parameters": [
        { "Name": "Greeting.Name", "DefaultValue": "world", "DisplaySettings": { "Octopus.ControlType": "SingleLineText" } },
        { "Name": "Greeting.Token", "DefaultValue": "", "DisplaySettings": { "Octopus.ControlType": "Sensitive" } },
        { "Name": "Greeting.Empty", "DefaultValue": null }
      ]
    }"#;

    #[test]
    fn defaults_apply_and_empty_defaults_stay_undefined() {
        let template = load(TEMPLATE, &[]).unwrap();
        assert_eq!(template.shell, Shell::Bash);
        assert_eq!(
            template.body,
            "echo hi\necho $(get_octopusvariable \"Greeting.Name\")"
        );
        assert_eq!(template.parameters.len(), 1);
        assert_eq!(template.parameters[0].value, "world");
    }

    #[test]
    fn with_values_override_and_sensitive_is_kept() {
        let with = vec![(
            "Greeting.Token".to_owned(),
            WithValue::Text("tok-123456".into()),
        )];
        let template = load(TEMPLATE, &with).unwrap();
        let token = template
            .parameters
            .iter()
            .find(|p| p.name == "Greeting.Token")
            .unwrap();
        assert!(token.sensitive);
        assert!(!format!("{template:?}").contains("tok-123456"));
    }

    #[test]
    fn unknown_parameters_and_bad_json_are_clear_errors() {
        let with = vec![("Greting.Name".to_owned(), WithValue::Text("x".into()))];
        assert!(
            load(TEMPLATE, &with)
                .unwrap_err()
                .contains("has no parameter Greting.Name")
        );
        assert!(load("{", &[]).unwrap_err().contains("invalid JSON"));
    }
}
