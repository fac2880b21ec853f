//! Unit tests of the proxy settings (pure) and the CONNECT handshake (over
//! an in-memory stream).

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const PASSWORD: &str = "hunter2-S3cret";

fn config(vars: &[(&str, &str)]) -> Result<ProxyConfig, HostError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxyConfig::from_env(|name| vars.get(name).cloned())
}

fn url(s: &str) -> http::Uri {
    s.parse().expect("a valid test URL")
}

/// The proxies an https and an http URL go through, as `Display` shows them.
type Chosen = (Option<String>, Option<String>);

fn chosen(config: &ProxyConfig) -> Chosen {
    (
        config
            .proxy_for(&url("https://contoso.crm.dynamics.com/"))
            .map(|p| p.to_string()),
        config
            .proxy_for(&url("http://contoso.crm.dynamics.com/"))
            .map(|p| p.to_string()),
    )
}

#[test]
fn lowercase_variables_win_empty_ones_fall_through_and_all_proxy_fills_in() {
    let a = "http://a.corp:1";
    let b = "http://b.corp:2";
    let c = "http://c.corp:3";
    let (pa, pb, pc) = (
        Some(a.to_string()),
        Some(b.to_string()),
        Some(c.to_string()),
    );
    let cases: &[(&[(&str, &str)], Chosen)] = &[
        (&[], (None, None)),
        (
            &[("HTTPS_PROXY", a), ("https_proxy", b)],
            (pb.clone(), None),
        ),
        (
            &[("https_proxy", ""), ("HTTPS_PROXY", a)],
            (pa.clone(), None),
        ),
        (&[("https_proxy", "  ")], (None, None)),
        (&[("HTTP_PROXY", a), ("http_proxy", b)], (None, pb.clone())),
        (&[("HTTP_PROXY", a)], (None, pa.clone())),
        (&[("ALL_PROXY", a)], (pa.clone(), pa.clone())),
        (
            &[("ALL_PROXY", a), ("all_proxy", b)],
            (pb.clone(), pb.clone()),
        ),
        (
            &[("all_proxy", b), ("HTTPS_PROXY", c)],
            (pc.clone(), pb.clone()),
        ),
        (
            &[("all_proxy", ""), ("ALL_PROXY", a)],
            (pa.clone(), pa.clone()),
        ),
        (
            &[("HTTPS_PROXY", a), ("HTTP_PROXY", c)],
            (pa.clone(), pc.clone()),
        ),
    ];
    for (vars, expected) in cases {
        let config = config(vars).expect("valid proxy variables");
        assert_eq!(&chosen(&config), expected, "{vars:?}");
        assert_eq!(config.is_direct(), expected == &(None, None), "{vars:?}");
    }
}

#[test]
fn proxy_urls_parse_with_http_defaults_and_percent_decoded_credentials() {
    // (URL, Display, Debug, Proxy-Authorization)
    let cases = [
        (
            "http://proxy.corp:3128",
            "http://proxy.corp:3128",
            "Proxy(http://proxy.corp:3128)",
            None,
        ),
        (
            "proxy.corp:3128",
            "http://proxy.corp:3128",
            "Proxy(http://proxy.corp:3128)",
            None,
        ),
        (
            "HTTP://Proxy.Corp/",
            "http://proxy.corp:80",
            "Proxy(http://proxy.corp:80)",
            None,
        ),
        (
            "http://[::1]:8888",
            "http://[::1]:8888",
            "Proxy(http://[::1]:8888)",
            None,
        ),
        (
            // "alice:s3cr@t" once %40 is decoded.
            "http://alice:s3cr%40t@proxy.corp:3128",
            "http://proxy.corp:3128",
            "Proxy(http://alice:***@proxy.corp:3128)",
            Some("Basic YWxpY2U6czNjckB0"),
        ),
        (
            // An unescaped '@' in the password: the last one ends the userinfo.
            "http://u:p@ss@proxy.corp:1",
            "http://proxy.corp:1",
            "Proxy(http://u:***@proxy.corp:1)",
            Some("Basic dTpwQHNz"),
        ),
        (
            "http://bob@10.0.0.1:8080",
            "http://10.0.0.1:8080",
            "Proxy(http://bob:***@10.0.0.1:8080)",
            Some("Basic Ym9iOg=="),
        ),
    ];
    for (input, display, debug, authorization) in cases {
        let config = config(&[("HTTPS_PROXY", input)]).expect(input);
        let proxy = config
            .proxy_for(&url("https://contoso.crm.dynamics.com/"))
            .expect("a proxy");
        assert_eq!(proxy.to_string(), display, "{input}");
        assert_eq!(format!("{proxy:?}"), debug, "{input}");
        assert_eq!(
            proxy.authorization().as_ref().map(|a| a.expose()),
            authorization,
            "{input}"
        );
    }
}

