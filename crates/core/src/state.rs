//! The state machines of deployments and of their steps, as pure functions:
//! which event takes a state where. Every store implementation applies them
//! the same way, as a compare-and-set (`UPDATE … WHERE state IN
//! (<the states the event applies to>)`), so the rules live here once and a
//! concurrent change is refused rather than overwritten.

use std::fmt;

/// A deployment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentState {
    /// Waiting for approvals before it may be queued (its environment's
    /// `Approval` in the lifecycle).
    AwaitingApproval,
    /// Waiting for its turn.
    Queued,
    /// Claimed by a node and running.
    Running,
    /// Stopped at a step that waits for a person (`Uses:
    /// manual-intervention`, or a failed step with `OnFailure: ask`): it
    /// holds no slot, no lease and no agent until someone answers.
    Paused,
    /// Every step succeeded or was skipped.
    Success,
    /// A step failed.
    Failed,
    /// Cancelled by a user.
    Cancelled,
    /// Its node stopped while it ran.
    Interrupted,
    /// Made automatically (a push, `AutoDeploy`) while its environment is
    /// frozen: never claimed, released when the freeze ends (`Release`).
    Held,
}

impl DeploymentState {
    /// Every state.
    pub const ALL: [DeploymentState; 9] = [
        DeploymentState::AwaitingApproval,
        DeploymentState::Queued,
        DeploymentState::Running,
        DeploymentState::Paused,
        DeploymentState::Success,
        DeploymentState::Failed,
        DeploymentState::Cancelled,
        DeploymentState::Interrupted,
        DeploymentState::Held,
    ];

    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::AwaitingApproval => "awaiting_approval",
            DeploymentState::Queued => "queued",
            DeploymentState::Running => "running",
            DeploymentState::Paused => "paused",
            DeploymentState::Success => "success",
            DeploymentState::Failed => "failed",
            DeploymentState::Cancelled => "cancelled",
            DeploymentState::Interrupted => "interrupted",
            DeploymentState::Held => "held",
        }
    }

    /// Parses [`DeploymentState::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        DeploymentState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether the deployment has ended.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            DeploymentState::AwaitingApproval
                | DeploymentState::Queued
                | DeploymentState::Running
                | DeploymentState::Paused
                | DeploymentState::Held
        )
    }

    /// Where `event` takes a deployment in this state.
    pub fn after(self, event: DeploymentEvent) -> Result<DeploymentState, InvalidTransition> {
        let next = match (self, event) {
            (DeploymentState::Queued, DeploymentEvent::Claim) => DeploymentState::Running,
            // The last approval it waited for queues it; a rejection or its
            // timeout cancels it (`Cancel`).
            (DeploymentState::AwaitingApproval, DeploymentEvent::Approve) => {
                DeploymentState::Queued
            }
            (DeploymentState::AwaitingApproval, DeploymentEvent::Cancel) => {
                DeploymentState::Cancelled
            }
            (DeploymentState::Running, DeploymentEvent::Finish(end)) if end.is_final() => end,
            // A queued deployment is cancelled at once; a running one is
            // flagged and stays running until its runner stops it.
            (DeploymentState::Queued, DeploymentEvent::Cancel) => DeploymentState::Cancelled,
            (DeploymentState::Running, DeploymentEvent::Cancel) => DeploymentState::Running,
            (DeploymentState::Running, DeploymentEvent::Interrupt) => DeploymentState::Interrupted,
            // A step waits for a person: the run stops and frees its slot;
            // an answer queues it again (to resume at the step after, or
            // at the same step for a retry) or fails it (abort). A cancel
            // ends it at once: nothing runs.
            (DeploymentState::Running, DeploymentEvent::Pause) => DeploymentState::Paused,
            (DeploymentState::Paused, DeploymentEvent::Resume) => DeploymentState::Queued,
            (DeploymentState::Paused, DeploymentEvent::Abort) => DeploymentState::Failed,
            (DeploymentState::Paused, DeploymentEvent::Cancel) => DeploymentState::Cancelled,
            // A held deployment is released when its freeze ends (or an
            // admin overrides it): to its approvals when it waits on some.
            (DeploymentState::Held, DeploymentEvent::Release { awaits_approval }) => {
                if awaits_approval {
                    DeploymentState::AwaitingApproval
                } else {
                    DeploymentState::Queued
                }
            }
            (DeploymentState::Held, DeploymentEvent::Cancel) => DeploymentState::Cancelled,
            (from, event) => return Err(InvalidTransition::new(from.as_str(), event.target())),
        };
        Ok(next)
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentEvent {
    /// A node claims it to run it.
    Claim,
    /// Its runner ends it in a final state.
    Finish(DeploymentState),
    /// Someone asks for it to stop.
    Cancel,
    /// Its node stopped (or its lease ran out) while it ran.
    Interrupt,
    /// It got the last approval it waited for.
    Approve,
    /// A step waits for a person.
    Pause,
    /// A person answered a paused step: go on (proceed, retry, ignore).
    Resume,
    /// A person answered a paused step: stop (abort).
    Abort,
    /// Its freeze ended, or an admin overrode it (a held deployment).
    Release {
        /// Whether it then waits for approvals.
        awaits_approval: bool,
    },
}

impl DeploymentEvent {
    /// The states this event applies to: the `WHERE state IN (…)` of a
    /// store's compare-and-set.
    pub fn applies_to(self) -> Vec<DeploymentState> {
        DeploymentState::ALL
            .into_iter()
            .filter(|state| state.after(self).is_ok())
            .collect()
    }

    /// The state it aims at, for messages.
    fn target(self) -> &'static str {
        match self {
            DeploymentEvent::Claim => "running",
            DeploymentEvent::Finish(end) => end.as_str(),
            DeploymentEvent::Cancel => "cancelled",
            DeploymentEvent::Interrupt => "interrupted",
            DeploymentEvent::Approve => "queued",
            DeploymentEvent::Pause => "paused",
            DeploymentEvent::Resume => "queued",
            DeploymentEvent::Abort => "failed",
            DeploymentEvent::Release { .. } => "released",
        }
    }
}

