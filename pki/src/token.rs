//! Admin bearer tokens: how the first one is made, and how every token is stored.
//!
//! A token is `fst_` followed by 32 random bytes in hex. The prefix makes a leaked
//! token easy to recognise (secret scanners, logs); the gateway stores only
//! [`token_hash`], so a copy of its database does not hand out admin access.

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::PkiError;

/// Prefix of every fieldsync token.
pub const TOKEN_PREFIX: &str = "fst_";

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// Makes a new admin token from the operating system's random number generator.
pub fn generate_admin_token() -> Result<String, PkiError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| PkiError::Randomness {
            what: "the admin token",
            reason: e.to_string(),
        })?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

/// True if `token` has the shape of a token this crate makes (prefix and 64 lowercase
/// hex digits). Lets the gateway refuse obvious garbage before hashing.
pub fn is_well_formed_token(token: &str) -> bool {
    token.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == TOKEN_BYTES * 2
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The form in which a token is stored: SHA-256 of its UTF-8 bytes, lowercase hex.
///
/// The token is hashed exactly as given; callers trim surrounding white space (for
/// example the newline at the end of `admin.token`) before hashing. A plain hash
/// without salt is enough because tokens are 256 random bits, not passwords.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_hex() {
        let a = generate_admin_token().unwrap();
        let b = generate_admin_token().unwrap();
        assert!(is_well_formed_token(&a), "{a}");
        assert_eq!(a.len(), 4 + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn shape_check_refuses_near_misses() {
        let good = format!("fst_{}", "0a".repeat(32));
        assert!(is_well_formed_token(&good));
        assert!(!is_well_formed_token(&good[..good.len() - 1]));
        assert!(!is_well_formed_token(&format!("fsx_{}", "0a".repeat(32))));
        assert!(!is_well_formed_token(&format!("fst_{}", "0A".repeat(32))));
        assert!(!is_well_formed_token(&format!("{good}\n")));
    }

    #[test]
    fn hash_is_sha256_hex_of_the_exact_text() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(token_hash("abc"), token_hash("abc\n"));
    }
}
