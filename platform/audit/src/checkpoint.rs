//! Signed checkpoints of the chain head, and the Ed25519 key that signs them.
//!
//! # Signed message (version 1)
//!
//! A checkpoint signs, with Ed25519, the bytes
//! `str("megalis.audit.checkpoint.v1") ‖ seq (8 bytes BE unsigned) ‖ head_hash (32 bytes) ‖
//! signed_at_us (8 bytes BE signed) ‖ str(key_id) ‖ opt(prev_signature)`, where `str` is a 4-byte
//! big-endian length followed by the bytes and `opt` is `0x00` for none or `0x01` followed by
//! `str` of the bytes (the same conventions as the record encoding in [`crate::record`]).
//! `prev_signature` is the signature of the checkpoint stored just before this one, so the
//! checkpoints form a chain of their own: deleting one from the middle breaks it.
//!
//! The key id is the first 8 bytes of SHA-256(raw 32-byte public key), in lowercase hex.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::record::Hash;

const CHECKPOINT_TAG: &[u8] = b"megalis.audit.checkpoint.v1";

/// A signed statement "the chain had `seq` records and its last hash was `head_hash`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    #[serde(with = "hex_bytes")]
    pub head_hash: Vec<u8>,
    pub signed_at_us: i64,
    pub key_id: String,
    #[serde(with = "opt_hex_bytes")]
    pub prev_signature: Option<Vec<u8>>,
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// The bytes a checkpoint signature covers (see the module documentation).
pub fn checkpoint_message(
    seq: u64,
    head_hash: &[u8],
    signed_at_us: i64,
    key_id: &str,
    prev_signature: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(200);
    put_bytes(&mut m, CHECKPOINT_TAG);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(head_hash);
    m.extend_from_slice(&signed_at_us.to_be_bytes());
    put_bytes(&mut m, key_id.as_bytes());
    match prev_signature {
        None => m.push(0),
        Some(s) => {
            m.push(1);
            put_bytes(&mut m, s);
        }
    }
    m
}

impl Checkpoint {
    fn message(&self) -> Vec<u8> {
        checkpoint_message(
            self.seq,
            &self.head_hash,
            self.signed_at_us,
            &self.key_id,
            self.prev_signature.as_deref(),
        )
    }

    /// Whether the signature is valid for one of `keys` (the one whose id the checkpoint names).
    pub fn check_signature(&self, keys: &[VerifyingKey]) -> SignatureCheck {
        let Some(key) = keys.iter().find(|k| k.key_id() == self.key_id) else {
            return SignatureCheck::UnknownKey;
        };
        // A head hash of the wrong length cannot have come from the log; treat it as forged.
        if self.head_hash.len() != 32 {
            return SignatureCheck::Invalid;
        }
        match UnparsedPublicKey::new(&ED25519, &key.0).verify(&self.message(), &self.signature) {
            Ok(()) => SignatureCheck::Valid,
            Err(_) => SignatureCheck::Invalid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    Invalid,
    UnknownKey,
}

/// An Ed25519 public key that checkpoints are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey([u8; 32]);

impl VerifyingKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let b: [u8; 32] = bytes
            .try_into()
            .map_err(|_| AuditError::InvalidKey("an Ed25519 public key is 32 bytes".into()))?;
        Ok(VerifyingKey(b))
    }