#[test]
fn bad_or_unsupported_proxy_urls_are_errors_naming_the_variable_but_not_the_url() {
    let cases = [
        (
            "https://u:{P}@proxy.corp:443",
            "https:// proxies are not supported",
        ),
        (
            "socks5://u:{P}@proxy.corp:1080",
            "socks5:// proxies are not supported",
        ),
        ("http://u:{P}@:3128", "no valid host"),
        ("http://u:{P}@proxy.corp:99999", "no valid host"),
        ("http://u:{P}@proxy.corp:x", "no valid host"),
        ("http://u:{P}%zz@proxy.corp:1", "password is not valid"),
        ("http://u%ff:{P}@proxy.corp:1", "user name is not valid"),
        ("http://u:{P}@[::1:3128", "no valid host"),
        ("http://u:1234/{P}@proxy.corp:1", "must be percent-encoded"),
    ];
    for (template, reason) in cases {
        let input = template.replace("{P}", PASSWORD);
        for variable in ["https_proxy", "HTTP_PROXY", "ALL_PROXY"] {
            let error = config(&[(variable, &input)]).expect_err(&input);
            let (display, debug) = (error.to_string(), format!("{error:?}"));
            assert!(
                display.starts_with(&format!("{variable}: ")) && display.contains(reason),
                "{display}"
            );
            assert!(
                !display.contains(PASSWORD) && !debug.contains(PASSWORD),
                "{debug}"
            );
        }
    }
}

#[test]
fn no_proxy_matches_like_curl() {
    // (NO_PROXY, URL, goes direct)
    let cases = [
        ("*", "https://anything.example", true),
        ("example.com,*", "https://anything.example", true),
        ("", "https://contoso.com", false),
        ("contoso.com", "https://contoso.com", true),
        ("contoso.com", "https://api.contoso.com", true),
        ("contoso.com", "https://a.b.contoso.com:8443", true),
        ("contoso.com", "https://notcontoso.com", false),
        ("contoso.com", "https://contoso.com.evil.example", false),
        (".contoso.com", "https://contoso.com", true),
        (".contoso.com", "https://api.contoso.com", true),
        ("*.contoso.com", "https://api.contoso.com", true),
        ("CONTOSO.com", "https://Api.Contoso.COM", true),
        ("contoso.com.", "https://contoso.com", true),
        ("contoso.com", "https://contoso.com./", true),
        ("a.example, b.example", "https://b.example", true),
        ("a.example b.example", "https://b.example", true),
        (" , ,a.example,", "https://a.example", true),
        // host:port entries match that port only.
        ("contoso.com:8443", "https://contoso.com", false),
        ("contoso.com:8443", "https://contoso.com:8443", true),
        ("contoso.com:443", "https://contoso.com", true),
        ("contoso.com:80", "http://contoso.com", true),
        // IP literals, IPv6 with or without brackets, CIDR ranges.
        ("127.0.0.1", "https://127.0.0.1:8443", true),
        ("127.0.0.1:8443", "https://127.0.0.1:8443", true),
        ("127.0.0.1:9", "https://127.0.0.1:8443", false),
        ("::1", "https://[::1]:8443", true),
        ("[::1]", "https://[::1]", true),
        ("[::1]:8443", "https://[::1]:8443", true),
        ("[::1]:8443", "https://[::1]:9", false),
        ("10.0.0.0/8", "https://10.200.3.4", true),
        ("10.0.0.0/8", "https://11.0.0.1", false),
        ("192.168.1.0/24", "https://192.168.1.77", true),
        ("192.168.1.0/24", "https://192.168.2.1", false),
        ("fd00::/8", "https://[fd12::1]", true),
        ("fd00::/8", "https://[fe80::1]", false),
        ("0.0.0.0/0", "https://8.8.8.8", true),
        // An address never matches a name, nor a name an address.
        ("1.2.3.4", "https://1.2.3.4.example.com", false),
        ("example.com", "https://93.184.216.34", false),
        // Loopback is proxied unless listed, as in curl.
        ("example.com", "https://localhost", false),
        ("example.com", "https://127.0.0.1", false),
        ("example.com", "https://[::1]", false),
        ("localhost", "https://localhost:8443", true),
        ("localhost", "https://127.0.0.1", false),
        // Garbage entries match nothing and spoil nothing.
        (
            "a:b:c,:,10.0.0.0/99,contoso.com",
            "https://contoso.com",
            true,
        ),
        ("a:b:c,:,10.0.0.0/99", "https://a", false),
    ];
    for (list, target, direct) in cases {
        let config = config(&[
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
            ("http_proxy", "http://proxy.corp:3128"),
            ("NO_PROXY", list),
        ])
        .expect("valid");
        assert_eq!(
            config.proxy_for(&url(target)).is_none(),
            direct,
            "NO_PROXY={list:?} {target}"
        );
    }
}

