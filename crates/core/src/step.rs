//! What happened to a step, and whether the next one runs.
//!
//! A skipped step is always recorded with its reason and is never shown as
//! succeeded; a failed step is data ([`StepState::Failed`]), not an error.

use std::fmt;
use std::time::Duration;

use tako_takofile::{Condition, Step};

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// `Environments:` does not name the deployment's environment.
    NotScoped {
        /// The deployment's environment.
        environment: String,
    },
    /// `ExcludeEnvironments:` names the deployment's environment.
    Excluded {
        /// The deployment's environment.
        environment: String,
    },
    /// `Condition: Success` and an earlier step failed.
    EarlierStepFailed,
    /// `Condition: Failure` and nothing failed.
    NothingFailed,
    /// The condition expression evaluated to a false value.
    ConditionFalse {
        /// The expression as written.
        expression: String,
        /// What it evaluated to (masked).
        value: String,
    },
    /// The deployment was cancelled before the step started.
    Cancelled,
    /// `WhenNoAgents: skip` and no agent has any of the step's roles.
    NoAgents {
        /// `no agent in Production has any of the roles windows, ps`.
        message: String,
    },
    /// Skipped before the deployment was interrupted and resumed: the
    /// reason as it was recorded.
    Recorded {
        /// The recorded reason.
        reason: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotScoped { environment } => write!(f, "not scoped to {environment}"),
            SkipReason::Excluded { environment } => write!(f, "excluded from {environment}"),
            SkipReason::EarlierStepFailed => f.write_str("an earlier step failed"),
            SkipReason::NothingFailed => f.write_str("runs only on failure and nothing failed"),
            SkipReason::ConditionFalse { expression, value } => {
                write!(f, "condition {expression} evaluated to {value:?}")
            }
            SkipReason::Cancelled => f.write_str("the deployment was cancelled"),
            SkipReason::NoAgents { message } => f.write_str(message),
            SkipReason::Recorded { reason } => f.write_str(reason),
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// It ran and succeeded.
    Success,
    /// It ran and failed; the reason is masked.
    Failed {
        /// What went wrong (`exit code 1`, `timed out after 10m`, a helper's message).
        reason: String,
    },
    /// It did not run.
    Skipped(SkipReason),
    /// It was running when the deployment was cancelled.
    Cancelled,
}

impl StepState {
    /// `Success`, `Failed`, `Skipped` or `Cancelled`: the value of
    /// `Tako.Action[Name].Status`.
    pub fn status_name(&self) -> &'static str {
        match self {
            StepState::Success => "Success",
            StepState::Failed { .. } => "Failed",
            StepState::Skipped(_) => "Skipped",
            StepState::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepState::Success => f.write_str("succeeded"),
            StepState::Failed { reason } => write!(f, "failed: {reason}"),
            StepState::Skipped(reason) => write!(f, "skipped: {reason}"),
            StepState::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// One step's line in a deployment's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The step's name.
    pub name: String,
    /// What happened.
    pub state: StepState,
    /// How long it ran (zero when skipped).
    pub duration: Duration,
}

/// Whether a step runs, decided before any expression is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunDecision {
    /// Run it.
    Run,
    /// Skip it.
    Skip(SkipReason),
    /// Evaluate this expression; run when the result is [`condition_is_true`].
    Evaluate(String),
}

/// Decides whether `step` runs in `environment`, given whether an earlier
/// step failed and whether the deployment is cancelled (after a cancel only
/// `Always` steps run).
pub fn decide(
    step: &Step,
    environment: &str,
    earlier_failure: bool,
    cancelled: bool,
) -> RunDecision {
    let named = |list: &[String]| list.iter().any(|e| e.eq_ignore_ascii_case(environment));
    if !step.environments.is_empty() && !named(&step.environments) {
        return RunDecision::Skip(SkipReason::NotScoped {
            environment: environment.to_owned(),
        });
    }
    if named(&step.exclude_environments) {
        return RunDecision::Skip(SkipReason::Excluded {
            environment: environment.to_owned(),
        });
    }
    match &step.condition {
        Condition::Always => RunDecision::Run,
        _ if cancelled => RunDecision::Skip(SkipReason::Cancelled),
        Condition::Success if earlier_failure => RunDecision::Skip(SkipReason::EarlierStepFailed),
        Condition::Success => RunDecision::Run,
        Condition::Failure if earlier_failure => RunDecision::Run,
        Condition::Failure => RunDecision::Skip(SkipReason::NothingFailed),
        Condition::Expression(expression) => RunDecision::Evaluate(expression.clone()),
    }
}

/// The takofile's rule for a condition expression's result: run when it is
/// non-empty and not `false`/`False`/`0` (surrounding whitespace ignored;
/// `FALSE` and other spellings of false count as false too).
pub fn condition_is_true(value: &str) -> bool {
    let value = value.trim();
    !(value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false"))
}
