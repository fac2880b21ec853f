// The `dataverse:client/signer` import for Node: this example holds no key
// for a certificate in Key Vault (`KeyVaultUrl`), so it answers the way a
// host without a signer does; every other credential never calls it. A
// Node host that signs with Key Vault would call its sign endpoint here
// (e.g. @azure/keyvault-keys' CryptographyClient.sign("RS256", digest)).
// A thrown { payload } is the WIT `err` value (jco's convention).
const notConfigured = () => {
  throw {
    payload: {
      tag: "not-configured",
      val: "this Node host has no signer configured: a certificate whose key stays in Key Vault needs one (examples/node/signer.mjs)",
    },
  };
};

export function certificate(_keyId) {
  notConfigured();
}

export function sign(_keyId, _algorithm, _digest) {
  notConfigured();
}
