//! The policy engine's reports (ARCHITECTURE.md, "Reports"): pure builders from the
//! store's facts, served by the admin API (and later the pages).

pub mod allocation;
pub mod sheet;
pub mod uploads;
