//! Per-address token buckets for the public survey pages: generous enough for a service centre
//! full of citizens behind one NAT address, tight enough to stop one machine from flooding.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// A bucket per address: `capacity` requests at once, refilled at `capacity` per minute.
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        let capacity = f64::from(limit.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `addr`; `Err(seconds)` says when the next one is available.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 100_000 {
            // Forget addresses that have been quiet long enough to be full again.
            let full_after = self.capacity / self.per_second;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full_after);
        }
        let (tokens, at) = buckets.entry(addr).or_insert((self.capacity, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_burst_then_refills() {
        let limiter = RateLimiter::per_minute(60);
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check(addr, t0).is_ok());
        }
        assert_eq!(limiter.check(addr, t0), Err(1));
        assert!(
            limiter.check(other, t0).is_ok(),
            "other addresses are not affected"
        );
        assert!(limiter.check(addr, t0 + Duration::from_secs(2)).is_ok());
    }
}
