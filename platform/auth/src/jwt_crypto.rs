//! The process-wide JWT crypto provider: ES256 signed and verified with `ring`, everything else
//! (the algorithms of upstream providers' tokens) with jsonwebtoken's RustCrypto backend.
//!
//! Why our own glue: every API request validates a bearer token once (then the result is cached
//! by token) and every grant signs one; with the pure-Rust P-256 of the RustCrypto backend a
//! check costs about 250 µs and a signature more; `ring`'s assembly P-256 (already our TLS and
//! hashing library) is several times faster. jsonwebtoken has a provider hook for exactly this.

use std::sync::LazyLock;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
    UnparsedPublicKey,
};

/// Signs with a P-256 key given as PKCS#8 (what `oidc::keys` generates with ring and stores);
/// the fixed-length `r ‖ s` signature is the JWS ES256 format.
struct RingEs256Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for RingEs256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for RingEs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// RS256 with ring (RustCrypto's RSA signing is several times slower).
struct RingRs256Signer {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for RingRs256Signer {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut signature)
            .map_err(|_| SignatureError::new())?;
        Ok(signature)
    }
}

impl JwtSigner for RingRs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn signer_factory(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *algorithm == Algorithm::RS256
        && key.family() == AlgorithmFamily::Rsa
        && let Ok(pair) = RsaKeyPair::from_der(key.inner())
    {
        return Ok(Box::new(RingRs256Signer {
            pair,
            rng: SystemRandom::new(),
        }));
    }
    if *algorithm == Algorithm::ES256 && key.family() == AlgorithmFamily::Ec {
        let rng = SystemRandom::new();
        if let Ok(pair) =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.inner(), &rng)
        {
            return Ok(Box::new(RingEs256Signer { pair, rng }));
        }
        // Not PKCS#8 (e.g. a SEC1 key from elsewhere): RustCrypto reads more formats.
    }
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.signer_factory)(algorithm, key)
}

struct RingEs256 {
    /// Uncompressed SEC1 point (0x04 ‖ x ‖ y), as `DecodingKey::from_ec_components` stores it.
    public_key: Vec<u8>,
}

impl Verifier<Vec<u8>> for RingEs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public_key)
            .verify(message, signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingEs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

/// RS256 verification with ring, from the JWK's modulus and exponent.
struct RingRs256 {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl Verifier<Vec<u8>> for RingRs256 {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> std::result::Result<(), SignatureError> {
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
        .map_err(|_| SignatureError::new())
    }
}

impl JwtVerifier for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn verifier_factory(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *algorithm == Algorithm::RS256
        && let jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, e } = key.kind()
    {
        return Ok(Box::new(RingRs256 {
            n: n.clone(),
            e: e.clone(),
        }));
    }
    if *algorithm == Algorithm::ES256 {
        if key.family() != AlgorithmFamily::Ec {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        return Ok(Box::new(RingEs256 {
            public_key: key.as_bytes().to_vec(),
        }));
    }
    (jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.verifier_factory)(algorithm, key)
}

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| {
    let rust_crypto = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
    CryptoProvider {
        signer_factory,
        verifier_factory,
        jwk_utils: rust_crypto.jwk_utils.clone(),
    }
});

/// Installs the provider for the process. Idempotent: the first install wins, and a provider
/// installed by someone else is left in place (it then does the work, correctly if slower).
pub fn install() {
    let provider: &'static CryptoProvider = &PROVIDER;
    let _ = provider.install_default();
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header, Validation};
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    #[test]
    fn es256_tokens_round_trip_match_rustcrypto_and_tampering_fails() {
        install();
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let point = pair.public_key().as_ref();
        let decoding = DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .unwrap();
        let claims = serde_json::json!({"sub": "810001234567", "exp": 4_000_000_000u64});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
        .unwrap();
        let validation = Validation::new(Algorithm::ES256);
        let decoded =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(decoded.claims["sub"], "810001234567");
        // The other implementation agrees: the signature is standard ES256 (r ‖ s).
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let rust_crypto = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        (rust_crypto.verifier_factory)(&Algorithm::ES256, &decoding)
            .unwrap()
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
            .expect("RustCrypto verifies what ring signed");

        // One changed claim, or a signature from another key, is refused.
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"810000000000","exp":4000000000}"#);
        let forged = format!("{head}.{forged_claims}.{signature}");
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&forged, &decoding, &validation).is_err()
        );
        let other = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let by_other = jsonwebtoken::encode(
            &Header::new(Algorithm::ES256),
            &claims,
            &EncodingKey::from_ec_der(other.as_ref()),
        )
        .unwrap();
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&by_other, &decoding, &validation).is_err()
        );
    }
}
