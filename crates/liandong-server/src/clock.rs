//! The server's clock for the joint work's time limits (mediation steps, after-hours
//! referrals, home visits): the system clock in service, a clock a test sets by hand so
//! that a weekend or a public holiday passes in a moment.
//!
//! Only the rules that reason about office days and deadlines read it; event times,
//! sequencing and sessions keep the system clock, which a test cannot move.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// The time of day the joint work's rules see, in unix milliseconds. Cloning shares the
/// clock: a test keeps one clone and moves it; the server reads the other.
#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a manual clock at that moment.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `at_ms` until it is set or advanced.
    pub fn manual(at_ms: i64) -> Clock {
        Clock { manual: Some(Arc::new(AtomicI64::new(at_ms))) }
    }

    /// Now, in unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::Relaxed),
            None => crate::time_fmt::now_ms(),
        }
    }

    /// Moves a manual clock to `at_ms`; the system clock ignores it.
    pub fn set(&self, at_ms: i64) {
        if let Some(at) = &self.manual {
            at.store(at_ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock on by `ms`; the system clock ignores it.
    pub fn advance(&self, ms: i64) {
        if let Some(at) = &self.manual {
            at.fetch_add(ms, Ordering::Relaxed);
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(at) => write!(f, "Clock::manual({})", at.load(Ordering::Relaxed)),
            None => f.write_str("Clock::system()"),
        }
    }
}

/// Calls `tick` with the state every `period` until the server stops (`shutdown`) or its
/// state is gone: the loop of the services' tickers on the server's clock (late mediation
/// steps, silent cameras, the metrics' upkeep). A tick that overruns delays the next rather than bunching them.
pub async fn every<T, Fut>(
    state: std::sync::Weak<T>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    period: std::time::Duration,
    mut tick: impl FnMut(Arc<T>) -> Fut,
) where
    Fut: std::future::Future<Output = ()>,
{
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        let Some(s) = state.upgrade() else { return };
        tick(s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_move_with_it() {
        let c = Clock::manual(1_000);
        let seen_by_server = c.clone();
        assert_eq!(seen_by_server.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(seen_by_server.now_ms(), 1_500);
        c.set(42);
        assert_eq!(seen_by_server.now_ms(), 42);
    }

    #[test]
    fn the_system_clock_ignores_being_set() {
        let c = Clock::system();
        c.set(0);
        assert!(c.now_ms() > 1_700_000_000_000);
        assert!(!c.is_manual());
    }
}
