//! Why a baseline could not be measured (its own module so that the baselines'
//! files share it without importing each other).

/// Why a baseline could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// TLS set-up failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// QUIC failed.
    #[error("QUIC: {0}")]
    Quic(String),
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] sqlx::Error),
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
