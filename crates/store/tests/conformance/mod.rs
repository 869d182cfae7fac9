//! The store conformance suite: written once against `&dyn Store`, run by
//! each implementation's test file through [`conformance_suite!`] with a
//! [`StoreFactory`] (SQLite in `tests/sqlite.rs`; PostgreSQL next).

pub(crate) mod agents;
pub(crate) mod approvals;
pub(crate) mod cluster;
pub(crate) mod deliveries;
pub(crate) mod deployments;
pub(crate) mod freezes;
pub(crate) mod interventions;
pub(crate) mod jobs;
pub(crate) mod log;
pub(crate) mod misc;
pub(crate) mod policy;
pub(crate) mod releases;
pub(crate) mod retention;
pub(crate) mod secrets;
pub(crate) mod wakeups;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tako_store::{
    Deployment, NewDelivery, NewDeployment, NewProject, NewRelease, NodeId, Project, ProjectId,
    Store,
};

/// Opens one database of its own: a fresh one for each factory, the same one
/// on each call to [`StoreFactory::open`] (a second call after dropping the
/// first store is a server restart).
#[async_trait]
pub(crate) trait StoreFactory: Send + Sync {
    /// Opens (or reopens) this factory's database.
    async fn open(&self) -> Arc<dyn Store>;
    /// The keyring the stores seal secrets with, when the test may add keys
    /// to it (rotation).
    fn keyring(&self) -> Option<Arc<tako_store::Keyring>>;
}

/// A lease long enough never to expire during a test.
pub(crate) const LONG: Duration = Duration::from_secs(600);

/// A node name.
pub(crate) fn node(name: &str) -> NodeId {
    NodeId(name.to_owned())
}

