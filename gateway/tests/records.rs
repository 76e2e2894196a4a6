//! Field records over the real device endpoint (QUIC + mTLS on loopback) and the
//! store underneath: chain verification, duplicates, tamper flags, group commit, the
//! case view, the action-kind vocabulary, the two-officer rule, and ack-after-commit.
//! Every test runs on SQLite and, with `FIELDSYNC_TEST_PG` set, on PostgreSQL.

#[path = "records/action_kinds.rs"]
mod action_kinds;
#[path = "records/case_view.rs"]
mod case_view;
#[path = "records/crash.rs"]
mod crash;
#[path = "records/durability.rs"]
mod durability;
#[path = "records/flag_reviews.rs"]
mod flag_reviews;
#[path = "records/group_commit.rs"]
mod group_commit;
#[path = "records/ingest.rs"]
mod ingest;
#[path = "records/stall.rs"]
mod stall;
#[path = "records/store.rs"]
mod store;
#[path = "records/support.rs"]
mod support;
#[path = "records/two_officer.rs"]
mod two_officer;
