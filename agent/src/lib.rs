//! The fieldsync device agent, as a library (the CLI and `loadtest` use it).
//!
//! This step has the device's identity (its certificate bundle) and the transport to
//! the gateway; the outbox, sync loop, uploader and discovery land with their issues.

pub mod identity;
pub mod transport;

pub use identity::{DeviceIdentity, IdentityError};
pub use transport::{ClientError, GatewayConnection, GatewayEndpoint};
