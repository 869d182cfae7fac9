//! `slack`: not built yet in this version.

use super::{StepContext, StepResult};

/// Runs the step.
pub async fn step(context: &StepContext<'_, '_>) -> StepResult {
    Err(format!(
        "step kind slack is not available in this build of Tako yet (step {}); use a Run: step as a stand-in",
        context.step
    ))
}
