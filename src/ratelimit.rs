//! Rate limits (token buckets): per client address for registration and the configuration
//! endpoint, per statement issuer for registration. Buckets live in a bounded moka cache, so a
//! flood of distinct addresses cannot grow memory without bound.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
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

/// The longest a bucket is remembered, and the longest `Retry-After`: a limit whose refill takes
/// longer than a day refills, at the latest, when its bucket is forgotten.
const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// `seconds` as a duration within [1 ms, [`MAX_WAIT`]], whatever the float (a tiny
/// `per_second` makes it huge or infinite, and `Duration::from_secs_f64` panics on those).
fn bounded_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(MAX_WAIT)
        .clamp(Duration::from_millis(1), MAX_WAIT)
}

impl RateLimiter {
    pub fn new(limit: Limit) -> Self {
        // A bucket untouched for as long as a full refill takes is full again: forget it.
        let idle =
            bounded_duration(f64::from(limit.burst) / limit.per_second).max(Duration::from_secs(1));
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
        // A bucket is two plain numbers, consistent whatever a panicking holder was doing: keep
        // limiting with it rather than let a poisoned lock allow everything.
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.limit.per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let wait = (1.0 - bucket.tokens) / self.limit.per_second;
            Decision::Limited(bounded_duration(wait))
        }
    }
}

/// Whole seconds to put in `Retry-After` (RFC 9110 §10.2.3) for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}

/// The key of an address's bucket: IPv4 addresses alone, IPv6 addresses by their first
/// `ipv6_prefix_len` bits, since one subscriber usually holds a whole /64 (RFC 6177 §3) and
/// could otherwise spread its requests over 2^64 buckets.
pub fn address_key(address: IpAddr, ipv6_prefix_len: u8) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6);
                let len = u32::from(ipv6_prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        },
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
    fn extreme_rates_neither_panic_nor_stop_limiting() {
        // values the configuration accepts: any positive finite rate
        for per_second in [1e-20, f64::MIN_POSITIVE, 1e300, f64::MAX] {
            let limiter = RateLimiter::new(Limit {
                burst: 1,
                per_second,
            });
            assert_eq!(limiter.check("a"), Decision::Allowed);
            match limiter.check("a") {
                Decision::Limited(wait) => assert!(wait <= MAX_WAIT),
                // a rate so high that the bucket refilled in the meantime
                Decision::Allowed => assert!(per_second > 1e6),
            }
        }
    }

    #[test]
    fn a_poisoned_bucket_keeps_limiting() {
        let limiter = RateLimiter::new(Limit {
            burst: 1,
            per_second: 0.001,
        });
        assert_eq!(limiter.check("a"), Decision::Allowed);
        let bucket = limiter.buckets.get("a").unwrap();
        let poisoner = bucket.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("a holder panicked");
        })
        .join();
        assert!(bucket.is_poisoned());
        assert!(matches!(limiter.check("a"), Decision::Limited(_)));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a, 64), address_key(b, 64));
        assert_ne!(address_key(a, 64), address_key(other, 64));
        assert_ne!(address_key(a, 128), address_key(b, 128));
        assert_eq!(address_key(a, 0), address_key(other, 0));
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(address_key(v4, 64), v4);
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(address_key(mapped, 64), v4);
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
