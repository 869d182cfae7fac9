//! Monitoring: the trigger-kept totals for `/metrics`.

use super::*;

pub(in crate::postgres) async fn totals(client: &Client) -> StoreResult<crate::model::Totals> {
    let found = all(
        client,
        "SELECT name, label, sum(value)::BIGINT FROM totals GROUP BY name, label",
        &[],
    )
    .await
    .map_err(db("read the totals"))?;
    let mut totals = crate::model::Totals::default();
    for row in &found {
        let name: &str = get(row, 0)?;
        let label: String = get(row, 1)?;
        let value = unsigned(row, 2)?;
        match name {
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
