//! The `client` world's host bindings (generated from `wit/`), with wasi:http
//! and the WASI interfaces taken from wasmtime-wasi(-http).

wasmtime::component::bindgen!({
    world: "client",
    path: "../../wit",
    exports: { default: async },
    // The host's signer talks to Key Vault: it awaits the network.
    imports: {
        "dataverse:client/signer.certificate": async,
        "dataverse:client/signer.sign": async,
    },
    with: {
        "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        "wasi:random": wasmtime_wasi::p2::bindings::random,
    },
});