#[test]
fn lowercase_no_proxy_wins() {
    let config = config(&[
        ("HTTPS_PROXY", "http://proxy.corp:3128"),
        ("no_proxy", "a.example"),
        ("NO_PROXY", "b.example"),
    ])
    .expect("valid");
    assert!(config.proxy_for(&url("https://a.example")).is_none());
    assert!(config.proxy_for(&url("https://b.example")).is_some());
}

#[test]
fn credentials_never_show_in_any_display_or_debug() {
    let config = config(&[
        (
            "HTTPS_PROXY",
            &format!("http://alice:{PASSWORD}@proxy.corp:3128"),
        ),
        ("NO_PROXY", "localhost"),
    ])
    .expect("valid");
    let proxy = config
        .proxy_for(&url("https://contoso.crm.dynamics.com"))
        .expect("proxied");
    for text in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{proxy}"),
        format!("{proxy:?}"),
        format!("{proxy:#?}"),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
    }
    assert!(
        !proxy.to_string().contains("alice"),
        "Display names no user"
    );
}

#[test]
fn loopback_proxies_are_recognised() {
    for (proxy, loopback) in [
        ("http://127.0.0.1:8888", true),
        ("http://localhost:8888", true),
        ("http://[::1]:8888", true),
        ("http://127.9.9.9:1", true),
        ("http://proxy.corp:3128", false),
        ("http://10.0.0.1:3128", false),
    ] {
        let config = config(&[("HTTPS_PROXY", proxy)]).expect(proxy);
        let proxy = config.https.as_ref().expect("a proxy");
        assert_eq!(proxy.is_loopback(), loopback, "{proxy}");
    }
}

fn proxy(url: &str) -> Proxy {
    Proxy::parse(url, "test").expect("a valid proxy URL")
}

/// Runs `open_tunnel` against a scripted proxy that reads the request
/// head, then writes `answer` and closes; returns the result, the request
/// the proxy saw, and what the client can still read after the handshake.
async fn handshake(
    proxy: &Proxy,
    host: &str,
    port: u16,
    answer: Vec<u8>,
) -> (Result<(), HostError>, String, Vec<u8>) {
    let (mut client, mut server) = tokio::io::duplex(64 * 1024);
    let script = tokio::spawn(async move {
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && server.read(&mut byte).await.unwrap_or(0) == 1 {
            request.push(byte[0]);
        }
        let _ = server.write_all(&answer).await;
        let _ = server.shutdown().await;
        String::from_utf8(request).expect("ASCII")
    });
    let result = open_tunnel(&mut client, proxy, host, port).await;
    let request = script.await.expect("script");
    let mut rest = Vec::new();
    if result.is_ok() {
        let _ = client.read_to_end(&mut rest).await;
    }
    (result, request, rest)
}

