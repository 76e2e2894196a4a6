//! Rebuilds the store when a migration changes: `sqlx::migrate!` embeds the
//! SQL files at compile time, so cargo must know to look at them.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
