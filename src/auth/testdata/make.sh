#!/bin/sh
# Regenerates the certificate fixtures of src/auth/certificate.rs and
# src/auth/assertion.rs. Needs the openssl CLI (3.x, with the legacy provider
# for the RC2 PFX). Dates are fixed so the tests can pass a fixed `now`.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/ca.cnf" <<'CNF'
[ca]
default_ca = ca
[ca]
dir = WORK
database = WORK/index.txt
new_certs_dir = WORK
serial = WORK/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
sed -i "s|WORK|$work|g" "$work/ca.cnf"
: > "$work/index.txt"
echo 1000 > "$work/serial"

ca() { # ca EXT START END CSR OUT [-selfsign -keyfile K | -cert C -keyfile K]
  ext=$1 start=$2 end=$3 csr=$4 out=$5; shift 5
  openssl ca -batch -notext -config "$work/ca.cnf" -extensions "$ext" \
    -startdate "$start" -enddate "$end" -in "$csr" -out "$out" "$@" 2>/dev/null
}

# Issuing CA (self-signed root), valid 2025-01-01 .. 2045-01-01.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/ca.key" 2>/dev/null
openssl req -new -key "$work/ca.key" -subj "/CN=Dataverse Test Root" -out "$work/ca.csr"
ca root 20250101000000Z 20450101000000Z "$work/ca.csr" ca.crt.pem -selfsign -keyfile "$work/ca.key"

# The app's key: PKCS#8 and the same key as PKCS#1.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out leaf.key.pem 2>/dev/null
openssl pkey -in leaf.key.pem -traditional -out leaf.pkcs1.key.pem
openssl req -new -key leaf.key.pem -subj "/CN=dataverse-wasm test app" -out "$work/leaf.csr"
# Valid 2025-01-01 .. 2035-01-01, expired (2020 .. 2021), not yet valid (2040 .. 2041).
ca leaf 20250101000000Z 20350101000000Z "$work/leaf.csr" leaf.crt.pem -cert ca.crt.pem -keyfile "$work/ca.key"
ca leaf 20200101000000Z 20210101000000Z "$work/leaf.csr" expired.crt.pem -cert ca.crt.pem -keyfile "$work/ca.key"
ca leaf 20400101000000Z 20410101000000Z "$work/leaf.csr" future.crt.pem -cert ca.crt.pem -keyfile "$work/ca.key"

# A second RSA key that matches none of the certificates.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.key.pem 2>/dev/null

# An EC (P-256) key and certificate.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key.pem 2>/dev/null
openssl req -new -key ec.key.pem -subj "/CN=dataverse-wasm EC app" -out "$work/ec.csr"
ca leaf 20250101000000Z 20350101000000Z "$work/ec.csr" ec.crt.pem -cert ca.crt.pem -keyfile "$work/ca.key"

# PKCS#12, password "correct horse": the OpenSSL 3 / Windows "AES256-SHA256"
# format (PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256, SHA-256 MAC) ...
openssl pkcs12 -export -inkey leaf.key.pem -in leaf.crt.pem -certfile ca.crt.pem \
  -passout "pass:correct horse" -out leaf.pfx
# ... the Windows "TripleDES-SHA1" format ...
openssl pkcs12 -export -inkey leaf.key.pem -in leaf.crt.pem -certfile ca.crt.pem \
  -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -macalg sha1 \
  -passout "pass:correct horse" -out leaf-3des.pfx
# ... and the old OpenSSL default (RC2-40 certificates, 3DES key, SHA-1 MAC).
openssl pkcs12 -export -legacy -inkey leaf.key.pem -in leaf.crt.pem -certfile ca.crt.pem \
  -passout "pass:correct horse" -out leaf-rc2.pfx

# The PKCS#8 key encrypted with the same password (PBES2 AES-256).
openssl pkcs8 -topk8 -in leaf.key.pem -v2 aes-256-cbc -passout "pass:correct horse" -out leaf.enc.key.pem

# SHA-1 thumbprints, for reference.
for c in leaf expired future ec ca; do
  printf '%s %s\n' "$c" "$(openssl x509 -in $c.crt.pem -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')"
done > thumbprints.txt
