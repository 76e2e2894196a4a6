//! Operator bearer tokens: who may use the admin API, each with exactly one role.
//!
//! Only the SHA-256 of a token is stored (`pki::token_hash`), so a copy of the
//! database grants nothing. A request's token is hashed and looked up by that hash;
//! the stored hash is then compared with the computed one in constant time. A revoked
//! token stays in the table (so its name is never reused and the audit log still
//! resolves) but is never found by [`Store::operator_by_token_hash`].

use std::fmt;
use std::str::FromStr;

use protocol::Millis;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::rows::{convert_all, non_empty};
use super::tx::WriteTx;
use super::{Store, StoreError};

/// Audit action words of this module.
pub mod operator_actions {
    /// An operator token was created.
    pub const TOKEN_CREATED: &str = "operator_token_created";
    /// An operator token was revoked.
    pub const TOKEN_REVOKED: &str = "operator_token_revoked";
}

/// The role a token carries (ISSUE 7): what its holder may do through the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Everything, including tokens.
    Admin,
    /// Enrolls, assigns, suspends and revokes devices; keeps agencies and the roster.
    EquipmentManager,
    /// Reads the allocation report and its trend.
    Finance,
    /// Reads reports, the audit log and (later) case content.
    Supervisor,
}

impl OperatorRole {
    /// Every role, in declaration order.
    pub const ALL: [OperatorRole; 4] = [
        OperatorRole::Admin,
        OperatorRole::EquipmentManager,
        OperatorRole::Finance,
        OperatorRole::Supervisor,
    ];

    /// The stable spelling used in the store, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Admin => "admin",
            OperatorRole::EquipmentManager => "equipment_manager",
            OperatorRole::Finance => "finance",
            OperatorRole::Supervisor => "supervisor",
        }
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role; expected admin, equipment_manager, finance or supervisor")]
pub struct UnknownRole(pub String);

impl FromStr for OperatorRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        let word = s.trim().to_ascii_lowercase().replace('-', "_");
        OperatorRole::ALL
            .into_iter()
            .find(|r| r.as_str() == word)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A stored operator token (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorToken {
    /// Store-assigned id.
    pub id: i64,
    /// Unique name: who holds it ("alice", "finance-office"); the audit actor.
    pub name: String,
    /// Its one role.
    pub role: OperatorRole,
    /// When it was made.
    pub created_at: Millis,
    /// Who made it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Millis>,
}

#[derive(sqlx::FromRow)]
struct RawToken {
    id: i64,
    name: String,
    role: String,
    token_hash: String,
    created_at: i64,
    created_by: String,
    revoked_at: Option<i64>,
}

impl TryFrom<RawToken> for OperatorToken {
    type Error = StoreError;
    fn try_from(r: RawToken) -> Result<Self, StoreError> {
        Ok(OperatorToken {
            id: r.id,
            role: r
                .role
                .parse()
                .map_err(|e| StoreError::corrupt("operator role", e))?,
            name: r.name,
            created_at: r.created_at,
            created_by: r.created_by,
            revoked_at: r.revoked_at,
        })
    }
}

const SELECT_TOKEN: &str =
    "SELECT id, name, role, token_hash, created_at, created_by, revoked_at FROM operator_tokens";

/// Why an operator token cannot be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum OperatorTokenError {
    /// Token names are unique (they are the audit actor).
    #[error("an operator token named {0:?} exists already")]
    DuplicateName(String),
    /// The same secret was registered before.
    #[error("this token is already registered")]
    DuplicateToken,
    /// No token has this name.
    #[error("no operator token is named {0:?}")]
    UnknownName(String),
    /// The token was revoked before.
    #[error("operator token {0:?} is already revoked")]
    AlreadyRevoked(String),
    /// A hash that is not 64 lowercase hex digits.
    #[error("a token hash must be 64 lowercase hex digits")]
    BadHash,
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OperatorTokenError {
    fn from(e: sqlx::Error) -> Self {
        OperatorTokenError::Store(e.into())
    }
}

/// Checks a token hash's shape: 64 lowercase hex digits.
fn check_hash(hash: &str) -> Result<(), OperatorTokenError> {
    if hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(OperatorTokenError::BadHash)
    }
}

impl WriteTx {
    async fn token_where(
        &mut self,
        clause: &str,
        key: &str,
    ) -> Result<Option<RawToken>, StoreError> {
        Ok(on_tx!(self, c => {
            sqlx::query_as(&format!("{SELECT_TOKEN} WHERE {clause} = $1"))
                .bind(key)
                .fetch_optional(&mut *c)
                .await?
        }))
    }

