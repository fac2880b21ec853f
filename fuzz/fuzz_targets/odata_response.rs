//! What Dataverse answers a Web API call: a collection page, a single row,
//! WhoAmI, a created row's id, an error, `Retry-After` and the throttling
//! codes. All read the same (status, headers, body); none may panic.

#![no_main]

use dataverse_fuzz::response;
use dataverse_wasm::Error;
use dataverse_wasm::retry;
use dataverse_wasm::webapi::{crud, page, parse_error, who_am_i};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let answer = response(data);

    if let Ok(page) = page::parse(&answer) {
        let rows: Vec<Box<RawValue>> =
            serde_json::from_str(&page.rows).expect("rows are the JSON array the server sent");
        assert_eq!(rows.len(), page.row_count as usize);
        for keep in [0, 1, page.row_count.saturating_sub(1)] {
            let short = page::truncate(page.clone(), keep);
            let rows: Vec<Box<RawValue>> =
                serde_json::from_str(&short.rows).expect("truncated rows are a JSON array");
            assert_eq!(rows.len(), short.row_count as usize);
            assert_eq!(short.row_count, keep.min(page.row_count));
        }
    }
    let _ = who_am_i::parse(&answer);
    if let Ok(row) = crud::parse_row(&answer) {
        assert!(serde_json::from_str::<serde_json::Value>(&row.json).is_ok());
    }
    if let Some(id) = crud::created_id(&answer) {
        assert_eq!(id.len(), 36, "{id:?} is not a GUID");
    }

    // The error's kind follows the status whatever the body says.
    let error = parse_error(&answer);
    let _ = (error.to_string(), format!("{error:?}"));
    let kind_ok = match answer.status {
        403 => matches!(error, Error::AccessDenied(_)),
        404 => matches!(error, Error::NotFound(_)),
        412 => matches!(error, Error::PreconditionFailed(_)),
        429 => matches!(error, Error::Throttled { .. }),
        _ => matches!(error, Error::Service(_)),
    };
    assert!(kind_ok, "HTTP {} became {error:?}", answer.status);

    let _ = retry::throttling_code(&answer.body);
    if let Some(seconds) = retry::retry_after_secs(answer.header("retry-after")) {
        assert!(
            seconds <= 86_400,
            "Retry-After {seconds} is past the one-day cap"
        );
    }
});
