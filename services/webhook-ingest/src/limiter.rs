//! A rate limit on what costs us without earning anything: requests that fail
//! verification, per client address. A correctly signed event is never refused
//! by it (Whereby does not retry a 429); an address over its limit gets 429 for
//! requests that fail, and pays at most a small body's HMAC before that is known.
//!
//! Memory is bounded whatever the number of addresses: two generations of at most
//! `capacity / 2` buckets each; when the young one fills, the old one is dropped.
//! An address dropped that way starts again with a full bucket, which gives an
//! attacker with very many addresses a burst each, never unbounded memory.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Failures an address may have in a burst.
    pub burst: u32,
    /// Failures per second it regains.
    pub per_second: f64,
    /// Addresses tracked at most.
    pub capacity: usize,
}

struct Generations {
    young: HashMap<IpAddr, Bucket>,
    old: HashMap<IpAddr, Bucket>,
}

pub struct FailureLimiter {
    settings: LimitSettings,
    buckets: Mutex<Generations>,
}

impl FailureLimiter {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            buckets: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> Bucket {
        let gained =
            now.saturating_duration_since(bucket.at).as_secs_f64() * self.settings.per_second;
        Bucket {
            tokens: (bucket.tokens + gained).min(f64::from(self.settings.burst)),
            at: now,
        }
    }

    fn with_bucket<T>(&self, address: IpAddr, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut g = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = g
            .young
            .get(&address)
            .copied()
            .or_else(|| g.old.remove(&address));
        let mut bucket = found.map_or(
            Bucket {
                tokens: f64::from(self.settings.burst),
                at: now,
            },
            |b| self.refilled(b, now),
        );
        let out = f(&mut bucket);
        if !g.young.contains_key(&address) && g.young.len() >= (self.settings.capacity / 2).max(1) {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(address, bucket);
        out
    }

    /// Whether `address` is over its limit now (its failures are answered 429).
    pub fn is_limited(&self, address: IpAddr) -> bool {
        self.is_limited_at(address, Instant::now())
    }

    fn is_limited_at(&self, address: IpAddr, now: Instant) -> bool {
        // A look only: an address that never failed has a full bucket and takes no
        // room, so genuine traffic does not push attackers' buckets out.
        let g = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.young
            .get(&address)
            .or_else(|| g.old.get(&address))
            .is_some_and(|b| self.refilled(*b, now).tokens < 1.0)
    }

    /// Counts one failed verification from `address`.
    pub fn failed(&self, address: IpAddr) {
        self.failed_at(address, Instant::now());
    }

    fn failed_at(&self, address: IpAddr, now: Instant) {
        self.with_bucket(address, now, |b| b.tokens = (b.tokens - 1.0).max(0.0));
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        let g = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.young.len() + g.old.len()
    }
}

/// The client's address: from `header` set by a trusted proxy when configured (the
/// `hops`-th entry from the right of a comma-separated list, since a client can
/// put anything on the left), else the peer address.
pub fn client_address(
    header_value: Option<&str>,
    hops: usize,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if let Some(value) = header_value {
        let entries: Vec<&str> = value.split(',').map(str::trim).collect();
        let entry = entries
            .len()
            .checked_sub(hops.max(1))
            .and_then(|i| entries.get(i));
        if let Some(ip) = entry.and_then(|e| e.parse::<IpAddr>().ok()) {
            return Some(ip);
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter(capacity: usize) -> FailureLimiter {
        FailureLimiter::new(LimitSettings {
            burst: 3,
            per_second: 1.0,
            capacity,
        })
    }

    #[test]
    fn an_address_is_limited_after_its_burst_and_recovers_with_time() {
        let l = limiter(100);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(!l.is_limited_at(a, t0));
            l.failed_at(a, t0);
        }
        assert!(l.is_limited_at(a, t0));
        assert!(!l.is_limited_at(b, t0), "another address is not");
        assert!(
            !l.is_limited_at(a, t0 + Duration::from_millis(1100)),
            "one failure regained"
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_million_addresses() {
        let l = limiter(10_000);
        let t0 = Instant::now();
        for i in 0u32..1_000_000 {
            l.failed_at(IpAddr::from(i.to_be_bytes()), t0);
            assert!(l.tracked() <= 10_000);
        }
        assert!(l.tracked() <= 10_000);
    }

    #[test]
    fn the_address_comes_from_the_trusted_hop_only() {
        let peer = Some(IpAddr::from([10, 1, 1, 1]));
        // The proxy appended the real client; the client forged the first entry.
        assert_eq!(
            client_address(Some("6.6.6.6, 203.0.113.9"), 1, peer),
            Some(IpAddr::from([203, 0, 113, 9]))
        );
        assert_eq!(
            client_address(Some("6.6.6.6, 203.0.113.9, 10.0.0.5"), 2, peer),
            Some(IpAddr::from([203, 0, 113, 9]))
        );
        assert_eq!(client_address(Some("garbage"), 1, peer), peer);
        assert_eq!(client_address(None, 1, peer), peer);
        assert_eq!(client_address(Some("203.0.113.9"), 5, peer), peer);
    }
}
