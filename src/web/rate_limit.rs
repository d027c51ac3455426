//! Per-client limits for the public survey pages: generous enough for a service centre full of
//! citizens behind one NAT address, tight enough to stop one machine from flooding.
//!
//! `governor`'s keyed GCRA limiter on a sharded map: a request touches only its own key, and
//! forgotten keys are pruned by a background thread ([`RateLimiter::spawn_pruner`]), never on
//! the request path. IPv6 clients are keyed by their /64, which one household or machine
//! usually holds whole, so walking through its addresses buys no extra budget.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};

/// One bucket per key: `limit` requests at once, refilled at `limit` per minute.
pub struct RateLimiter<C: Clock = DefaultClock> {
    inner: Gcra<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
}

/// The bucket an address draws from: the IPv4 address itself, or the /64 of an IPv6 address
/// (IPv4-mapped IPv6 counts as IPv4).
pub fn bucket_key(addr: IpAddr) -> IpAddr {
    match crate::proxy::canonical(addr) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

fn quota(limit: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(limit.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    pub fn with_clock(limit: u32, clock: C) -> Self {
        Self {
            inner: Gcra::dashmap_with_clock(quota(limit), clock.clone()),
            clock,
        }
    }

    /// Takes one request from the bucket of `addr`; `Err(seconds)` says when the next one is
    /// allowed (at least 1, for `Retry-After`).
    pub fn check(&self, addr: IpAddr) -> Result<(), u64> {
        self.inner
            .check_key(&bucket_key(addr))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                (wait.as_secs_f64().ceil() as u64).max(1)
            })
    }

    /// Forgets every key whose bucket is full again (it would behave as a new key anyway).
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    /// Prunes the map every `every` on a thread of its own, until the limiter is dropped.
    pub fn spawn_pruner(self: &Arc<Self>, every: Duration) -> std::io::Result<()>
    where
        C: Send + Sync + 'static,
    {
        let limiter: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sipas-rate-prune".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    match limiter.upgrade() {
                        Some(limiter) => limiter.prune(),
                        None => return,
                    }
                }
            })
            .map(|_| ())
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allows_a_burst_then_refills() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(60, clock.clone());
        let addr = ip("10.0.0.1");
        for _ in 0..60 {
            assert!(limiter.check(addr).is_ok());
        }
        assert_eq!(limiter.check(addr), Err(1));
        assert!(
            limiter.check(ip("10.0.0.2")).is_ok(),
            "other addresses are not affected"
        );
        clock.advance(Duration::from_secs(2));
        assert!(limiter.check(addr).is_ok());
    }

    #[test]
    fn retry_after_counts_whole_seconds_up() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(2, clock.clone());
        let addr = ip("10.0.0.1");
        assert!(limiter.check(addr).is_ok() && limiter.check(addr).is_ok());
        // Two per minute: the next one in 30 s.
        assert_eq!(limiter.check(addr), Err(30));
        clock.advance(Duration::from_millis(29_500));
        assert_eq!(limiter.check(addr), Err(1));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(bucket_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(bucket_key(ip("192.0.2.1")), ip("192.0.2.1"));
        let limiter = RateLimiter::with_clock(5, FakeRelativeClock::default());
        for i in 0..5u16 {
            let addr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, 1));
            assert!(limiter.check(addr).is_ok());
        }
        assert!(limiter.check(ip("2001:db8:1:2:ffff::9")).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[test]
    fn pruning_forgets_full_buckets_only() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(60, clock.clone());
        for i in 0..1000u32 {
            assert!(limiter.check(IpAddr::from(i.to_be_bytes())).is_ok());
        }
        let busy = ip("10.9.9.9");
        for _ in 0..60 {
            assert!(limiter.check(busy).is_ok());
        }
        assert_eq!(limiter.len(), 1001);
        clock.advance(Duration::from_secs(2));
        limiter.prune();
        assert_eq!(limiter.len(), 1, "only the drained bucket is kept");
        // Two seconds refilled two requests, and the bucket was not reset.
        assert!(limiter.check(busy).is_ok() && limiter.check(busy).is_ok());
        assert!(limiter.check(busy).is_err());
        clock.advance(Duration::from_secs(61));
        limiter.prune();
        assert!(limiter.is_empty());
    }

    #[test]
    fn the_background_pruner_empties_the_map() {
        let clock = FakeRelativeClock::default();
        let limiter = Arc::new(RateLimiter::with_clock(60, clock.clone()));
        for i in 0..100u32 {
            assert!(limiter.check(IpAddr::from(i.to_be_bytes())).is_ok());
        }
        clock.advance(Duration::from_secs(2));
        limiter.spawn_pruner(Duration::from_millis(5)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !limiter.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(limiter.is_empty(), "{} keys left", limiter.len());
    }

    /// A flood of made-up addresses must not slow down everyone else: with 200,000 keys held,
    /// a request costs what it costs with none (the old limiter swept the whole map under one
    /// lock on every request once it held 100,000).
    #[test]
    fn a_full_map_does_not_slow_requests() {
        let limiter = RateLimiter::with_clock(300, FakeRelativeClock::default());
        for i in 0..200_000u32 {
            let _ = limiter.check(IpAddr::from((0x0a00_0000 | i).to_be_bytes()));
        }
        let started = std::time::Instant::now();
        for i in 0..20_000u32 {
            let _ = limiter.check(IpAddr::from((0xc000_0000 | (i % 500)).to_be_bytes()));
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "20,000 checks took {took:?} with 200,000 keys held"
        );
    }
}