/// A step's state in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepRunState {
    /// Not reached yet.
    Pending,
    /// Running now.
    Running,
    /// Succeeded.
    Success,
    /// Failed.
    Failed,
    /// Skipped (the record's reason says why).
    Skipped,
}

impl StepRunState {
    /// Every state.
    pub const ALL: [StepRunState; 5] = [
        StepRunState::Pending,
        StepRunState::Running,
        StepRunState::Success,
        StepRunState::Failed,
        StepRunState::Skipped,
    ];

    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StepRunState::Pending => "pending",
            StepRunState::Running => "running",
            StepRunState::Success => "success",
            StepRunState::Failed => "failed",
            StepRunState::Skipped => "skipped",
        }
    }

    /// Parses [`StepRunState::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        StepRunState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether the step has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepRunState::Success | StepRunState::Failed | StepRunState::Skipped
        )
    }

    /// Whether a step recorded in this state may be recorded as `next`: a
    /// pending step may become anything, a running one may end, a record
    /// may be written again unchanged (its details updated), and an ended
    /// step stays ended.
    pub fn may_become(self, next: StepRunState) -> Result<(), InvalidTransition> {
        let allowed = self == next
            || self == StepRunState::Pending
            || (self == StepRunState::Running && next.is_final());
        if allowed {
            Ok(())
        } else {
            Err(InvalidTransition::new(self.as_str(), next.as_str()))
        }
    }

    /// The states a step may be in to be recorded as `next`: the `WHERE
    /// state IN (…)` of a store's compare-and-set.
    pub fn may_come_from(next: StepRunState) -> Vec<StepRunState> {
        StepRunState::ALL
            .into_iter()
            .filter(|state| state.may_become(next).is_ok())
            .collect()
    }
}

