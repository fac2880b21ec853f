//! Test certificates for certificate (client assertion) credentials: an RSA
//! 2048 key made with the `rsa` crate, a self-signed X.509 certificate over it
//! made with `rcgen`, and the same pair as PEM files and as a password
//! protected PKCS#12 (`.pfx`) file, which is what people export from a
//! Windows certificate store or Azure Key Vault.
//!
//! [`demo_certificate`] is the certificate registered on
//! [`CERT_CLIENT_ID`](crate::CERT_CLIENT_ID) in [`FakeConfig::default`](crate::FakeConfig).

use crate::ids::IdSource;
use p12_keystore::{Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm};
use p12_keystore::{PrivateKey, PrivateKeyChain};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_RSA_SHA256, SerialNumber,
};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A self-signed RSA certificate with its private key in the usual formats.
#[derive(Clone, PartialEq, Eq)]
pub struct TestCertificate {
    /// The certificate, DER encoded (what an app registration stores).
    pub der: Vec<u8>,
    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pkcs8_pem: String,
    /// The private key as PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`).
    pub key_pkcs1_pem: String,
    /// SHA-1 of [`TestCertificate::der`], upper-case hex: the "Thumbprint"
    /// the Azure portal and Windows show, and connection strings carry.
    pub thumbprint: String,
    /// Key and certificate as PKCS#12, protected with
    /// [`TestCertificate::pfx_password`]: PBES2 (PBKDF2-HMAC-SHA256,
    /// AES-256-CBC) with an HMAC-SHA256 MAC, 2048 iterations each (what
    /// `openssl pkcs12 -export` writes by default), written by the pure-Rust
    /// `p12-keystore` crate. The key bag's friendly name is the common name
    /// and its local key id is the SHA-1 thumbprint.
    pub pfx: Vec<u8>,
    pub pfx_password: String,
}

impl TestCertificate {
    /// The JWT `x5t` header value: base64url (no padding) of the SHA-1 thumbprint.
    pub fn x5t(&self) -> String {
        b64url(&Sha1::digest(&self.der))
    }

    /// The JWT `x5t#S256` header value: base64url of the SHA-256 thumbprint.
    pub fn x5t_s256(&self) -> String {
        b64url(&Sha256::digest(&self.der))
    }

    /// SHA-256 of the certificate, upper-case hex.
    pub fn thumbprint_sha256(&self) -> String {
        upper_hex(&Sha256::digest(&self.der))
    }
}

impl fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificate")
            .field("thumbprint", &self.thumbprint)
            .field("der_len", &self.der.len())
            .field("private_key", &"<redacted>")
            .field("pfx_len", &self.pfx.len())
            .field("pfx_password", &"<redacted>")
            .finish()
    }
}

