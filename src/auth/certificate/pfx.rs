//! PKCS#12 (RFC 7292) reading: password integrity (HMAC with the PKCS#12
//! KDF), PBES2 (PBKDF2 + AES-CBC: OpenSSL 3, Windows "AES256-SHA256") and
//! the legacy PKCS#12 PBE ciphers (3DES, RC2: Windows "TripleDES-SHA1",
//! `openssl -legacy`).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyInit, KeyIvInit};
use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use der::asn1::{AnyRef, ObjectIdentifier, OctetString};
use der::{Decode, Sequence, Tag, TagNumber, Tagged};
use hmac::{Hmac, Mac};
use pkcs12::cert_type::CertBag;
use pkcs12::kdf::{Pkcs12KeyType, derive_key};
use pkcs12::mac_data::MacData;
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::Pfx;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

/// KDF rounds above this are refused: a hostile file must not hang us.
/// OpenSSL writes 2048, Windows 2000.
const MAX_ITERATIONS: u32 = 1_000_000;
/// Nested SafeContents bags followed.
const MAX_DEPTH: usize = 4;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBMAC1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.14");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

#[derive(Default)]
pub(super) struct Contents {
    pub certs: Vec<Vec<u8>>,
    /// PKCS#8 PrivateKeyInfo DER.
    pub keys: Vec<Zeroizing<Vec<u8>>>,
}

pub(super) enum OpenError {
    /// Not PKCS#12 at all: the caller tries other formats.
    NotPkcs12(String),
    Unreadable(String),
    WrongPassword,
}

fn malformed(what: &str) -> impl Fn(der::Error) -> OpenError + '_ {
    move |e| OpenError::Unreadable(format!("malformed {what} ({e})"))
}

fn unsupported(what: String) -> OpenError {
    OpenError::Unreadable(format!("{what} is not supported"))
}

/// `SafeBag`: pkcs12 0.1's own type keeps the `[0]` wrapper in its value.
/// Here `wrapper` is the `[0] EXPLICIT` element: its contents are the bag
/// value's DER, as it was read (re-encoding would link der's encoders).
#[derive(Sequence)]
struct Bag<'a> {
    id: ObjectIdentifier,
    wrapper: AnyRef<'a>,
    #[asn1(optional = "true")]
    _attributes: Option<AnyRef<'a>>,
}

impl<'a> Bag<'a> {
    /// The DER of the bag's value.
    fn value(&self) -> der::Result<&'a [u8]> {
        let explicit_0 = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N0,
        };
        self.wrapper.tag().assert_eq(explicit_0)?;
        Ok(self.wrapper.value())
    }
}

pub(super) fn open(bytes: &[u8], password: &str) -> Result<Contents, OpenError> {
    let pfx = Pfx::from_der(bytes).map_err(|e| OpenError::NotPkcs12(e.to_string()))?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(unsupported(
            "public-key integrity mode (a signed PKCS#12)".into(),
        ));
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(malformed("authenticated safe"))?;
    let auth_safe = auth_safe.as_bytes();
    let passwords = bmp_passwords(password);
    let bmp = match &pfx.mac_data {
        Some(mac) => verify_mac(mac, auth_safe, &passwords)?,
        None => &passwords[0],
    };
    let infos = Vec::<ContentInfo>::from_der(auth_safe).map_err(malformed("authenticated safe"))?;
    let mut contents = Contents::default();
    for info in infos {
        if info.content_type == ID_DATA {
            let data = info
                .content
                .decode_as::<OctetString>()
                .map_err(malformed("safe contents"))?;
            read_bags(data.as_bytes(), password, bmp, &mut contents, 0)?;
        } else if info.content_type == ID_ENCRYPTED_DATA {
            let data = info
                .content
                .decode_as::<EncryptedData>()
                .map_err(malformed("encrypted safe contents"))?;
            let Some(ciphertext) = &data.enc_content_info.encrypted_content else {
                continue;
            };
            let plain = decrypt(
                &data.enc_content_info.content_enc_alg,
                ciphertext.as_bytes(),
                password,
                bmp,
            )?;
            read_bags(&plain, password, bmp, &mut contents, 0)?;
        }
        // Enveloped (public-key privacy) contents are not for us.
    }
    Ok(contents)
}

