//! The host bindings (generated from `wit/`), with wasi:http and the WASI
//! interfaces taken from wasmtime-wasi(-http). Generated from
//! `client-signing`, whose imports are `client`'s plus the signer and whose
//! exports are the same: one binding instantiates either component (a
//! linker may define more than a component imports).

wasmtime::component::bindgen!({
    world: "client-signing",
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
