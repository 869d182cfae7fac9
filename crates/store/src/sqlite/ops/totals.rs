//! Monitoring: the trigger-kept totals for `/metrics`.

use super::*;

pub(in crate::sqlite) fn totals(conn: &mut Connection) -> StoreResult<crate::model::Totals> {
    let rows: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT name, label, sum(value) FROM totals GROUP BY name, label")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db("read the totals"))?;
    let mut totals = crate::model::Totals::default();
    for (name, label, value) in rows {
        let value = u64::try_from(value).unwrap_or(0);
        match name.as_str() {
            "deliveries" => {
                totals.deliveries.insert(label, value);
            }
            "deployments" => {
                totals.deployments.insert(label, value);
            }
            "steps" => totals.steps.entry(label).or_default().0 = value,
            "step_ms" => totals.steps.entry(label).or_default().1 = value,
            _ => {}
        }
    }
    Ok(totals)
}
