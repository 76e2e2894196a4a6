//! The read models (ARCHITECTURE.md, "Reports"): what operators read, built from the
//! store's facts and served alike by the admin API (`api/`, JSON and CSV) and the
//! dashboard (`pages/`, HTML), so a page and its API route cannot disagree. Each takes
//! the handles it reads (the store, the policy, the time), never the gateway's state;
//! building is pure where it can be (allocation, uploads), gathering is here.
//!
//! `api/` and `pages/` both import this layer; neither imports the other.

pub mod allocation;
pub mod audit;
pub mod cases;
pub mod flags;
pub mod fleet;
pub mod sheet;
pub mod uploads;

use store::StoreError;

/// Why a read model cannot be built. Each caller says it its own way (an API error
/// body, an error page).
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// What the operator asked for is not well-formed (an empty case number, a device
    /// id that cannot be one).
    #[error("{0}")]
    Invalid(String),
    /// Nothing matches what the operator asked for.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