/// An `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo) → PKCS#8 DER.
pub(super) fn decrypt_private_key(
    der: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let info = EncryptedPrivateKeyInfo::from_der(der)
        .map_err(|e| OpenError::Unreadable(format!("malformed ({e})")))?;
    let passwords = bmp_passwords(password);
    decrypt(
        &info.encryption_algorithm,
        info.encrypted_data.as_bytes(),
        password,
        &passwords[0],
    )
}

fn read_bags(
    safe_contents: &[u8],
    password: &str,
    bmp: &[u8],
    contents: &mut Contents,
    depth: usize,
) -> Result<(), OpenError> {
    let bags = Vec::<Bag>::from_der(safe_contents).map_err(malformed("safe contents"))?;
    for bag in bags {
        let value = bag.value().map_err(malformed("safe bag"))?;
        match bag.id {
            pkcs12::PKCS_12_CERT_BAG_OID => {
                let cert = CertBag::from_der(value).map_err(malformed("certificate bag"))?;
                if cert.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
                    contents.certs.push(cert.cert_value.as_bytes().to_vec());
                }
            }
            pkcs12::PKCS_12_KEY_BAG_OID => contents.keys.push(Zeroizing::new(value.to_vec())),
            pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
                let info = EncryptedPrivateKeyInfo::from_der(value)
                    .map_err(malformed("shrouded key bag"))?;
                let der = decrypt(
                    &info.encryption_algorithm,
                    info.encrypted_data.as_bytes(),
                    password,
                    bmp,
                )?;
                contents.keys.push(der);
            }
            pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID if depth < MAX_DEPTH => {
                read_bags(value, password, bmp, contents, depth + 1)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The password as PKCS#12 wants it: UTF-16BE with a NUL terminator. An
/// empty password is also tried without the terminator, as OpenSSL does.
fn bmp_passwords(password: &str) -> Vec<Zeroizing<Vec<u8>>> {
    let mut bmp = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        bmp.extend_from_slice(&unit.to_be_bytes());
    }
    bmp.extend_from_slice(&[0, 0]);
    if password.is_empty() {
        vec![bmp, Zeroizing::new(Vec::new())]
    } else {
        vec![bmp]
    }
}

fn rounds(iterations: i64) -> Result<i32, OpenError> {
    match i32::try_from(iterations) {
        Ok(n) if n >= 1 && n as u32 <= MAX_ITERATIONS => Ok(n),
        _ => Err(OpenError::Unreadable(format!(
            "an iteration count of {iterations} is outside 1..={MAX_ITERATIONS}"
        ))),
    }
}

/// Checks the HMAC over the authenticated safe; returns the password form
/// that verified it.
fn verify_mac<'p>(
    mac_data: &MacData,
    data: &[u8],
    passwords: &'p [Zeroizing<Vec<u8>>],
) -> Result<&'p [u8], OpenError> {
    let rounds = rounds(mac_data.iterations.into())?;
    let salt = mac_data.mac_salt.as_bytes();
    let expected = mac_data.mac.digest.as_bytes();
    let oid = mac_data.mac.algorithm.oid;
    macro_rules! verifies {
        ($digest:ty, $pass:expr) => {{
            let key = Zeroizing::new(derive_key::<$digest>(
                $pass,
                salt,
                Pkcs12KeyType::Mac,
                rounds,
                <$digest as sha2::Digest>::output_size(),
            ));
            let mut mac = <Hmac<$digest> as KeyInit>::new_from_slice(&key)
                .map_err(|_| OpenError::Unreadable("bad MAC key".into()))?;
            mac.update(data);
            mac.verify_slice(expected).is_ok()
        }};
    }
    for pass in passwords {
        let ok = if oid == SHA1 {
            verifies!(Sha1, pass)
        } else if oid == SHA256 {
            verifies!(Sha256, pass)
        } else if oid == SHA384 {
            verifies!(Sha384, pass)
        } else if oid == SHA512 {
            verifies!(Sha512, pass)
        } else if oid == PBMAC1 {
            return Err(unsupported(
                "PBMAC1 integrity (openssl -pbmac1_pbkdf2); export without it".into(),
            ));
        } else {
            return Err(unsupported(format!("MAC digest {oid}")));
        };
        if ok {
            return Ok(pass);
        }
    }
    Err(OpenError::WrongPassword)
}