    async fn insert_token(
        &mut self,
        name: &str,
        role: OperatorRole,
        hash: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<OperatorToken, StoreError> {
        let raw: RawToken = on_tx!(self, c => {
            sqlx::query_as(
                "INSERT INTO operator_tokens (name, role, token_hash, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id, name, role, token_hash, created_at, created_by, revoked_at",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(hash)
            .bind(now)
            .bind(actor)
            .fetch_one(&mut *c)
            .await?
        });
        let token = OperatorToken::try_from(raw)?;
        let detail = json!({ "role": role.as_str(), "id": token.id, "reason": reason });
        self.append_audit(
            actor,
            operator_actions::TOKEN_CREATED,
            name,
            &detail.to_string(),
            now,
        )
        .await?;
        Ok(token)
    }
}

impl Store {
    /// Stores a new token's hash under a unique name with one role, audited with who
    /// made it and why. The caller made the token and shows it once.
    pub async fn create_operator_token(
        &self,
        name: &str,
        role: OperatorRole,
        token_hash: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<OperatorToken, OperatorTokenError> {
        non_empty("token name", name)?;
        check_hash(token_hash)?;
        let mut tx = self.write().await?;
        if tx.token_where("name", name).await?.is_some() {
            return Err(OperatorTokenError::DuplicateName(name.to_owned()));
        }
        if tx.token_where("token_hash", token_hash).await?.is_some() {
            return Err(OperatorTokenError::DuplicateToken);
        }
        let token = tx
            .insert_token(name, role, token_hash, actor, reason, now)
            .await?;
        self.commit(tx).await?;
        Ok(token)
    }

    /// Seeds the first admin token (from the PKI folder's `admin.token`) at start:
    /// stores its hash as the admin token `name` unless that hash is already known.
    /// Returns true when it was added. A token of that hash that was revoked stays
    /// revoked: seeding never brings a revoked token back.
    pub async fn seed_admin_token(
        &self,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<bool, OperatorTokenError> {
        check_hash(token_hash)?;
        let mut tx = self.write().await?;
        if tx.token_where("token_hash", token_hash).await?.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut unique = name.to_owned();
        let mut n = 1;
        while tx.token_where("name", &unique).await?.is_some() {
            n += 1;
            unique = format!("{name}-{n}");
        }
        tx.insert_token(
            &unique,
            OperatorRole::Admin,
            token_hash,
            "gateway",
            "bootstrap: admin.token in the PKI folder",
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// The live (not revoked) token with this hash, if any: the check made on every
    /// admin API request, so a revoked token fails on its very next request.
    pub async fn operator_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<OperatorToken>, StoreError> {
        let raw: Option<RawToken> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!(
                "{SELECT_TOKEN} WHERE token_hash = $1 AND revoked_at IS NULL"
            ))
            .bind(token_hash)
            .fetch_optional(p)
            .await?
        });
        let Some(raw) = raw else { return Ok(None) };
        // The index lookup found it; compare the full hashes in constant time anyway,
        // so no code path depends on how much of a guessed hash matched.
        if !bool::from(raw.token_hash.as_bytes().ct_eq(token_hash.as_bytes())) {
            return Ok(None);
        }
        OperatorToken::try_from(raw).map(Some)
    }

    /// Revokes a token by name, audited with who and why. Revoking a revoked token is
    /// refused, so a typo in a name is never silently "done".
    pub async fn revoke_operator_token(
        &self,
        name: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<OperatorToken, OperatorTokenError> {
        non_empty("reason", reason)?;
        let mut tx = self.write().await?;
        let Some(raw) = tx.token_where("name", name).await? else {
            return Err(OperatorTokenError::UnknownName(name.to_owned()));
        };
        let before = OperatorToken::try_from(raw)?;
        if before.revoked_at.is_some() {
            return Err(OperatorTokenError::AlreadyRevoked(name.to_owned()));
        }
        on_tx!(tx, c => {
            sqlx::query("UPDATE operator_tokens SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(before.id)
                .execute(&mut *c)
                .await?;
        });
        let detail = json!({ "role": before.role.as_str(), "reason": reason });
        tx.append_audit(
            actor,
            operator_actions::TOKEN_REVOKED,
            name,
            &detail.to_string(),
            now,
        )
        .await?;
        self.commit(tx).await?;
        Ok(OperatorToken {
            revoked_at: Some(now),
            ..before
        })
    }

    /// Every token (revoked ones too), by name.
    pub async fn list_operator_tokens(&self) -> Result<Vec<OperatorToken>, StoreError> {
        let raw: Vec<RawToken> = on_pool!(self.db(), p => {
            sqlx::query_as(&format!("{SELECT_TOKEN} ORDER BY name")).fetch_all(p).await?
        });
        convert_all(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_accept_dashes() {
        for role in OperatorRole::ALL {
            assert_eq!(role.as_str().parse::<OperatorRole>().unwrap(), role);
        }
        assert_eq!(
            "equipment-manager".parse::<OperatorRole>().unwrap(),
            OperatorRole::EquipmentManager
        );
        assert!("root".parse::<OperatorRole>().is_err());
    }

    #[test]
    fn hashes_are_checked() {
        assert!(check_hash(&"a".repeat(64)).is_ok());
        assert!(check_hash(&"A".repeat(64)).is_err());
        assert!(check_hash("abc").is_err());
    }
}
