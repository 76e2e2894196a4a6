//! The equipment manager's toolkit over the fieldsync gateway's admin API: the HTTP
//! client, reading operators' CSV files with line numbers, and output as tables or
//! JSON. The `provisioning` binary (`main.rs`, `cli.rs`) is a thin layer on these.

pub mod client;
pub mod csvfile;
pub mod output;