enum LegacyCipher {
    TripleDes3,
    TripleDes2,
    Rc2 { key_len: usize },
}

/// Decrypts PBES2 or PKCS#12-PBE data. Padding errors mean a wrong password.
fn decrypt(
    algorithm: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &str,
    bmp: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let cipher = match algorithm.oid {
        PBES2 => return decrypt_pbes2(algorithm, ciphertext, password),
        pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => LegacyCipher::TripleDes3,
        pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC => LegacyCipher::TripleDes2,
        pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => LegacyCipher::Rc2 { key_len: 16 },
        pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => LegacyCipher::Rc2 { key_len: 5 },
        other => return Err(unsupported(format!("encryption algorithm {other}"))),
    };
    let params = algorithm
        .parameters
        .as_ref()
        .ok_or_else(|| OpenError::Unreadable("PBE parameters are missing".into()))?
        .decode_as::<Pkcs12PbeParams>()
        .map_err(malformed("PBE parameters"))?;
    let rounds = rounds(params.iterations.into())?;
    let salt = params.salt.as_bytes();
    let key_len = match cipher {
        LegacyCipher::TripleDes3 => 24,
        LegacyCipher::TripleDes2 => 16,
        LegacyCipher::Rc2 { key_len } => key_len,
    };
    let mut key = Zeroizing::new(derive_key::<Sha1>(
        bmp,
        salt,
        Pkcs12KeyType::EncryptionKey,
        rounds,
        key_len,
    ));
    if let LegacyCipher::TripleDes2 = cipher {
        // Two-key 3DES is three-key 3DES with K3 = K1: one cipher to link.
        let k1 = key[..8].to_vec();
        key.extend_from_slice(&k1);
    }
    let iv = derive_key::<Sha1>(bmp, salt, Pkcs12KeyType::Iv, rounds, 8);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let bad_key = |_| OpenError::Unreadable("bad cipher key length".into());
    let plain_len = match cipher {
        LegacyCipher::TripleDes3 | LegacyCipher::TripleDes2 => {
            cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                .map_err(bad_key)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map(|p| p.len())
        }
        LegacyCipher::Rc2 { key_len } => {
            let rc2 = rc2::Rc2::new_with_eff_key_len(&key, key_len * 8);
            cbc::Decryptor::inner_iv_slice_init(rc2, &iv)
                .map_err(bad_key)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map(|p| p.len())
        }
    }
    .map_err(|_| OpenError::WrongPassword)?;
    buf.truncate(plain_len);
    Ok(buf)
}

