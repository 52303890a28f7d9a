//! The storage contract: every test is written once against `Arc<dyn Store>` and runs on
//! SQLite (a temp file) always, and on PostgreSQL (a fresh schema per test) when
//! `ASSAY_TEST_DATABASE_URL` is set. Without it the PostgreSQL instances are reported as
//! *ignored*, never as passed.
//!
//! A custom harness (libtest-mimic) is used so that skipped PostgreSQL tests show up as
//! ignored in the summary line instead of silently passing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod contract {
    pub mod audit;
    pub mod audit_log;
    pub mod executions;
    pub mod harness;
    pub mod identity;
    pub mod listing;
    pub mod oauth;
    pub mod resources;
    pub mod support;
    pub mod tenancy;
    pub mod upgrade;
}

use contract::harness::{self, Suite};

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let suite = Suite::default()
        // tenancy and identity
        .test(
            "orgs_insert_find_list",
            contract::tenancy::orgs_insert_find_list,
        )
        .test(
            "org_uuid_shaped_slug",
            contract::tenancy::org_uuid_shaped_slug,
        )
        .test(
            "envs_insert_find_list",
            contract::tenancy::envs_insert_find_list,
        )
        .test(
            "users_and_memberships",
            contract::tenancy::users_and_memberships,
        )
        .test("api_tokens", contract::tenancy::api_tokens)
        .test("update_user", contract::identity::update_user)
        .test(
            "memberships_list_delete",
            contract::identity::memberships_list_delete,
        )
        .test(
            "memberships_of_user",
            contract::identity::memberships_of_user,
        )
        .test("api_token_list_get", contract::identity::api_token_list_get)
        .test(
            "api_token_update_and_rotation",
            contract::identity::api_token_update_and_rotation,
        )
        .test(
            "token_usage_batched_and_monotonic",
            contract::identity::token_usage_batched_and_monotonic,
        )
        .test(
            "revoke_tokens_created_by",
            contract::identity::revoke_tokens_created_by,
        )
        .test(
            "audit_retention_days",
            contract::identity::audit_retention_days,
        )
        // workflows and templates
        .test("resource_crud", contract::resources::resource_crud)
        .test(
            "resource_pagination",
            contract::resources::resource_pagination,
        )
        .test("resource_filters", contract::resources::resource_filters)
        .test(
            "resource_invalid_input",
            contract::resources::resource_invalid_input,
        )
        .test("label_values", contract::resources::label_values)
        // executions
        .test(
            "execution_round_trip",
            contract::executions::execution_round_trip,
        )
        .test(
            "timestamps_exact_to_microsecond",
            contract::executions::timestamps_exact_to_microsecond,
        )
        .test(
            "execution_numbering",
            contract::executions::execution_numbering,
        )
        .test(
            "concurrent_insert_execution",
            contract::executions::concurrent_insert_execution,
        )
        .test("update_execution", contract::executions::update_execution)
        .test(
            "execution_survives_workflow_deletion",
            contract::executions::execution_survives_workflow_deletion,
        )
        .test(
            "executions_with_status",
            contract::executions::executions_with_status,
        )
        .test("recent_executions", contract::executions::recent_executions)
        .test(
            "recent_executions_for_workflows",
            contract::executions::recent_executions_for_workflows,
        )
        .test("resource_samples", contract::executions::resource_samples)
        // listing executions
        .test(
            "execution_pagination",
            contract::listing::execution_pagination,
        )
        .test("execution_filters", contract::listing::execution_filters)
        .test(
            "execution_filters_paginate",
            contract::listing::execution_filters_paginate,
        )
        .test(
            "execution_invalid_input",
            contract::listing::execution_invalid_input,
        )
        // audit
        .test(
            "audit_append_and_read",
            contract::audit::audit_append_and_read,
        )
        .test(
            "concurrent_append_audit",
            contract::audit::concurrent_append_audit,
        )
        .test(
            "audit_duplicate_and_tamper",
            contract::audit::audit_duplicate_and_tamper,
        )
        .test(
            "append_batch_two_orgs",
            contract::audit_log::append_batch_two_orgs,
        )
        .test(
            "append_batch_all_or_nothing",
            contract::audit_log::append_batch_all_or_nothing,
        )
        .test(
            "concurrent_batches_and_appends",
            contract::audit_log::concurrent_batches_and_appends,
        )
        .test(
            "query_audit_filters",
            contract::audit_log::query_audit_filters,
        )
        .test(
            "query_audit_paging",
            contract::audit_log::query_audit_paging,
        )
        .test("audit_actors", contract::audit_log::audit_actors)
        .test(
            "purge_audit_before",
            contract::audit_log::purge_audit_before,
        )
        .test(
            "purge_during_appends",
            contract::audit_log::purge_during_appends,
        )
        .test("purge_long_chain", contract::audit_log::purge_long_chain)
        // OAuth authorization server
        .test("oauth_clients", contract::oauth::oauth_clients)
        .test("oauth_grants", contract::oauth::oauth_grants)
        .test(
            "oauth_grant_concurrent_consent",
            contract::oauth::oauth_grant_concurrent_consent,
        )
        .test(
            "oauth_revoke_grants_of_user",
            contract::oauth::oauth_revoke_grants_of_user,
        )
        .test("authorization_codes", contract::oauth::authorization_codes)
        .test(
            "authorization_code_concurrent_consume",
            contract::oauth::authorization_code_concurrent_consume,
        )
        .test("refresh_tokens", contract::oauth::refresh_tokens)
        .test(
            "refresh_used_after_the_family_ended",
            contract::oauth::refresh_used_after_the_family_ended,
        )
        .test(
            "refresh_revoked_with_grant",
            contract::oauth::refresh_revoked_with_grant,
        )
        .test(
            "refresh_concurrent_use",
            contract::oauth::refresh_concurrent_use,
        )
        .test(
            "refresh_family_liveness",
            contract::oauth::refresh_family_liveness,
        )
        .test(
            "revoked_access_tokens",
            contract::oauth::revoked_access_tokens,
        )
        .test("signing_keys", contract::oauth::signing_keys)
        .test(
            "device_authorizations",
            contract::oauth::device_authorizations,
        )
        .test(
            "device_concurrent_decisions",
            contract::oauth::device_concurrent_decisions,
        )
        .test(
            "authorization_code_purge",
            contract::oauth::authorization_code_purge,
        )
        .test(
            "device_interval_and_take",
            contract::oauth::device_interval_and_take,
        )
        .test("browser_sessions", contract::oauth::browser_sessions);
    let trials = suite
        .into_trials()
        .into_iter()
        .chain(harness::sqlite_only_trials())
        .chain(contract::upgrade::trials())
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
