//! The caps on operator connections: in total and per client. A connection is counted
//! from the moment it is accepted (before any TLS handshake) until it is closed, so a
//! client that connects and says nothing uses up its own share and nobody else's.
//!
//! A client is an IPv4 address or an IPv6 /64: one IPv6 host usually holds a whole
//! /64, and counting its addresses one by one would let it open as many connections as
//! it likes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Who a connection is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 address (IPv4-mapped IPv6 addresses included).
    V4(std::net::Ipv4Addr),
    /// The /64 prefix of an IPv6 address.
    V6Prefix(u64),
}

impl ClientKey {
    /// The key of a peer address.
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6Prefix(prefix_64(v6)),
            },
        }
    }
}

fn prefix_64(v6: Ipv6Addr) -> u64 {
    (v6.to_bits() >> 64) as u64
}

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The listener holds `http.max_connections` already.
    #[error("the operator listener holds its maximum of connections")]
    Total,
    /// This client holds `http.max_connections_per_client` already.
    #[error("this client holds its maximum of operator connections")]
    PerClient,
}

impl Refused {
    /// The `reason` label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerClient => "per_client",
        }
    }
}

/// Counts open connections and admits a new one only within both caps.
#[derive(Debug)]
pub struct ConnectionCaps {
    max_total: u32,
    max_per_client: u32,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: u32,
    per_client: HashMap<ClientKey, u32>,
}

impl ConnectionCaps {
    /// Caps of `max_total` connections, `max_per_client` from one client.
    pub fn new(max_total: u32, max_per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            open: Mutex::new(Open::default()),
        })
    }

    /// Counts a new connection from `ip`, or says which cap it would break. The
    /// returned place is given back when it is dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Place, Refused> {
        let key = ClientKey::of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.per_client.get(&key).copied().unwrap_or(0) >= self.max_per_client {
            return Err(Refused::PerClient);
        }
        if open.total >= self.max_total {
            return Err(Refused::Total);
        }
        open.total += 1;
        *open.per_client.entry(key).or_insert(0) += 1;
        Ok(Place {
            caps: self.clone(),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }

    fn release(&self, key: ClientKey) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_client.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                // Forgotten at once, so the table holds only clients with a connection.
                open.per_client.remove(&key);
            }
        }
    }
}

/// One admitted connection's place under the caps, given back on drop.
#[derive(Debug)]
pub struct Place {
    caps: Arc<ConnectionCaps>,
    key: ClientKey,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.caps.release(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        assert_eq!(
            ClientKey::of(ip("::ffff:10.0.0.1")),
            ClientKey::of(ip("10.0.0.1"))
        );
        assert_ne!(ClientKey::of(ip("10.0.0.1")), ClientKey::of(ip("10.0.0.2")));
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ClientKey::of(ip("2001:db8:1:2::1")),
            ClientKey::of(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn each_cap_holds_and_places_come_back() {
        let caps = ConnectionCaps::new(3, 2);
        let a1 = caps.admit(ip("10.0.0.1")).unwrap();
        let _a2 = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).unwrap_err(), Refused::PerClient);
        let _b1 = caps.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.3")).unwrap_err(), Refused::Total);
        assert_eq!(caps.open(), 3);
        drop(a1);
        assert_eq!(caps.open(), 2);
        let _c1 = caps.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).unwrap_err(), Refused::Total);
    }

    #[test]
    fn a_client_with_no_connection_leaves_no_entry() {
        let caps = ConnectionCaps::new(10, 10);
        let places: Vec<_> = (0..5)
            .map(|n| caps.admit(ip(&format!("10.0.0.{n}"))).unwrap())
            .collect();
        drop(places);
        assert_eq!(caps.open(), 0);
        assert!(caps.open.lock().unwrap().per_client.is_empty());
    }
}
