//! mDNS advertisement of the gateway as `_fieldsync._udp.local.`, with its port and
//! the fleet CA's fingerprint in TXT, so an agent with no configured address can find
//! it on the station's LAN. TLS still authenticates the gateway: discovery only says
//! where to knock.

use mdns_sd::{IfKind, ServiceDaemon, ServiceInfo};

use crate::config::MdnsConfig;

/// The advertised service type.
pub const SERVICE_TYPE: &str = "_fieldsync._udp.local.";

/// TXT key holding the fleet CA fingerprint.
pub const TXT_CA_FINGERPRINT: &str = "ca";

/// TXT key holding the protocol ALPN.
pub const TXT_ALPN: &str = "alpn";

/// Why the advertisement failed.
#[derive(Debug, thiserror::Error)]
#[error("mDNS advertisement: {0}")]
pub struct MdnsError(#[from] mdns_sd::Error);

/// A running advertisement; stops when dropped.
pub struct Advertisement {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Drop for Advertisement {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// Starts advertising the device endpoint's `port`.
pub fn advertise(
    config: &MdnsConfig,
    port: u16,
    ca_fingerprint: &str,
) -> Result<Advertisement, MdnsError> {
    let daemon = ServiceDaemon::new()?;
    if !config.interfaces.is_empty() {
        daemon.disable_interface(IfKind::All)?;
        for name in &config.interfaces {
            daemon.enable_interface(IfKind::Name(name.clone()))?;
        }
    }
    let host = format!("{}.local.", config.instance);
    let properties = [
        (TXT_CA_FINGERPRINT, ca_fingerprint),
        (
            TXT_ALPN,
            std::str::from_utf8(protocol::ALPN).unwrap_or("fieldsync/1"),
        ),
    ];
    let info = ServiceInfo::new(
        SERVICE_TYPE,
        &config.instance,
        &host,
        "",
        port,
        &properties[..],
    )?
    .enable_addr_auto();
    let fullname = info.get_fullname().to_owned();
    daemon.register(info)?;
    tracing::info!(
        service = SERVICE_TYPE,
        port,
        "advertising the gateway over mDNS"
    );
    Ok(Advertisement { daemon, fullname })
}
