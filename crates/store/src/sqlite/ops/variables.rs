//! Project variables: set (or replace), list, delete.

use super::*;

pub(in crate::sqlite) fn scope_of(environments: &[String]) -> String {
    let mut environments: Vec<&str> = environments.iter().map(String::as_str).collect();
    environments.sort_unstable();
    environments.dedup();
    environments.join("\n")
}

pub(in crate::sqlite) fn variable_row(row: &Row<'_>) -> rusqlite::Result<Variable> {
    let roles: String = row.get(6)?;
    let scope: String = row.get(4)?;
    Ok(Variable {
        id: VariableId(row.get(0)?),
        project: ProjectId(row.get(1)?),
        name: row.get(2)?,
        value: row.get(3)?,
        environments: lines(&scope),
        roles: lines(&roles),
        sensitive: row.get(5)?,
    })
}

pub(in crate::sqlite) const VARIABLE_COLUMNS: &str =
    "id, project_id, name, value, scope, sensitive, roles";

/// A scope column (names joined by a newline; empty for none) read back.
fn lines(text: &str) -> Vec<String> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('\n').map(str::to_owned).collect()
    }
}

pub(in crate::sqlite) fn set_variable(
    conn: &mut Connection,
    variable: &NewVariable,
) -> StoreResult<Variable> {
    let tx = conn.transaction().map_err(db("set a variable"))?;
    require_project(&tx, variable.project)?;
    let stored = tx
        .prepare_cached(&format!(
            "INSERT INTO variables (project_id, name, name_key, scope, value, sensitive, roles)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (project_id, name_key, scope, roles) DO UPDATE SET name = excluded.name,
                 value = excluded.value, sensitive = excluded.sensitive
             RETURNING {VARIABLE_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    variable.project.0,
                    variable.name,
                    variable.name.to_lowercase(),
                    scope_of(&variable.environments),
                    variable.value,
                    variable.sensitive,
                    scope_of(&variable.roles)
                ],
                variable_row,
            )
        })
        .map_err(db("set a variable"))?;
    tx.commit().map_err(db("set a variable"))?;
    Ok(stored)
}

pub(in crate::sqlite) fn list_variables(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<Vec<Variable>> {
    let tx = conn.transaction().map_err(db("list variables"))?;
    require_project(&tx, project)?;
    tx.prepare_cached(&format!(
        "SELECT {VARIABLE_COLUMNS} FROM variables WHERE project_id = ?1 ORDER BY name_key, scope, roles"
    ))
    .and_then(|mut s| s.query_map([project.0], variable_row)?.collect())
    .map_err(db("list variables"))
}

pub(in crate::sqlite) fn delete_variable(conn: &mut Connection, id: VariableId) -> StoreResult<()> {
    let deleted = conn
        .prepare_cached("DELETE FROM variables WHERE id = ?1")
        .and_then(|mut s| s.execute([id.0]))
        .map_err(db("delete a variable"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!("variable {id}")));
    }
    Ok(())
}
