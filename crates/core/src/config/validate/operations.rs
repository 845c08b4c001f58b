//! The sections that shape how a deployed pipeline runs and is watched: `[alarms]`
//! (CloudWatch periods and thresholds), `[ledger]` (a SQLite or PostgreSQL URL) and
//! `[workers]` (concurrency, shutdown grace, batch window, health address).

use crate::config::pipeline::PipelineConfig;
use crate::config::problem::Problem;

pub(super) fn check_alarms(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let a = &config.alarms;
    if a.period_secs < 60 || !a.period_secs.is_multiple_of(60) {
        problems.push(Problem::new(
            "alarms.period_secs",
            format!("{} is not a CloudWatch alarm period", a.period_secs),
            "use a multiple of 60 seconds, e.g. 300",
        ));
    }
    if a.failures_threshold == 0 {
        problems.push(Problem::new(
            "alarms.failures_threshold",
            "a threshold of 0 would always alarm",
            "use 1 or more",
        ));
    }
    if a.oldest_message_age_secs == 0 {
        problems.push(Problem::new(
            "alarms.oldest_message_age_secs",
            "an age of 0 would always alarm",
            "use the age in seconds after which a waiting message means a stuck stage, e.g. 900",
        ));
    }
}

pub(super) fn check_ledger(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let url = &config.ledger.database_url;
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        problems.push(Problem::new(
            "ledger.database_url",
            format!("\"{url}\" is neither a SQLite nor a PostgreSQL URL"),
            "use \"sqlite://intake.db\" (a file) or \"postgres://user@host/db\"",
        ));
    }
}

pub(super) fn check_workers(config: &PipelineConfig, problems: &mut Vec<Problem>) {
    let w = &config.workers;
    if !(1..=1000).contains(&w.concurrency) {
        problems.push(Problem::new(
            "workers.concurrency",
            format!("{} is out of range", w.concurrency),
            "use 1 to 1000 messages at once per stage (8 by default; more only helps while the services are not saturated)",
        ));
    }
    if w.shutdown_grace_secs > 43_200 {
        problems.push(Problem::new(
            "workers.shutdown_grace_secs",
            format!("{} is out of range", w.shutdown_grace_secs),
            "use 0 to 43200 seconds; keep it below your orchestrator's kill timeout (Kubernetes: terminationGracePeriodSeconds)",
        ));
    }
    if w.batch_window_ms > 1000 {
        problems.push(Problem::new(
            "workers.batch_window_ms",
            format!("{} is out of range", w.batch_window_ms),
            "use 0 to 1000 milliseconds (10 by default): every stage of every object may wait up to three windows",
        ));
    }
    if let Some(bind) = &w.health_bind
        && bind.parse::<std::net::SocketAddr>().is_err()
    {
        problems.push(Problem::new(
            "workers.health_bind",
            format!("\"{bind}\" is not a socket address"),
            "write e.g. \"0.0.0.0:9464\" (an IP address and a port; 127.0.0.1 for this host only), or remove the key for no health server",
        ));
    }
}