impl fmt::Display for StepRunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agent's run of one step (a job) and its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its agent.
    Pending,
    /// Taken by its agent.
    Running,
    /// Ended well.
    Success,
    /// Ended badly (or its agent never took it).
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Its agent stopped answering while it ran; never run again.
    Interrupted,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 6] = [
        JobState::Pending,
        JobState::Running,
        JobState::Success,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ];

    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Success => "success",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    /// Parses [`JobState::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }

    /// Where `event` takes a job in this state.
    pub fn after(self, event: JobEvent) -> Result<JobState, InvalidTransition> {
        let next = match (self, event) {
            (JobState::Pending, JobEvent::Claim) => JobState::Running,
            (
                JobState::Running,
                JobEvent::Finish(
                    end @ (JobState::Success | JobState::Failed | JobState::Cancelled),
                ),
            ) => end,
            (JobState::Pending, JobEvent::Cancel) => JobState::Cancelled,
            (JobState::Running, JobEvent::Cancel) => JobState::Running,
            (JobState::Running, JobEvent::Interrupt) => JobState::Interrupted,
            (JobState::Pending, JobEvent::NotTaken) => JobState::Failed,
            (from, event) => return Err(InvalidTransition::new(from.as_str(), event.target())),
        };
        Ok(next)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens to a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEvent {
    /// Its agent takes it.
    Claim,
    /// Its agent reports how it ended (success, failed or cancelled).
    Finish(JobState),
    /// Someone asks for it to stop.
    Cancel,
    /// Its lease ran out while it ran.
    Interrupt,
    /// Its agent did not take it in time.
    NotTaken,
}

impl JobEvent {
    /// The states this event applies to (a store's compare-and-set).
    pub fn applies_to(self) -> Vec<JobState> {
        JobState::ALL
            .into_iter()
            .filter(|state| state.after(self).is_ok())
            .collect()
    }

    fn target(self) -> &'static str {
        match self {
            JobEvent::Claim => "running",
            JobEvent::Finish(end) => end.as_str(),
            JobEvent::Cancel => "cancelled",
            JobEvent::Interrupt => "interrupted",
            JobEvent::NotTaken => "failed",
        }
    }
}

/// Why a deployment waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterventionKind {
    /// A `Uses: manual-intervention` step: *Proceed* or *Abort*.
    Manual,
    /// A failed step with `OnFailure: ask` (guided failure): *Retry*,
    /// *Ignore* or *Abort*.
    Failure,
}

impl InterventionKind {
    /// Lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            InterventionKind::Manual => "manual",
            InterventionKind::Failure => "failure",
        }
    }

    /// Parses [`InterventionKind::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        [InterventionKind::Manual, InterventionKind::Failure]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The answers a person may give.
    pub fn actions(self) -> &'static [InterventionAction] {
        match self {
            InterventionKind::Manual => &[InterventionAction::Proceed, InterventionAction::Abort],
            InterventionKind::Failure => &[
                InterventionAction::Retry,
                InterventionAction::Ignore,
                InterventionAction::Abort,
            ],
        }
    }
}

impl fmt::Display for InterventionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person's answer to a paused deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterventionAction {
    /// Go on with the next step (manual intervention).
    Proceed,
    /// Run the failed step again (guided failure).
    Retry,
    /// Go on as if the failed step had succeeded (guided failure).
    Ignore,
    /// Fail the deployment.
    Abort,
}

impl InterventionAction {
    /// Every answer.
    pub const ALL: [InterventionAction; 4] = [
        InterventionAction::Proceed,
        InterventionAction::Retry,
        InterventionAction::Ignore,
        InterventionAction::Abort,
    ];

