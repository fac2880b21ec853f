//! File columns end to end: the client component in wasmtime, the fake
//! over loopback TLS. A 20 MiB file goes up in chunks and comes down
//! byte-identical while the guest's memory stays under 8 MiB; faults at
//! each step are typed errors.

mod common;

use common::*;
use dataverse_fake::{self as fake, Fake, Fault};
use dataverse_host::session::{EntityRef, ErrorKind};

const MIB: usize = 1024 * 1024;

fn account(n: usize) -> EntityRef {
    EntityRef {
        entity_set: "accounts".into(),
        key: format!("accountnumber='A-{n:04}'"),
    }
}

/// Bytes that differ at every position a chunk boundary could shift.
fn file_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 4099) as u8).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_20_mib_file_goes_up_and_down_byte_identical_in_bounded_guest_memory() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, _network) = connect_over_tls(&server).await;
    let before = session.peak_memory_bytes();
    let file = file_of(20 * MIB + 12_345);
    let row = account(1);
    let uploaded = session
        .upload_file(
            &row,
            "sample_filecolumn",
            "twenty.bin",
            file.len() as u64,
            &mut file.as_slice(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(uploaded.bytes, file.len() as u64);
    assert_eq!(uploaded.chunks, 6, "5 chunks of 4 MiB and the rest");
    // The chunks' requests: in order, Content-Range by Content-Range.
    let ranges: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("sessiontoken="))
        .map(|r| r.header("content-range").unwrap().to_string())
        .collect();
    assert_eq!(ranges.len(), 6);
    assert_eq!(ranges[0], format!("bytes 0-4194303/{}", file.len()));
    assert_eq!(
        ranges[5],
        format!("bytes 20971520-{}/{}", file.len() - 1, file.len())
    );

    let mut down = Vec::new();
    let downloaded = session
        .download_file(&row, "sample_filecolumn", 4 * MIB as u32, &mut down, None)
        .await
        .unwrap();
    assert_eq!(downloaded.bytes, file.len() as u64);
    assert_eq!(downloaded.chunks, 6);
    assert_eq!(downloaded.file_name.as_deref(), Some("twenty.bin"));
    assert!(down == file, "the file came back changed");
    let peak = session.peak_memory_bytes();
    eprintln!("guest memory: {before} bytes before, peak {peak} bytes after 20 MiB up and down");
    assert!(peak < 8 * MIB, "peak guest memory {peak} bytes");
}

#[tokio::test(flavor = "multi_thread")]
async fn chunk_sizes_around_the_limit_upload_and_download_whole() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, _network) = connect_over_tls(&server).await;
    let row = account(2);
    for len in [1, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1] {
        let file = file_of(len);
        let up = session
            .upload_file(
                &row,
                "sample_filecolumn",
                "f.bin",
                len as u64,
                &mut file.as_slice(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(up.chunks as usize, len.div_ceil(4 * MIB), "{len}");
        let mut down = Vec::new();
        // Odd download chunks: 1 MiB + 7.
        let got = session
            .download_file(&row, "sample_filecolumn", (MIB + 7) as u32, &mut down, None)
            .await
            .unwrap();
        assert_eq!(got.chunks as usize, len.div_ceil(MIB + 7), "{len}");
        assert!(down == file, "{len}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_and_downloads_are_typed_errors() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let row = account(3);
    // An empty file, a bad name, a column that is not one: refused before sending.
    for (size, name, column) in [
        (0, "f.bin", "sample_filecolumn"),
        (1, "", "sample_filecolumn"),
        (1, "f.bin", "x/../y"),
    ] {
        let sent = fake.requests().len();
        let error = dataverse_error(
            session
                .upload_file(&row, column, name, size, &mut &b"x"[..], None)
                .await,
        );
        assert!(matches!(error, ErrorKind::InvalidRequest(_)), "{error:?}");
        assert_eq!(fake.requests().len(), sent);
    }
    // Nothing uploaded yet: Dataverse's 404.
    let error = dataverse_error(
        session
            .download_file(&row, "sample_filecolumn", MIB as u32, &mut Vec::new(), None)
            .await,
    );
    assert!(matches!(error, ErrorKind::NotFound(_)), "{error:?}");
    // A 503 on a chunk is retried (PATCH with Content-Range is idempotent).
    let file = file_of(5 * MIB);
    fake.inject(Fault::Status(503), 1);
    // The first request (the session) meets the 503 and is retried.
    let up = session
        .upload_file(
            &row,
            "sample_filecolumn",
            "f.bin",
            file.len() as u64,
            &mut file.as_slice(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(up.bytes, file.len() as u64);
    // A source shorter than its declared size: a host error, nothing committed.
    let short = file_of(MIB);
    let err = session
        .upload_file(
            &account(4),
            "sample_filecolumn",
            "g.bin",
            2 * MIB as u64,
            &mut short.as_slice(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("could not be read at byte"),
        "{err}"
    );
    let error = dataverse_error(
        session
            .download_file(
                &account(4),
                "sample_filecolumn",
                MIB as u32,
                &mut Vec::new(),
                None,
            )
            .await,
    );
    assert!(matches!(error, ErrorKind::NotFound(_)), "{error:?}");
    // A download chunk of 0 or over 4 MiB is refused.
    for chunk in [0, 4 * MIB as u32 + 1] {
        let error = dataverse_error(
            session
                .download_file(&row, "sample_filecolumn", chunk, &mut Vec::new(), None)
                .await,
        );
        assert!(matches!(error, ErrorKind::InvalidRequest(_)), "{error:?}");
    }
}
