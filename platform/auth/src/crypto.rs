//! Small cryptographic helpers: random tokens and their stored hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// A random token of 32 bytes (256 bits), URL-safe base64: session ids, codes, refresh tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 hex of a high-entropy secret. Random tokens need no slow hash: guessing one is as
/// hard as guessing 256 random bits, so the database holds only this digest.
pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// PKCE S256 (RFC 7636 §4.6): BASE64URL(SHA256(ASCII(code_verifier))).
pub fn pkce_s256(verifier: &str) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_an_independent_computation() {
        // Computed with Python's hashlib and base64 (urlsafe, padding stripped).
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB0unH4WUnVbG7TlNTq5wL8HsqmEIw"),
            "xdaQoELc2tUt_2hV50NTkMy6UXPJEFyFLMHxrEWZ6Cw"
        );
    }

    #[test]
    fn tokens_are_distinct_and_hashes_stable() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert!(constant_time_eq(&a, &a.clone()) && !constant_time_eq(&a, &b));
    }
}
