//! jsonwebtoken's crypto provider for the client assertion: RS256 and PS256
//! signing on the `rsa` crate, and nothing else.
//!
//! jsonwebtoken's own `rust_crypto` provider keeps every algorithm it knows
//! reachable from one static (ECDSA P-256/P-384, Ed25519, HMAC, RSA
//! verification, JWK key utilities), so the component linked ~200 KB it never
//! called. This provider is what the assertion needs; anything else is an
//! error, never a panic. It reads the system's randomness (PSS salt, RSA
//! blinding: `transport::SystemRng`), as jsonwebtoken's provider did.

use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256};

use crate::transport::SystemRng;

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        compute_digest: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
    },
};

/// Makes this the process's jsonwebtoken provider (before its first use;
/// later calls do nothing).
pub(super) fn install() {
    static INSTALL: Once = Once::new();
    // Err only if a provider is already installed: in this crate that is
    // this one (no other code here installs one, and no jsonwebtoken call
    // precedes the assertion's).
    INSTALL.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

/// RS256 (PKCS#1 v1.5) or PS256 (PSS, salt = 32 bytes, the digest's length).
struct RsaSha256 {
    key: RsaPrivateKey,
    algorithm: Algorithm,
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if !matches!(algorithm, Algorithm::RS256 | Algorithm::PS256) {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    let key = RsaPrivateKey::from_pkcs1_der(key.as_bytes())
        .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    Ok(Box::new(RsaSha256 {
        key,
        algorithm: *algorithm,
    }))
}

/// The client never verifies a JWT (Entra ID's tokens are opaque to it).
fn verifier(_: &Algorithm, _: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    Err(ErrorKind::UnsupportedAlgorithm.into())
}

impl Signer<Vec<u8>> for RsaSha256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let digest = Sha256::digest(message);
        let signed = if self.algorithm == Algorithm::PS256 {
            self.key
                .sign_with_rng(&mut SystemRng, Pss::new_blinded::<Sha256>(), &digest)
        } else {
            self.key
                .sign_with_rng(&mut SystemRng, Pkcs1v15Sign::new::<Sha256>(), &digest)
        };
        signed.map_err(signature::Error::from_source)
    }
}

impl JwtSigner for RsaSha256 {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::certificate::from_pem;
    use crate::auth::certificate::tests::{CA_CRT, LEAF_CRT, LEAF_KEY, NOW};

    fn key() -> EncodingKey {
        let c = from_pem(&format!("{LEAF_CRT}{LEAF_KEY}{CA_CRT}"), NOW).unwrap();
        EncodingKey::from_rsa_der(c.pkcs1_key())
    }

    #[test]
    fn only_rs256_and_ps256_sign_and_others_are_errors_not_panics() {
        let key = key();
        for algorithm in [Algorithm::RS256, Algorithm::PS256] {
            let s = signer(&algorithm, &key).unwrap();
            assert_eq!(s.algorithm(), algorithm);
            assert_eq!(s.try_sign(b"m").unwrap().len(), 256);
        }
        for algorithm in [
            Algorithm::HS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ] {
            assert!(signer(&algorithm, &key).is_err(), "{algorithm:?}");
        }
        assert!(signer(&Algorithm::RS256, &EncodingKey::from_rsa_der(b"not a key")).is_err());
        assert!(verifier(&Algorithm::RS256, &DecodingKey::from_secret(b"k")).is_err());
        assert!(
            (PROVIDER.key_utils.compute_digest)(b"m", jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .is_err()
        );
    }

    #[test]
    fn rs256_is_deterministic_and_ps256_salts_each_signature() {
        let key = key();
        let sign = |algorithm| signer(&algorithm, &key).unwrap().try_sign(b"m").unwrap();
        assert_eq!(sign(Algorithm::RS256), sign(Algorithm::RS256));
        assert_ne!(sign(Algorithm::PS256), sign(Algorithm::PS256));
    }
}