fn decrypt_pbes2(
    algorithm: &AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    // The caller matched the PBES2 OID; its parameters are read where they
    // lie (re-encoding the AlgorithmIdentifier would link der's encoders).
    let params = algorithm
        .parameters
        .as_ref()
        .map(AnyRef::from)
        .ok_or_else(|| Tag::OctetString.value_error())
        .and_then(pkcs5::pbes2::Parameters::try_from)
        .map_err(|e| unsupported(format!("this PBES2 variant ({e})")))?;
    match params.kdf.pbkdf2() {
        Some(pbkdf2) => {
            rounds(pbkdf2.iteration_count.into())?;
        }
        None => return Err(unsupported("a KDF other than PBKDF2".into())),
    }
    // PBES2 takes the password's UTF-8 bytes, unlike the PKCS#12 KDF.
    params
        .decrypt(password.as_bytes(), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| OpenError::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::certificate::tests::{LEAF_CRT, LEAF_KEY};
    use cbc::cipher::BlockEncryptMut;
    use der::Encode;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let len = content.len();
        let mut out = match len {
            0..=127 => vec![tag, len as u8],
            128..=255 => vec![tag, 0x81, len as u8],
            _ => vec![tag, 0x82, (len >> 8) as u8, len as u8],
        };
        out.extend_from_slice(content);
        out
    }

    fn bag(id: ObjectIdentifier, value: &[u8], attributes: bool) -> Vec<u8> {
        let mut fields = [id.to_der().unwrap(), tlv(0xa0, value)].concat();
        if attributes {
            fields.extend(tlv(0x31, &[]));
        }
        tlv(0x30, &fields)
    }

    /// Unencrypted key bags, and certificate bags inside a nested
    /// SafeContents bag, give their DER as it is in the file.
    #[test]
    fn key_bags_and_nested_bags_are_read() {
        let key = pem::parse(LEAF_KEY).unwrap().into_contents();
        let cert = pem::parse(LEAF_CRT).unwrap().into_contents();
        let cert_bag = tlv(
            0x30,
            &[
                pkcs12::PKCS_12_X509_CERT_OID.to_der().unwrap(),
                tlv(0xa0, &tlv(0x04, &cert)),
            ]
            .concat(),
        );
        let nested = tlv(0x30, &bag(pkcs12::PKCS_12_CERT_BAG_OID, &cert_bag, true));
        let safe_contents = tlv(
            0x30,
            &[
                bag(pkcs12::PKCS_12_KEY_BAG_OID, &key, false),
                bag(pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID, &nested, false),
            ]
            .concat(),
        );
        let mut contents = Contents::default();
        assert!(read_bags(&safe_contents, "", &[], &mut contents, 0).is_ok());
        assert_eq!(contents.certs, vec![cert]);
        assert_eq!(contents.keys.len(), 1);
        assert_eq!(*contents.keys[0], key);

        // A bag value outside its [0] wrapper is malformed.
        let unwrapped = tlv(
            0x30,
            &[pkcs12::PKCS_12_KEY_BAG_OID.to_der().unwrap(), key.clone()].concat(),
        );
        let result = read_bags(&tlv(0x30, &unwrapped), "", &[], &mut Contents::default(), 0);
        assert!(matches!(result, Err(OpenError::Unreadable(_))));
    }

    /// Data encrypted as PKCS#12 `pbeWithSHAAnd2-KeyTripleDES-CBC` does (two
    /// keys: E(K1) D(K2) E(K1)), decrypted by the three-key cipher.
    #[test]
    fn two_key_3des_bags_decrypt() {
        let (password, salt, rounds) = ("pw", [7u8; 8], 2048);
        let bmp = &bmp_passwords(password)[0];
        let key = derive_key::<Sha1>(bmp, &salt, Pkcs12KeyType::EncryptionKey, rounds, 16);
        let iv = derive_key::<Sha1>(bmp, &salt, Pkcs12KeyType::Iv, rounds, 8);
        let plain = b"a private key, or near enough".to_vec();
        let mut buf = plain.clone();
        buf.resize(plain.len() + 8, 0);
        let ciphertext = cbc::Encryptor::<des::TdesEde2>::new_from_slices(&key, &iv)
            .unwrap()
            .encrypt_padded_mut::<Pkcs7>(&mut buf, plain.len())
            .unwrap()
            .to_vec();
        let params = Pkcs12PbeParams {
            salt: OctetString::new(salt.to_vec()).unwrap(),
            iterations: rounds,
        };
        let algorithm = AlgorithmIdentifierOwned {
            oid: pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC,
            parameters: Some(der::asn1::Any::encode_from(&params).unwrap()),
        };
        let decrypted = decrypt(&algorithm, &ciphertext, password, bmp)
            .ok()
            .unwrap();
        assert_eq!(*decrypted, plain);
    }
}
