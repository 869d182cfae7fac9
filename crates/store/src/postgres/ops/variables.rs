//! Project variables: set (or replace), list, delete.

use super::*;

pub(in crate::postgres) fn scope_of(environments: &[String]) -> String {
    let mut environments: Vec<&str> = environments.iter().map(String::as_str).collect();
    environments.sort_unstable();
    environments.dedup();
    environments.join("\n")
}

pub(in crate::postgres) fn variable_row(row: &Row) -> StoreResult<Variable> {
    let roles: String = get(row, 6)?;
    let scope: String = get(row, 4)?;
    Ok(Variable {
        id: VariableId(get(row, 0)?),
        project: ProjectId(get(row, 1)?),
        name: get(row, 2)?,
        value: get(row, 3)?,
        environments: lines(&scope),
        roles: lines(&roles),
        sensitive: get(row, 5)?,
    })
}

pub(in crate::postgres) const VARIABLE_COLUMNS: &str =
    "id, project_id, name, value, scope, sensitive, roles";

/// A scope column (names joined by a newline; empty for none) read back.
fn lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_owned).collect()
    }
}

pub(in crate::postgres) async fn set_variable(
    client: &mut Client,
    variable: &NewVariable,
) -> StoreResult<Variable> {
    const CONTEXT: &str = "set a variable";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    require_project(&tx, variable.project).await?;
    let row = one(
        &tx,
        &format!(
            "INSERT INTO variables (project_id, name, name_key, scope, value, sensitive, roles)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (project_id, name_key, scope, roles) DO UPDATE SET name = excluded.name,
                 value = excluded.value, sensitive = excluded.sensitive
             RETURNING {VARIABLE_COLUMNS}"
        ),
        &[
            &variable.project.0,
            &variable.name,
            &variable.name.to_lowercase(),
            &scope_of(&variable.environments),
            &variable.value,
            &variable.sensitive,
            &scope_of(&variable.roles),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    let stored = variable_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(stored)
}

pub(in crate::postgres) async fn list_variables(
    client: &Client,
    project: ProjectId,
) -> StoreResult<Vec<Variable>> {
    require_project(client, project).await?;
    let found = all(
        client,
        &format!(
            "SELECT {VARIABLE_COLUMNS} FROM variables WHERE project_id = $1 ORDER BY name_key COLLATE \"C\", scope COLLATE \"C\", roles COLLATE \"C\""
        ),
        &[&project.0],
    )
    .await
    .map_err(db("list variables"))?;
    rows(found, variable_row)
}

pub(in crate::postgres) async fn delete_variable(
    client: &Client,
    id: VariableId,
) -> StoreResult<()> {
    let deleted = exec(client, "DELETE FROM variables WHERE id = $1", &[&id.0])
        .await
        .map_err(db("delete a variable"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!("variable {id}")));
    }
    Ok(())
}
