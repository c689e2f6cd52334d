//! The deadline of the request being served, as a task-local: the gRPC
//! server sets it from the caller's `grpc-timeout` (bounded by the server's
//! own request timeout), and the database layer bounds its statements by
//! what is left of it, so work the caller has given up on stops in the
//! database too instead of holding locks and connections.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the current request's deadline.
pub fn within<F: Future>(deadline: Instant, work: F) -> tokio::task::futures::TaskLocalFuture<Instant, F> {
    DEADLINE.scope(deadline, work)
}

/// What is left of the current request's deadline, if one is set.
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|at| at.saturating_duration_since(Instant::now())).ok()
}

/// A `grpc-timeout` header value: at most eight digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("5000m"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        for bad in ["", "5", "m", "123456789m", "-1S", "10x", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_deadline_is_seen_inside_the_scope_only() {
        assert_eq!(remaining(), None);
        let left = within(Instant::now() + Duration::from_secs(3), async { remaining() }).await;
        assert!(left.is_some_and(|d| d > Duration::from_secs(2) && d <= Duration::from_secs(3)));
        let past = within(Instant::now() - Duration::from_secs(1), async { remaining() }).await;
        assert_eq!(past, Some(Duration::ZERO));
    }
}