    /// Lowercase name, as stored and in URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            InterventionAction::Proceed => "proceed",
            InterventionAction::Retry => "retry",
            InterventionAction::Ignore => "ignore",
            InterventionAction::Abort => "abort",
        }
    }

    /// Parses [`InterventionAction::as_str`]'s output.
    pub fn parse(text: &str) -> Option<Self> {
        InterventionAction::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
    }

    /// What the answer does: the deployment's event, and the paused
    /// step's new state (`Pending` for a retry: it runs again).
    pub fn effect(self) -> (DeploymentEvent, StepRunState) {
        match self {
            InterventionAction::Proceed | InterventionAction::Ignore => {
                (DeploymentEvent::Resume, StepRunState::Success)
            }
            InterventionAction::Retry => (DeploymentEvent::Resume, StepRunState::Pending),
            InterventionAction::Abort => (DeploymentEvent::Abort, StepRunState::Failed),
        }
    }
}

impl fmt::Display for InterventionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The current state.
    pub from: &'static str,
    /// The state asked for.
    pub to: &'static str,
}

impl InvalidTransition {
    fn new(from: &'static str, to: &'static str) -> Self {
        InvalidTransition { from, to }
    }
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot go from {} to {}", self.from, self.to)
    }
}

impl std::error::Error for InvalidTransition {}

#[cfg(test)]
mod tests {
    use super::*;
    use DeploymentState::*;

    #[test]
    fn a_held_deployment_is_never_claimed_and_is_released_or_cancelled() {
        assert!(Held.after(DeploymentEvent::Claim).is_err());
        assert!(!Held.is_final());
        let release = |awaits_approval| DeploymentEvent::Release { awaits_approval };
        assert_eq!(Held.after(release(false)), Ok(Queued));
        assert_eq!(Held.after(release(true)), Ok(AwaitingApproval));
        assert_eq!(Held.after(DeploymentEvent::Cancel), Ok(Cancelled));
        assert_eq!(release(false).applies_to(), vec![Held]);
        assert!(DeploymentEvent::Cancel.applies_to().contains(&Held));
        assert_eq!(DeploymentState::parse("held"), Some(Held));
    }