/// Makes a fresh RSA 2048 key and a self-signed certificate for it, subject
/// and issuer `CN={common_name}`, valid from `not_before` to `not_after`
/// (whole seconds), with a random serial, `digitalSignature` key usage and
/// the client-authentication extended key usage. Panics only if the crypto
/// libraries fail, which they do not for these inputs.
pub fn generate(
    common_name: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> TestCertificate {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
    let key_pkcs8_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 encoding")
        .to_string();
    let key_pkcs8_der = key.to_pkcs8_der().expect("PKCS#8 encoding");
    let key_pkcs1_pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .expect("PKCS#1 encoding")
        .to_string();

    let signer = KeyPair::from_pkcs8_pem_and_sign_algo(&key_pkcs8_pem, &PKCS_RSA_SHA256)
        .expect("rcgen accepts the RSA key");
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.not_before = offset_date_time(not_before);
    params.not_after = offset_date_time(not_after);
    let mut ids = IdSource::new();
    let mut serial = ids.guid().replace('-', "").into_bytes();
    serial.truncate(16);
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .self_signed(&signer)
        .expect("self-signed certificate");
    let der = cert.der().to_vec();
    let thumbprint = sha1_thumbprint(&der);

    let pfx_password = format!("pfx-{}", ids.guid());
    let chain = PrivateKeyChain::new(
        Sha1::digest(&der).to_vec(),
        PrivateKey::from_der(key_pkcs8_der.as_bytes()).expect("PKCS#8 key for PKCS#12"),
        [Certificate::from_der(&der).expect("certificate for PKCS#12")],
    );
    let mut store = KeyStore::new();
    store.add_entry(common_name, KeyStoreEntry::PrivateKeyChain(chain));
    let pfx = store
        .writer(&pfx_password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(2048)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(2048)
        .write()
        .expect("PKCS#12 encoding");

    TestCertificate {
        der,
        cert_pem: cert.pem(),
        key_pkcs8_pem,
        key_pkcs1_pem,
        thumbprint,
        pfx,
        pfx_password,
    }
}

/// The demo app's certificate: `CN=dataverse-wasm demo`, valid from a day
/// ago to a year from now, generated once per process (RSA key generation
/// takes a moment).
pub fn demo_certificate() -> &'static TestCertificate {
    static DEMO: OnceLock<TestCertificate> = OnceLock::new();
    DEMO.get_or_init(|| {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        generate("dataverse-wasm demo", now - day, now + 365 * day)
    })
}

fn offset_date_time(t: SystemTime) -> time::OffsetDateTime {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    time::OffsetDateTime::from_unix_timestamp(secs).expect("certificate time in range")
}

/// SHA-1 of a DER certificate, upper-case hex (the "Thumbprint").
pub(crate) fn sha1_thumbprint(der: &[u8]) -> String {
    upper_hex(&Sha1::digest(der))
}

pub(crate) fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn generated_certificate_is_consistent_in_every_format() {
        let nb = UNIX_EPOCH + Duration::from_secs(1_724_009_603); // 2024-08-18 19:33:23Z
        let na = UNIX_EPOCH + Duration::from_secs(1_881_776_003); // 2029-08-18 19:33:23Z
        let cert = generate("Contoso S2S", nb, na);

        // Thumbprints.
        assert_eq!(cert.thumbprint, upper_hex(&Sha1::digest(&cert.der)));
        assert_eq!(cert.thumbprint.len(), 40);
        assert!(
            cert.thumbprint
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        assert_eq!(cert.x5t().len(), 27);
        assert_eq!(cert.x5t_s256().len(), 43);
        assert_eq!(cert.thumbprint_sha256().len(), 64);

        // The DER is what the PEM holds, and our own X.509 reader sees the validity.
        let pem_der = rustls::pki_types::CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(pem_der.as_ref(), &cert.der[..]);
        let info = crate::entra::x509::parse(&cert.der).unwrap();
        assert_eq!(info.not_before, 1_724_009_603);
        assert_eq!(info.not_after, 1_881_776_003);

        // Both key encodings are the certificate's key.
        let from_cert = RsaPublicKey::from_public_key_der(info.spki).unwrap();
        let pkcs8 = RsaPrivateKey::from_pkcs8_pem(&cert.key_pkcs8_pem).unwrap();
        let pkcs1 = RsaPrivateKey::from_pkcs1_pem(&cert.key_pkcs1_pem).unwrap();
        assert_eq!(pkcs8, pkcs1);
        assert_eq!(RsaPublicKey::from(&pkcs8), from_cert);
        assert!(
            cert.key_pkcs8_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            cert.key_pkcs1_pem
                .starts_with("-----BEGIN RSA PRIVATE KEY-----")
        );

        // The PFX opens with its password (and only with it) and holds the pair.
        let store = KeyStore::from_pkcs12(
            &cert.pfx,
            &cert.pfx_password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "Contoso S2S");
        assert_eq!(chain.certs()[0].as_der(), &cert.der[..]);
        assert_eq!(
            RsaPrivateKey::from_pkcs8_der(chain.key().as_der()).unwrap(),
            pkcs8
        );
        assert!(
            KeyStore::from_pkcs12(&cert.pfx, "wrong", p12_keystore::Pkcs12ImportPolicy::Strict)
                .is_err()
        );

        // Secrets stay out of Debug.
        let debug = format!("{cert:?}");
        assert!(debug.contains(&cert.thumbprint));
        assert!(!debug.contains(&cert.pfx_password));
        assert!(!debug.contains("PRIVATE KEY"));
    }

    /// OpenSSL, when installed, reads the PFX too (an independent PKCS#12 reader).
    #[test]
    fn openssl_reads_the_pfx_when_available() {
        let Ok(out) = std::process::Command::new("openssl")
            .arg("version")
            .output()
        else {
            eprintln!("openssl not installed: skipped");
            return;
        };
        if !out.status.success() {
            return;
        }
        let cert = demo_certificate();
        let dir = std::env::temp_dir().join(format!("fake-pfx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.pfx");
        std::fs::write(&path, &cert.pfx).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["pkcs12", "-in"])
            .arg(&path)
            .args(["-nokeys", "-passin"])
            .arg(format!("pass:{}", cert.pfx_password))
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = String::from_utf8(out.stdout).unwrap();
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(der.as_ref(), &cert.der[..]);
    }

    #[test]
    fn demo_certificate_is_generated_once_and_currently_valid() {
        let a = demo_certificate();
        assert!(std::ptr::eq(a, demo_certificate()));
        let info = crate::entra::x509::parse(&a.der).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(info.not_before < now && now < info.not_after);
        assert!(info.not_after - now > 364 * 86_400);
    }
}
