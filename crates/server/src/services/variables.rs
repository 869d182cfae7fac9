//! Project variables: set (or replace, by name and scope) and delete, admin
//! only. Sensitive values are sealed by the store and never shown again.

use tako_store::{NewVariable, Variable, VariableId};

use super::{Principal, ServiceError, ServiceResult, Services, check_name};

/// What the admin role is needed for here.
const VARIABLES: &str = "read or change variables: it needs the admin role";

/// A variable's new value and scope.
#[derive(Clone, PartialEq, Eq)]
pub struct VariableInput {
    /// The value.
    pub value: String,
    /// The environments it is scoped to; empty for all.
    pub environments: Vec<String>,
    /// The target roles it is scoped to; empty for every step.
    pub roles: Vec<String>,
    /// Whether the value is sensitive.
    pub sensitive: bool,
}

impl std::fmt::Debug for VariableInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value may be sensitive: never print it.
        f.debug_struct("VariableInput")
            .field("environments", &self.environments)
            .field("sensitive", &self.sensitive)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// A project's variables (admin only; sensitive values stay sealed for
    /// the front ends, which show `********`).
    pub async fn list_variables(
        &self,
        who: &Principal,
        project: &str,
    ) -> ServiceResult<Vec<Variable>> {
        who.require_admin(VARIABLES)?;
        let project = self.project_named(project).await?;
        Ok(self.store.list_variables(project.id).await?)
    }

    /// Sets (or replaces, by name and scope) a project variable.
    pub async fn set_variable(
        &self,
        who: &Principal,
        project: &str,
        name: &str,
        input: VariableInput,
    ) -> ServiceResult<Variable> {
        who.require_admin(VARIABLES)?;
        let project = self.project_named(project).await?;
        check_name("variable name", name)?;
        let mut environments = input.environments;
        for environment in &environments {
            check_name("environment", environment)?;
        }
        environments.sort();
        environments.dedup();
        let mut roles = input.roles;
        for role in &roles {
            check_name("role", role)?;
        }
        roles.sort();
        roles.dedup();
        let variable = self
            .store
            .set_variable(NewVariable {
                project: project.id,
                name: name.to_owned(),
                value: input.value,
                environments,
                roles,
                sensitive: input.sensitive,
            })
            .await?;
        tracing::info!(project = %project.name, variable = %variable.name, by = %who.name, "variable set");
        Ok(variable)
    }

    /// Deletes a project variable by id; [`ServiceError::NotFound`] when the
    /// project has no such variable.
    pub async fn delete_variable(
        &self,
        who: &Principal,
        project: &str,
        id: VariableId,
    ) -> ServiceResult<()> {
        who.require_admin(VARIABLES)?;
        let project = self.project_named(project).await?;
        let owned = self
            .store
            .list_variables(project.id)
            .await?
            .into_iter()
            .any(|v| v.id == id);
        if !owned {
            return Err(ServiceError::NotFound(format!(
                "variable {id} of project {} not found",
                project.name
            )));
        }
        self.store.delete_variable(id).await?;
        tracing::info!(project = %project.name, variable = %id, by = %who.name, "variable deleted");
        Ok(())
    }
}
