//! The network trusts the OS trust store, not only the Mozilla roots and
//! `--cacert`. The store is pointed at a file with `SSL_CERT_FILE`, which
//! `rustls-native-certs` honours on every platform; that means changing the
//! process environment, so this test has a binary of its own and is its
//! only test.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dataverse_fake::{self as fake, Fake};
use dataverse_host::Network;
use dataverse_host::upstream::{HttpError, RequestOptions};

async fn get_org(network: Network) -> Result<http::Response<()>, HttpError> {
    let request = http::Request::get(format!("https://{}/api/data/v9.2/", fake::ORG_HOST))
        .body(Bytes::new())
        .expect("a request");
    let response = Arc::new(network)
        .send(request, RequestOptions::default())
        .await?;
    Ok(response.map(|_| ()))
}

// A current-thread runtime: no other thread exists to read the environment
// while the test sets it.
#[tokio::test(flavor = "current_thread")]
async fn a_root_in_the_os_store_is_trusted_without_cacert() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = fake::serve_tls(Fake::demo()).await.expect("the TLS fake");
        let rules = || {
            vec![
                format!("{}:443:127.0.0.1:{}", fake::ORG_HOST, server.addr.port())
                    .parse()
                    .expect("a rule"),
            ]
        };

        // The fake's CA is in no store yet: the handshake must fail, or the
        // success below would prove nothing.
        let error = get_org(Network::new(rules(), None).expect("network"))
            .await
            .expect_err("an unknown CA");
        assert!(matches!(error, HttpError::TlsCertificateError), "{error:?}");

        let file = std::env::temp_dir().join(format!(
            "dataverse-host-native-roots-{}.pem",
            std::process::id()
        ));
        std::fs::write(&file, &server.ca_pem).expect("writing the CA");
        // SAFETY: this binary runs this one test, on one thread; nothing
        // else reads the environment meanwhile.
        unsafe { std::env::set_var("SSL_CERT_FILE", &file) };
        // The store is read at the first handshake whose chain the Mozilla
        // roots do not know.
        let response = get_org(Network::new(rules(), None).expect("network"))
            .await
            .expect("trusted through the OS store");
        let _ = std::fs::remove_file(&file);
        assert!(response.status().as_u16() < 500, "{}", response.status());
    })
    .await
    .expect("within the test limit");
}
