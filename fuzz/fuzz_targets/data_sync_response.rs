//! What Dataverse answers the data-sync calls: CreateMultiple's ids, a
//! table definition, a change-tracking page, a file upload session, a
//! ranged file download. All read the same (status, headers, body); none
//! may panic, and what they accept keeps its promises.

#![no_main]

use dataverse_fuzz::response;
use dataverse_wasm::webapi::entity_key::guid;
use dataverse_wasm::webapi::{bulk, changes, file, metadata};
use libfuzzer_sys::fuzz_target;

const ORG: &str = "https://contoso.crm.dynamics.com";

fuzz_target!(|data: &[u8]| {
    let answer = response(data);

    for targets in [1, 2, 100] {
        if let Ok(ids) = bulk::parse_created_ids(&answer, targets) {
            assert_eq!(ids.len(), targets);
            assert!(
                ids.iter()
                    .all(|id| guid(id).as_deref() == Some(id.as_str()))
            );
        }
    }

    for name in ["accounts", "account"] {
        let definitions = [
            metadata::parse_list(&answer, name).ok().flatten(),
            metadata::parse_one(&answer, name).ok(),
        ];
        for table in definitions.into_iter().flatten() {
            // Names that go into URLs and @odata.type are plain identifiers,
            // and the definition is the table asked for.
            for text in [&table.logical_name, &table.entity_set, &table.primary_id] {
                assert!(
                    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{text:?}"
                );
            }
            // (Either name, without case: a user may type `Account`.)
            assert!(
                table.logical_name.eq_ignore_ascii_case(name)
                    || table.entity_set.eq_ignore_ascii_case(name)
            );
        }
    }

    if let Ok(page) = changes::parse(&answer) {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(&page.changes).expect("the changes are the JSON array sent");
        assert_eq!(items.len(), (page.changed + page.deleted) as usize);
        assert!(page.next_link.is_none() || page.delta_link.is_none());
    }

    if let Ok(session) = file::parse_upload_session(ORG, &answer) {
        assert!(session.location.to_ascii_lowercase().starts_with(ORG));
        assert!((1..=file::MAX_CHUNK_BYTES).contains(&session.chunk_bytes));
    }

    for (offset, length) in [(0, 1), (0, 4096), (10, 4096), (1 << 40, 1)] {
        if let Ok(chunk) = file::parse_download(answer.clone(), offset, length) {
            assert!(chunk.data.len() as u64 <= length);
            assert!(offset + chunk.data.len() as u64 <= chunk.file_size);
        }
    }
});
