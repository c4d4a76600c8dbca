//! The one time source of the service. Every expiry check (software statements, client_ids,
//! status records, client assertions, the statement cache) asks a [`Clock`], so tests can set the
//! time to the exact second of a boundary, and a system clock before 1970 is an error instead of
//! a time of 0 at which nothing would ever have expired.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The clock cannot tell the time: every check that needs it fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system clock reads a time before 1970-01-01; refusing to check expiry")]
pub struct ClockError;

/// Seconds since the Unix epoch (the NumericDate of RFC 7519 §2).
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Result<u64, ClockError>;
}

/// A clock shared by every part of one service.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<u64, ClockError> {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .map_err(|_| ClockError)
    }
}

/// The system clock as a [`SharedClock`].
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is set: for tests of expiry boundaries.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    pub fn new(now: u64) -> Arc<Self> {
        Arc::new(FixedClock(AtomicU64::new(now)))
    }

    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: u64) {
        // a test clock; saturating keeps it monotonic
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(seconds))
            });
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Result<u64, ClockError> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

/// A clock that has failed: it reads as before the epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokenClock;

impl Clock for BrokenClock {
    fn now(&self) -> Result<u64, ClockError> {
        Err(ClockError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_is_set_and_advanced() {
        let clock = FixedClock::new(100);
        assert_eq!(clock.now(), Ok(100));
        clock.advance(5);
        assert_eq!(clock.now(), Ok(105));
        clock.set(u64::MAX);
        clock.advance(1);
        assert_eq!(clock.now(), Ok(u64::MAX));
    }

    #[test]
    fn a_clock_before_the_epoch_is_an_error() {
        assert_eq!(BrokenClock.now(), Err(ClockError));
        assert!(SystemClock.now().is_ok());
    }
}