    #[test]
    fn deployments_move_only_forward() {
        assert_eq!(Queued.after(DeploymentEvent::Claim), Ok(Running));
        assert_eq!(Running.after(DeploymentEvent::Finish(Success)), Ok(Success));
        assert_eq!(
            Running.after(DeploymentEvent::Finish(Interrupted)),
            Ok(Interrupted)
        );
        assert!(Running.after(DeploymentEvent::Finish(Queued)).is_err());
        assert!(Running.after(DeploymentEvent::Finish(Running)).is_err());
        assert_eq!(Queued.after(DeploymentEvent::Cancel), Ok(Cancelled));
        assert_eq!(Running.after(DeploymentEvent::Cancel), Ok(Running));
        assert_eq!(Running.after(DeploymentEvent::Interrupt), Ok(Interrupted));
        for end in [Success, Failed, Cancelled, Interrupted] {
            for event in [
                DeploymentEvent::Claim,
                DeploymentEvent::Cancel,
                DeploymentEvent::Interrupt,
                DeploymentEvent::Finish(Failed),
            ] {
                let refused = end.after(event).unwrap_err();
                assert_eq!(refused.from, end.as_str());
            }
        }
        assert!(Queued.after(DeploymentEvent::Interrupt).is_err());
        assert!(Queued.after(DeploymentEvent::Finish(Success)).is_err());
        assert_eq!(DeploymentEvent::Claim.applies_to(), [Queued]);
        assert_eq!(
            DeploymentEvent::Cancel.applies_to(),
            [AwaitingApproval, Queued, Running, Paused, Held]
        );
        assert_eq!(AwaitingApproval.after(DeploymentEvent::Approve), Ok(Queued));
        assert_eq!(
            AwaitingApproval.after(DeploymentEvent::Cancel),
            Ok(Cancelled)
        );
        assert!(AwaitingApproval.after(DeploymentEvent::Claim).is_err());
        assert!(Queued.after(DeploymentEvent::Approve).is_err());
        assert!(!AwaitingApproval.is_final());
        assert_eq!(DeploymentEvent::Approve.applies_to(), [AwaitingApproval]);
        assert_eq!(DeploymentEvent::Finish(Failed).applies_to(), [Running]);
        assert_eq!(
            Success
                .after(DeploymentEvent::Cancel)
                .unwrap_err()
                .to_string(),
            "cannot go from success to cancelled"
        );
        for state in DeploymentState::ALL {
            assert_eq!(DeploymentState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn a_paused_deployment_holds_nothing_and_waits_for_an_answer() {
        assert_eq!(Running.after(DeploymentEvent::Pause), Ok(Paused));
        assert_eq!(Paused.after(DeploymentEvent::Resume), Ok(Queued));
        assert_eq!(Paused.after(DeploymentEvent::Abort), Ok(Failed));
        assert_eq!(Paused.after(DeploymentEvent::Cancel), Ok(Cancelled));
        assert!(!Paused.is_final());
        for event in [
            DeploymentEvent::Claim,
            DeploymentEvent::Interrupt,
            DeploymentEvent::Finish(Success),
            DeploymentEvent::Pause,
            DeploymentEvent::Approve,
        ] {
            assert!(Paused.after(event).is_err(), "{event:?}");
        }
        assert_eq!(DeploymentEvent::Pause.applies_to(), [Running]);
        assert_eq!(DeploymentEvent::Resume.applies_to(), [Paused]);
        assert_eq!(DeploymentEvent::Interrupt.applies_to(), [Running]);
        use InterventionAction as A;
        assert_eq!(InterventionKind::Manual.actions(), [A::Proceed, A::Abort]);
        assert_eq!(
            InterventionKind::Failure.actions(),
            [A::Retry, A::Ignore, A::Abort]
        );
        assert_eq!(A::Retry.effect().1, StepRunState::Pending);
        assert_eq!(A::Abort.effect().0, DeploymentEvent::Abort);
        for action in A::ALL {
            assert_eq!(A::parse(action.as_str()), Some(action));
        }
    }

    #[test]
    fn a_job_runs_once_and_is_never_taken_again() {
        use JobState as J;
        assert_eq!(J::Pending.after(JobEvent::Claim), Ok(J::Running));
        assert!(J::Running.after(JobEvent::Claim).is_err());
        assert!(J::Interrupted.after(JobEvent::Claim).is_err());
        assert_eq!(J::Running.after(JobEvent::Finish(J::Failed)), Ok(J::Failed));
        assert!(J::Running.after(JobEvent::Finish(J::Interrupted)).is_err());
        assert!(J::Interrupted.after(JobEvent::Finish(J::Success)).is_err());
        assert_eq!(J::Running.after(JobEvent::Interrupt), Ok(J::Interrupted));
        assert_eq!(J::Pending.after(JobEvent::NotTaken), Ok(J::Failed));
        assert_eq!(JobEvent::Cancel.applies_to(), [J::Pending, J::Running]);
        for state in J::ALL {
            assert_eq!(J::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn steps_end_once() {
        use StepRunState as S;
        assert!(S::Pending.may_become(S::Running).is_ok());
        assert!(S::Pending.may_become(S::Skipped).is_ok());
        assert!(S::Running.may_become(S::Success).is_ok());
        assert!(S::Running.may_become(S::Running).is_ok());
        assert!(S::Running.may_become(S::Pending).is_err());
        assert!(S::Success.may_become(S::Running).is_err());
        assert!(S::Failed.may_become(S::Success).is_err());
        assert!(S::Skipped.may_become(S::Skipped).is_ok());
        assert_eq!(S::may_come_from(S::Running), [S::Pending, S::Running]);
        for state in S::ALL {
            assert_eq!(S::parse(state.as_str()), Some(state));
        }
    }
}