#[tokio::test]
async fn connect_names_the_target_sends_basic_credentials_and_reads_nothing_past_the_head() {
    let proxy = proxy("http://alice:s3cr%40t@proxy.corp:3128");
    let (result, request, rest) = handshake(
        &proxy,
        "contoso.crm.dynamics.com",
        443,
        b"HTTP/1.1 200 Connection established\r\nVia: 1.1 proxy\r\n\r\n\x16\x03\x01TLS".to_vec(),
    )
    .await;
    result.expect("tunnel open");
    assert_eq!(
        request,
        "CONNECT contoso.crm.dynamics.com:443 HTTP/1.1\r\n\
         Host: contoso.crm.dynamics.com:443\r\n\
         Proxy-Authorization: Basic YWxpY2U6czNjckB0\r\n\r\n"
    );
    assert_eq!(
        rest, b"\x16\x03\x01TLS",
        "the tunnel's first bytes are left unread"
    );
}

#[tokio::test]
async fn connect_without_credentials_sends_no_authorization_and_brackets_ipv6() {
    let (result, request, _) = handshake(
        &proxy("http://proxy.corp:3128"),
        "::1",
        8443,
        b"HTTP/1.0 200 OK\n\n".to_vec(),
    )
    .await;
    result.expect("tunnel open (HTTP/1.0, bare LF)");
    assert_eq!(
        request,
        "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n"
    );
}

#[tokio::test]
async fn a_refusal_is_a_typed_error_naming_the_proxy_and_status_without_credentials() {
    let proxy = proxy(&format!("http://alice:{PASSWORD}@proxy.corp:3128"));
    let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
        Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n"
        .to_vec();
    let (result, _, _) = handshake(&proxy, "contoso.crm.dynamics.com", 443, answer).await;
    let error = result.expect_err("407");
    assert!(
        matches!(&error, HostError::ProxyRefused { status: 407, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "proxy http://proxy.corp:3128 refused CONNECT to contoso.crm.dynamics.com:443: \
         407 Proxy Authentication Required"
    );
    let debug = format!("{error:?}");
    assert!(
        !debug.contains(PASSWORD) && !debug.contains("alice"),
        "{debug}"
    );

    // The proxy's reason phrase is its own text: kept printable and short.
    let mut hostile = b"HTTP/1.1 403 \x1b[31mno\x07".to_vec();
    hostile.extend(std::iter::repeat_n(b'x', 500));
    hostile.extend(b"\r\n\r\n");
    let (result, _, _) = handshake(&proxy, "contoso.crm.dynamics.com", 443, hostile).await;
    let HostError::ProxyRefused { status, reason, .. } = result.expect_err("403") else {
        panic!("a refusal");
    };
    assert_eq!(status, 403);
    assert!(
        reason.starts_with("[31mnoxxx") && reason.len() <= MAX_REASON,
        "{reason}"
    );
}

#[tokio::test]
async fn a_broken_answer_is_a_protocol_error() {
    let proxy = proxy("http://proxy.corp:3128");
    let endless = {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        while head.len() <= MAX_CONNECT_RESPONSE_HEAD {
            head.extend(b"X-Padding: 0123456789abcdef\r\n");
        }
        head
    };
    let cases: [(&[u8], &str); 5] = [
        (b"", "closed the connection before answering"),
        (
            b"HTTP/1.1 200 Conn",
            "closed the connection before answering",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not HTTP/1.x"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not HTTP/1.x"),
        (&endless, "longer than 8 KiB"),
    ];
    for (answer, problem) in cases {
        let (result, _, _) =
            handshake(&proxy, "contoso.crm.dynamics.com", 443, answer.to_vec()).await;
        let error = result.expect_err(problem);
        assert!(
            matches!(error, HostError::ProxyProtocol { .. }) && error.to_string().contains(problem),
            "{error}"
        );
        assert!(error.to_string().starts_with(
            "proxy http://proxy.corp:3128, CONNECT to contoso.crm.dynamics.com:443: "
        ));
    }
}

#[test]
fn variables_lists_every_name_the_config_reads() {
    let mut read = Vec::new();
    let seen = std::cell::RefCell::new(&mut read);
    ProxyConfig::from_env(|name| {
        seen.borrow_mut().push(name.to_string());
        None
    })
    .unwrap();
    read.sort();
    read.dedup();
    let mut listed: Vec<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
    listed.sort();
    assert_eq!(read, listed);
}
