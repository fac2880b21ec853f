//! `batch::parse_response`: a `$batch` answer, multipart/mixed with nested
//! change sets. The boundary comes from the `Content-Type` header, so both
//! the header and the body are fuzzed. No panic, no unbounded nesting.

#![no_main]

use dataverse_fuzz::response;
use dataverse_wasm::webapi::batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let answer = response(data);
    if let Ok(items) = batch::parse_response(&answer) {
        for item in items {
            assert!((100..=599).contains(&item.status), "status {}", item.status);
        }
    }
});
