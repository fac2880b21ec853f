//! Which headers cross the gateway. Both directions are allow-lists: what is
//! not named here never passes — the caller's `Authorization` and API key,
//! hop-by-hop headers (`Connection`, `Keep-Alive`, `Transfer-Encoding`, `TE`,
//! `Upgrade`, `Proxy-*`), `Host`, cookies, and anything else.

/// Request headers passed to Dataverse by exact name (lower case).
const FORWARDED: &[&str] = &[
    "accept",
    "content-type",
    "prefer",
    "if-match",
    "if-none-match",
    "consistency",
    "callerobjectid",
];

/// Request header name prefixes passed to Dataverse (`OData-Version`,
/// `MSCRM.BypassCustomPluginExecution`, …).
const FORWARDED_PREFIXES: &[&str] = &["odata-", "mscrm."];

/// The caller's request id; the core sends it on every attempt.
pub const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";

/// Response headers passed back to the caller.
const RETURNED: &[&str] = &[
    "content-type",
    "odata-entityid",
    "odata-version",
    "etag",
    "location",
    "preference-applied",
    "retry-after",
    "x-ms-service-request-id",
];

/// What of the caller's headers goes to Dataverse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Names lower case, in the caller's order.
    pub headers: Vec<(String, String)>,
    /// The caller's `x-ms-client-request-id`, which the core sends itself.
    pub client_request_id: Option<String>,
}

/// The caller's headers that go to Dataverse, and its `x-ms-client-request-id`.
/// A forwarded header whose value is not text is refused (the reason names it).
pub fn forwarded(headers: &[(String, Vec<u8>)]) -> Result<Forwarded, String> {
    let mut out = Vec::new();
    let mut request_id = None;
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let wanted = FORWARDED.contains(&lower.as_str())
            || FORWARDED_PREFIXES.iter().any(|p| lower.starts_with(p));
        if !wanted && lower != CLIENT_REQUEST_ID {
            continue;
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| format!("header {lower} is not valid text"))?
            .to_string();
        if lower == CLIENT_REQUEST_ID {
            request_id = Some(value);
        } else {
            out.push((lower, value));
        }
    }
    Ok(Forwarded {
        headers: out,
        client_request_id: request_id,
    })
}

/// The Dataverse response headers the caller gets.
pub fn returned(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| RETURNED.iter().any(|r| name.eq_ignore_ascii_case(r)))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn only_odata_and_dataverse_request_headers_are_forwarded() {
        let incoming = raw(&[
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
            ("Prefer", "return=representation"),
            ("If-Match", "*"),
            ("If-None-Match", "*"),
            ("OData-MaxVersion", "4.0"),
            ("OData-Version", "4.0"),
            ("MSCRM.BypassCustomPluginExecution", "true"),
            ("Consistency", "Strong"),
            ("CallerObjectId", "e39c5d16-675b-48d1-8e67-667427e9c084"),
            ("x-ms-client-request-id", "req-1"),
            ("Authorization", "Bearer caller-secret"),
            ("x-api-key", "caller-key"),
            ("Host", "gateway.example"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("TE", "trailers"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic x"),
            ("Proxy-Connection", "keep-alive"),
            ("Cookie", "a=b"),
            ("Content-Length", "2"),
            ("MSCRMCallerID", "x"),
        ]);
        let Forwarded {
            headers: forwarded,
            client_request_id: request_id,
        } = forwarded(&incoming).unwrap();
        let names: Vec<&str> = forwarded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "prefer",
                "if-match",
                "if-none-match",
                "odata-maxversion",
                "odata-version",
                "mscrm.bypasscustompluginexecution",
                "consistency",
                "callerobjectid",
            ]
        );
        assert_eq!(request_id.as_deref(), Some("req-1"));
        assert!(
            forwarded
                .iter()
                .all(|(_, v)| !v.contains("caller-secret") && !v.contains("caller-key"))
        );
    }

    #[test]
    fn a_forwarded_header_that_is_not_text_is_refused() {
        let incoming = vec![("Prefer".to_string(), vec![0xff, 0xfe])];
        assert_eq!(
            forwarded(&incoming).unwrap_err(),
            "header prefer is not valid text"
        );
        // Headers that are not forwarded are not inspected.
        let ignored = vec![("Cookie".to_string(), vec![0xff])];
        assert!(forwarded(&ignored).unwrap().headers.is_empty());
    }

    #[test]
    fn only_the_documented_response_headers_come_back() {
        let upstream: Vec<(String, String)> = [
            ("Content-Type", "application/json; odata.metadata=minimal"),
            ("OData-EntityId", "https://o/api/data/v9.2/accounts(1)"),
            ("ETag", "W/\"1\""),
            ("Location", "https://o/x"),
            ("Preference-Applied", "return=representation"),
            ("Retry-After", "5"),
            ("Set-Cookie", "ARRAffinity=x"),
            ("Strict-Transport-Security", "max-age=1"),
            ("Connection", "close"),
            ("Transfer-Encoding", "chunked"),
            ("WWW-Authenticate", "Bearer authorization_uri=x"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let names: Vec<String> = returned(&upstream).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "odata-entityid",
                "etag",
                "location",
                "preference-applied",
                "retry-after"
            ]
        );
    }
}
