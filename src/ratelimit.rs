//! Rate limits (token buckets): per client address for registration and the configuration
//! endpoint, per statement issuer for registration. Buckets live in a bounded moka cache, so a
//! flood of distinct addresses cannot grow memory without bound.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::Limit;

/// The outcome of taking one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Allowed,
    /// Refused; a token is available again after this long (`Retry-After`).
    Limited(Duration),
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of one limit, by key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Limit,
    buckets: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
}

impl RateLimiter {
    pub fn new(limit: Limit) -> Self {
        // A bucket untouched for as long as a full refill takes is full again: forget it.
        let idle = Duration::from_secs_f64((f64::from(limit.burst) / limit.per_second).max(1.0));
        RateLimiter {
            limit,
            buckets: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(idle)
                .build(),
        }
    }

    pub fn check(&self, key: &str) -> Decision {
        let burst = f64::from(self.limit.burst);
        let bucket = self.buckets.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }))
        });
        let Ok(mut bucket) = bucket.lock() else {
            return Decision::Allowed;
        };
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let wait = (1.0 - bucket.tokens) / self.limit.per_second;
            Decision::Limited(Duration::from_secs_f64(wait.max(0.001)))
        }
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut address = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                address = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            // garbage in the header: stop at the last address we could read
            Err(_) => break,
        }
    }
    Some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_after_the_burst() {
        let limiter = RateLimiter::new(Limit {
            burst: 3,
            per_second: 0.001,
        });
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Decision::Allowed);
        }
        assert!(matches!(limiter.check("a"), Decision::Limited(_)));
        assert_eq!(limiter.check("b"), Decision::Allowed);
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let header = "198.51.100.1, 203.0.113.7";
        assert_eq!(
            client_address(Some(client), Some(header), &[proxy]),
            Some(client)
        );
        assert_eq!(
            client_address(Some(proxy), Some(header), &[proxy]),
            Some(client)
        );
        assert_eq!(client_address(Some(proxy), None, &[proxy]), Some(proxy));
        assert_eq!(
            client_address(Some(proxy), Some("garbage"), &[proxy]),
            Some(proxy)
        );
    }
}
