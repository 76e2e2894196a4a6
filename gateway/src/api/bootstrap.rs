//! How operators get their first token: `certs-dev` (or the gateway's first start)
//! writes `admin.token` into the PKI folder, and every start stores that token's hash
//! as the admin token named `admin` unless the hash is already known. A revoked
//! bootstrap token stays revoked; later tokens are made through the API
//! (`provisioning tokens create --role finance`).

use std::path::Path;

use protocol::Millis;

use store::{OperatorTokenError, Store};

/// The name the bootstrap admin token gets.
pub const BOOTSTRAP_TOKEN_NAME: &str = "admin";

/// Seeds the hash of `pki_dir/admin.token`, when that file exists. A file that is not
/// a well-formed token is ignored with a warning (the gateway still serves devices).
pub async fn seed_admin_token(
    store: &Store,
    pki_dir: &Path,
    now: Millis,
) -> Result<(), OperatorTokenError> {
    let path = pki_dir.join(pki::layout::ADMIN_TOKEN_FILE);
    if !path.exists() {
        return Ok(());
    }
    let token = match pki::load_admin_token(pki_dir) {
        Ok(token) if pki::is_well_formed_token(&token) => token,
        Ok(_) => {
            tracing::warn!(path = %path.display(), "admin.token is not a fieldsync token; not seeded");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read admin.token; not seeded");
            return Ok(());
        }
    };
    if store
        .seed_admin_token(BOOTSTRAP_TOKEN_NAME, &pki::token_hash(&token), now)
        .await?
    {
        tracing::info!(path = %path.display(), "seeded the admin token from the PKI folder");
    }
    Ok(())
}