    /// Parses 64 hex digits (the form [`VerifyingKey::to_hex`] prints).
    pub fn from_hex(s: &str) -> Result<Self, AuditError> {
        let bytes = hex::decode(s.trim())
            .map_err(|e| AuditError::InvalidKey(format!("public key is not hex: {e}")))?;
        Self::from_bytes(&bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// First 8 bytes of SHA-256 of the raw public key, in hex.
    pub fn key_id(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.0);
        hex::encode(&d.as_ref()[..8])
    }
}

/// The private key that signs checkpoints. It is kept outside the database (a file in the data
/// directory, or a mounted Kubernetes Secret) so that someone who can rewrite the database cannot
/// re-sign a rewritten chain.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    key_id: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an Ed25519 private key in PKCS#8 DER (v1 as `openssl genpkey -algorithm ed25519
    /// -outform DER` writes it, or v2 with the public key).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, AuditError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| AuditError::InvalidKey(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let key_id = VerifyingKey::from_bytes(pair.public_key().as_ref())?.key_id();
        Ok(SigningKey { pair, key_id })
    }

    /// A new random key, with its PKCS#8 (v2) encoding.
    pub fn generate() -> Result<(Self, Vec<u8>), AuditError> {
        let der = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| AuditError::InvalidKey("random generator failed".into()))?;
        let der = der.as_ref().to_vec();
        Ok((Self::from_pkcs8(&der)?, der))
    }

    /// Loads the key at `path`; fails if it does not exist.
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let der = std::fs::read(path).map_err(|e| AuditError::key_file(path, e))?;
        Self::from_pkcs8(&der).map_err(|e| AuditError::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Loads the key at `path`, or creates one there (mode 0600) if there is none. Safe against a
    /// concurrent creator: the new key is written to a temporary file and hard-linked into place,
    /// which fails if another process got there first, and then that process's key is used.
    pub fn load_or_create(path: &Path) -> Result<Self, AuditError> {
        match std::fs::metadata(path) {
            Ok(_) => return Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AuditError::key_file(path, e)),
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| AuditError::key_file(path, e))?;
        let (key, der) = Self::generate()?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let result = (|| -> std::io::Result<bool> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&der)?;
            f.sync_all()?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {
                    std::fs::File::open(dir)?.sync_all()?;
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        match result {
            Ok(true) => {
                tracing::info!(path = %path.display(), key_id = %key.key_id,
                    "created a new audit checkpoint signing key");
                Ok(key)
            }
            Ok(false) => Self::load(path),
            Err(e) => Err(AuditError::key_file(path, e)),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_bytes(self.pair.public_key().as_ref()).expect("Ed25519 public key")
    }

    /// Signs a checkpoint of the head `(seq, head_hash)`.
    pub fn sign(
        &self,
        seq: u64,
        head_hash: &Hash,
        signed_at_us: i64,
        prev_signature: Option<Vec<u8>>,
    ) -> Checkpoint {
        let msg = checkpoint_message(
            seq,
            head_hash,
            signed_at_us,
            &self.key_id,
            prev_signature.as_deref(),
        );
        Checkpoint {
            seq,
            head_hash: head_hash.to_vec(),
            signed_at_us,
            key_id: self.key_id.clone(),
            prev_signature,
            signature: self.pair.sign(&msg).as_ref().to_vec(),
        }
    }
}

/// Appends one checkpoint as a JSON line to `path` and waits until it is on disk.
pub(crate) fn append_to_file(path: &PathBuf, cp: &Checkpoint) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut line = serde_json::to_vec(cp).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let is_new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)?;
    // One write call per line with O_APPEND: lines from two processes sharing the file (a shared
    // volume) do not interleave.
    f.write_all(&line)?;
    f.sync_data()?;
    if is_new && let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_with_the_right_key_only() {
        let (k, _) = SigningKey::generate().unwrap();
        let (other, _) = SigningKey::generate().unwrap();
        let cp = k.sign(10, &[3; 32], 1_000, None);
        assert_eq!(
            cp.check_signature(&[k.verifying_key()]),
            SignatureCheck::Valid
        );
        assert_eq!(
            cp.check_signature(&[other.verifying_key()]),
            SignatureCheck::UnknownKey
        );
        // Several keys (rotation): the right one is picked by id.
        assert_eq!(
            cp.check_signature(&[other.verifying_key(), k.verifying_key()]),
            SignatureCheck::Valid
        );
    }

    #[test]
    fn every_signed_field_is_covered() {
        let (k, _) = SigningKey::generate().unwrap();
        let keys = [k.verifying_key()];
        let cp = k.sign(10, &[3; 32], 1_000, Some(vec![7; 64]));
        type Change = Box<dyn Fn(&mut Checkpoint)>;
        let changes: Vec<(&str, Change)> = vec![
            ("seq", Box::new(|c| c.seq = 9)),
            ("head hash", Box::new(|c| c.head_hash[0] ^= 1)),
            ("time", Box::new(|c| c.signed_at_us += 1)),
            ("prev signature", Box::new(|c| c.prev_signature = None)),
            (
                "prev signature bytes",
                Box::new(|c| c.prev_signature.as_mut().unwrap()[0] ^= 1),
            ),
            ("signature", Box::new(|c| c.signature[0] ^= 1)),
        ];
        for (name, change) in changes {
            let mut c = cp.clone();
            change(&mut c);
            assert_eq!(c.check_signature(&keys), SignatureCheck::Invalid, "{name}");
        }
    }

    #[test]
    fn json_line_round_trips() {
        let (k, _) = SigningKey::generate().unwrap();
        let cp = k.sign(5, &[1; 32], 42, Some(vec![2; 64]));
        let line = serde_json::to_string(&cp).unwrap();
        assert!(line.contains(&format!("\"head_hash\":\"{}\"", hex::encode([1u8; 32]))));
        assert_eq!(serde_json::from_str::<Checkpoint>(&line).unwrap(), cp);
        let first = k.sign(5, &[1; 32], 42, None);
        let line = serde_json::to_string(&first).unwrap();
        assert!(line.contains("\"prev_signature\":null"), "{line}");
        assert_eq!(serde_json::from_str::<Checkpoint>(&line).unwrap(), first);
    }

    #[test]
    fn key_file_is_created_private_and_then_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit-signing-key.pk8");
        let k1 = SigningKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let k2 = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(k1.verifying_key(), k2.verifying_key());
        assert_eq!(k1.key_id(), k1.verifying_key().key_id());
        assert_eq!(k1.key_id().len(), 16);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["audit-signing-key.pk8"]);
    }

    #[test]
    fn garbage_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pk8");
        std::fs::write(&path, b"not a key").unwrap();
        let err = SigningKey::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("k.pk8"), "{err}");
    }

    #[test]
    fn public_key_hex_round_trips() {
        let (k, _) = SigningKey::generate().unwrap();
        let v = k.verifying_key();
        assert_eq!(VerifyingKey::from_hex(&v.to_hex()).unwrap(), v);
        assert!(VerifyingKey::from_hex("abcd").is_err());
    }
}
