//! Finding the gateway when no address is configured: browse mDNS for
//! `_fieldsync._udp.local.` and keep the advertisements whose TXT `ca` fingerprint is
//! this device's fleet CA.
//!
//! The fingerprint only filters out other fleets' gateways on the same LAN; it proves
//! nothing. The gateway is authenticated afterwards, by TLS against the fleet CA, so a
//! forged advertisement can at most make the agent knock on the wrong door.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};

/// The service type the gateway advertises.
pub const SERVICE_TYPE: &str = "_fieldsync._udp.local.";
/// TXT key holding the fleet CA fingerprint.
pub const TXT_CA_FINGERPRINT: &str = "ca";

/// A gateway found on the LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// Its addresses with the advertised port (IPv4 first).
    pub addrs: Vec<SocketAddr>,
    /// The advertised host name, without the trailing dot (`fieldsync-gateway.local`).
    pub host: String,
}

/// Why discovery found nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The mDNS daemon could not start (no multicast-capable interface, ...).
    #[error("mDNS: {0}")]
    Mdns(String),
    /// Nothing answered in time.
    #[error(
        "no fieldsync gateway of this fleet answered on mDNS within {0:?}; set `gateway` in agent.toml"
    )]
    NotFound(Duration),
}

/// Keeps an advertisement when it names our fleet CA and has an address.
pub fn accept(
    host: &str,
    port: u16,
    addresses: impl IntoIterator<Item = IpAddr>,
    ca_txt: Option<&str>,
    our_ca: &str,
) -> Option<Discovered> {
    if !ca_txt.is_some_and(|ca| ca.eq_ignore_ascii_case(our_ca)) || port == 0 {
        return None;
    }
    let ips: BTreeSet<(bool, IpAddr)> =
        addresses.into_iter().map(|ip| (ip.is_ipv6(), ip)).collect();
    if ips.is_empty() {
        return None;
    }
    Some(Discovered {
        addrs: ips
            .into_iter()
            .map(|(_, ip)| SocketAddr::new(ip, port))
            .collect(),
        host: host.trim_end_matches('.').to_owned(),
    })
}

/// Browses for up to `timeout` and returns the first gateway of the fleet whose CA
/// fingerprint is `our_ca`. Blocking (the mDNS daemon runs its own thread): call it
/// from `spawn_blocking`.
pub fn discover_blocking(our_ca: &str, timeout: Duration) -> Result<Discovered, DiscoveryError> {
    let daemon = ServiceDaemon::new().map_err(|e| DiscoveryError::Mdns(e.to_string()))?;
    let events = daemon
        .browse(SERVICE_TYPE)
        .map_err(|e| DiscoveryError::Mdns(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut found = None;
    while let Ok(event) = events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let ServiceEvent::ServiceResolved(info) = event {
            let addresses = info.get_addresses().iter().map(|a| a.to_ip_addr());
            if let Some(d) = accept(
                info.get_hostname(),
                info.get_port(),
                addresses,
                info.get_property_val_str(TXT_CA_FINGERPRINT),
                our_ca,
            ) {
                found = Some(d);
                break;
            }
            tracing::debug!(
                service = info.get_fullname(),
                "ignoring another fleet's gateway"
            );
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    let _ = daemon.shutdown();
    found.ok_or(DiscoveryError::NotFound(timeout))
}

/// [`discover_blocking`] on a blocking thread.
pub async fn discover(our_ca: &str, timeout: Duration) -> Result<Discovered, DiscoveryError> {
    let our_ca = our_ca.to_owned();
    tokio::task::spawn_blocking(move || discover_blocking(&our_ca, timeout))
        .await
        .map_err(|e| DiscoveryError::Mdns(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_fleet_with_an_address_is_kept() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        let ours = accept("gw.local.", 4433, [v6, v4], Some("ABCD"), "abcd").unwrap();
        assert_eq!(ours.host, "gw.local");
        assert_eq!(
            ours.addrs,
            vec![SocketAddr::new(v4, 4433), SocketAddr::new(v6, 4433)],
            "IPv4 first"
        );
        assert!(accept("gw.local.", 4433, [v4], Some("ffff"), "abcd").is_none());
        assert!(accept("gw.local.", 4433, [v4], None, "abcd").is_none());
        assert!(accept("gw.local.", 4433, [], Some("abcd"), "abcd").is_none());
        assert!(accept("gw.local.", 0, [v4], Some("abcd"), "abcd").is_none());
    }
}