/// Registers a project named `name` with repository `github.com/acme/<name>`.
pub(crate) async fn project(store: &dyn Store, name: &str) -> Project {
    store
        .create_project(NewProject {
            name: name.to_owned(),
            repository_url: format!("https://github.com/acme/{name}"),
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .expect("project created")
}

/// A release to create in `project` with `number`.
pub(crate) fn new_release(project: ProjectId, number: &str) -> NewRelease {
    NewRelease {
        project,
        number: number.to_owned(),
        notes: format!("notes of {number}"),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        branch: Some("main".to_owned()),
        pusher: Some("octocat".to_owned()),
        takofile: "Project: web\n".to_owned(),
        variables: "{}".to_owned(),
        build_number: None,
    }
}

/// A push delivery with id `id` for `github.com/acme/<repo>`.
pub(crate) fn delivery(id: &str, repo: &str) -> NewDelivery {
    NewDelivery {
        id: tako_store::DeliveryId(id.to_owned()),
        event: "push".to_owned(),
        received_at: Utc::now(),
        body: format!("{{\"delivery\":\"{id}\"}}").into_bytes(),
        repository_url: Some(format!("https://github.com/acme/{repo}.git")),
        git_ref: Some("refs/heads/main".to_owned()),
        after: None,
        recovered: false,
    }
}

/// Creates a new release of `project` and queues it to `environment`.
pub(crate) async fn queue(store: &dyn Store, project: ProjectId, environment: &str) -> Deployment {
    let count = store
        .next_build_number(project)
        .await
        .expect("build number");
    let release = store
        .create_release(new_release(project, &format!("0.0.{count}")))
        .await
        .expect("release created");
    store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: environment.to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .expect("deployment queued")
}

/// Expands to one `#[tokio::test]` per conformance test, each opening a
/// fresh database from `$make()` (which returns a [`StoreFactory`]).
macro_rules! conformance_suite {
    ($make:expr) => {
        conformance_suite!(@tests $make;
            deliveries::duplicate_delivery_ids,
            deliveries::batch_insert_reports_each_duplicate,
            deliveries::claims_skip_unexpired_leases,
            deliveries::expired_claims_are_taken_again,
            deliveries::a_restarted_node_takes_its_own_claims_again,
            deliveries::a_delivery_can_deploy_an_existing_release,
            deliveries::complete_delivery_is_atomic_and_idempotent,
            deliveries::failed_completion_changes_nothing,
            deliveries::completing_an_unknown_delivery_is_not_found,
            deliveries::a_batch_claim_takes_the_oldest_up_to_its_limit,
            deliveries::bodies_of_every_size_are_claimed_back_as_they_came,
            deliveries::a_batch_completion_rolls_back_only_what_fails,
            deliveries::deliveries_are_listed_by_project_newest_first,
            deliveries::a_processed_delivery_can_be_replayed,
            deliveries::a_refs_pushes_are_found_by_head_and_its_last_processed_one,
            releases::release_numbers_are_unique_per_project,
            releases::releases_are_listed_newest_first,
            releases::build_counters_increment_per_project,
            releases::a_release_and_its_deployments_are_created_together,
            approvals::approvals_queue_a_waiting_deployment_once_counted,
            approvals::a_rejection_or_the_deadline_cancels_with_the_reason,
            interventions::a_paused_deployment_frees_its_slot_and_proceeds_once,
            interventions::a_failed_step_is_retried_ignored_or_aborted,
            deployments::one_at_a_time_per_project_and_environment_in_order,
            deployments::per_node_maximum_of_running_deployments,
            deployments::finish_allows_only_running_to_final,
            deployments::cancel_stops_queued_and_flags_running,
            deployments::interrupt_running_by_node_and_by_expired_lease,
            deployments::leases_are_renewed_only_by_their_holder,
            deployments::steps_are_recorded_and_replaced,
            deployments::an_ended_step_stays_ended,
            deployments::pagination_is_stable_under_inserts,
            deployments::deployments_are_filtered,
            deployments::latest_deployments_per_project_and_environment,
            deployments::release_deployments_are_the_latest_per_environment,
            log::log_reads_back_in_order_across_batches,
            log::a_million_lines_in_batches,
            log::log_of_unknown_deployment_is_not_found,
            misc::projects_are_unique_by_name_and_repository,
            misc::variables_are_set_replaced_and_deleted,
            misc::tokens_are_found_by_hash_touched_and_revoked,
            misc::settings_and_the_first_start_marker,
            misc::reopening_keeps_everything,
            misc::totals_follow_every_change,
            policy::environment_policies_are_set_found_and_deleted,
            freezes::freezes_are_created_listed_and_deleted,
            freezes::held_deployments_wait_until_released,
            policy::the_audit_log_is_appended_and_read_newest_first,
            secrets::secrets_read_back_as_written,
            secrets::rotation_reseals_every_secret,
            agents::enrollment_tokens_are_used_once_and_give_their_scope,
            agents::agents_are_found_approved_rotated_and_removed,
            jobs::a_job_is_claimed_by_its_agent_and_its_log_stored_once_in_order,
            jobs::an_agents_log_lines_wake_the_deployments_followers,
            jobs::a_lost_agents_job_is_interrupted_and_never_run_again,
            jobs::a_job_never_taken_fails_and_a_taken_one_cannot,
            jobs::running_jobs_are_counted,
            jobs::a_deployment_waiting_on_an_agent_is_requeued_with_its_steps_outputs,
            jobs::a_step_between_two_of_its_jobs_is_requeued_and_an_ended_one_is_not,
            jobs::a_deployments_jobs_are_listed_by_step_then_agent_with_their_ends,
            cluster::two_nodes_claim_deliveries_at_once,
            cluster::two_nodes_claim_deployments_at_once,
            wakeups::the_cache_generation_moves_with_projects_policies_and_tokens,
            wakeups::wakeups_tell_of_deliveries_deployments_cancels_and_log_lines,
            retention::releases_beyond_the_newest_go_but_cells_and_waiting_ones_stay,
            retention::old_task_logs_go_but_cells_and_unfinished_ones_keep_theirs,
            retention::old_routed_deliveries_go_but_pending_ones_and_ref_heads_stay,
            retention::old_audit_entries_go,
        );
    };
    (@tests $make:expr; $($module:ident :: $test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let factory = $make;
                conformance::$module::$test(&factory).await;
            }
        )*
    };
}

pub(crate) use conformance_suite;
