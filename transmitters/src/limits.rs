//! Protections per channel configuration: a token bucket (requests per second, with a burst),
//! so one customer's remote is never flooded, and a circuit breaker, so a remote that keeps
//! failing is left alone for a while instead of being hammered by every due row.

use std::time::{Duration, Instant};

/// A token bucket: `rate` requests a second on average, up to `burst` at once.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: rate.max(0.001),
            burst,
            tokens: burst,
            updated: Instant::now(),
        }
    }

    /// Takes a token: `None` when one was free, else how long until one is.
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Where a circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    /// Calls go through.
    Closed,
    /// Calls are held back until this instant.
    Open { until: Instant },
    /// The cool-down is over: one probe call is in flight; its outcome closes or re-opens.
    HalfOpen,
}

/// Opens after `threshold` consecutive failures for `cooldown`, then lets one probe through.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    state: Circuit,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            state: Circuit::Closed,
        }
    }

    pub fn state(&self) -> Circuit {
        self.state
    }

    /// Whether a call may go now: `None` if so, else how long to hold back.
    pub fn admit(&mut self, now: Instant) -> Option<Duration> {
        match self.state {
            Circuit::Closed => None,
            Circuit::Open { until } if now >= until => {
                self.state = Circuit::HalfOpen;
                None
            }
            Circuit::Open { until } => Some(until - now),
            // The probe is out: the others wait for its outcome.
            Circuit::HalfOpen => Some(self.cooldown.min(Duration::from_secs(1))),
        }
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.state = Circuit::Closed;
    }

    /// A failure that says the remote is unwell (no answer, 429, 5xx); a refusal of one
    /// request (a 4xx) is not one.
    pub fn failure(&mut self, now: Instant) {
        self.failures += 1;
        if self.state == Circuit::HalfOpen || self.failures >= self.threshold {
            self.state = Circuit::Open {
                until: now + self.cooldown,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), None);
        }
        let wait = bucket.take(start).expect("empty after the burst");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert_eq!(bucket.take(start + Duration::from_millis(100)), None);
        assert!(bucket.take(start + Duration::from_millis(100)).is_some());
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_probes_after_the_cooldown() {
        let start = Instant::now();
        let mut breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        breaker.failure(start);
        breaker.failure(start);
        assert_eq!(breaker.admit(start), None);
        breaker.failure(start);
        assert_eq!(breaker.admit(start), Some(Duration::from_secs(10)));
        let later = start + Duration::from_secs(10);
        assert_eq!(breaker.admit(later), None, "one probe");
        assert_eq!(breaker.state(), Circuit::HalfOpen);
        assert!(breaker.admit(later).is_some(), "only one probe");
        breaker.failure(later);
        assert!(matches!(breaker.state(), Circuit::Open { .. }));
        let again = later + Duration::from_secs(10);
        assert_eq!(breaker.admit(again), None);
        breaker.success();
        assert_eq!(breaker.state(), Circuit::Closed);
        assert_eq!(breaker.admit(again), None);
    }
}
