//! Plain HTTP messages exchanged between the pure core and a transport.

/// An HTTP request the core wants sent. `url` is absolute.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// May go over plain `http://` to a host that is not loopback. Set only
    /// by the managed-identity requests (`auth::managed_identity`): the
    /// platform's identity endpoint (IMDS, or App Service's
    /// `IDENTITY_ENDPOINT`) speaks plain HTTP by design. Every other request
    /// is https, or http to loopback under `AllowHttpLoopback`.
    pub allow_plain_http: bool,
}

/// Methods the core uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Patch,
        Method::Put,
        Method::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    /// `GET`, `post`, … (any case); anything else names the five it can be.
    fn from_str(name: &str) -> Result<Method, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("method '{name}' is not one of GET, POST, PATCH, PUT, DELETE"))
    }
}

impl std::fmt::Debug for Request {
    // Headers are left out: they carry bearer tokens; bodies may carry secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({} body bytes)",
            self.method.as_str(),
            self.url,
            self.body.len()
        )
    }
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            allow_plain_http: false,
        }
    }

    /// The request, marked as one that may use plain http (see
    /// [`Request::allow_plain_http`]).
    pub fn allowing_plain_http(mut self) -> Self {
        self.allow_plain_http = true;
        self
    }

    /// Whether a transport may send it: https, http to loopback, or plain
    /// http on a request marked [`Request::allow_plain_http`].
    pub fn may_be_sent(&self) -> bool {
        split_url(&self.url)
            .is_some_and(|p| p.https || self.allow_plain_http || is_loopback_authority(p.authority))
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The first header with this name (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response handed back by a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The response with one more header (for code that answers, such as
    /// the gateway).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The parts of an absolute URL a transport needs.
#[derive(Debug, PartialEq, Eq)]
pub struct UrlParts<'a> {
    pub https: bool,
    /// `host` or `host:port`.
    pub authority: &'a str,
    /// `/path?query`, at least `/`.
    pub path_and_query: &'a str,
}

/// Splits `http(s)://authority/path?query`; `None` for anything else.
pub fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path_and_query = if path.is_empty() { "/" } else { path };
    Some(UrlParts {
        https,
        authority,
        path_and_query,
    })
}

/// True when `authority` (`host[:port]`) names a loopback host: 127.0.0.1,
/// localhost or [::1] — the only hosts plain http may reach.
pub fn is_loopback_authority(authority: &str) -> bool {
    crate::settings::is_loopback_host(&crate::settings::strip_port(authority).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_split_into_authority_and_path() {
        let p = split_url("https://o.crm.dynamics.com/api/data/v9.2/accounts?$top=1").unwrap();
        assert_eq!(
            p,
            UrlParts {
                https: true,
                authority: "o.crm.dynamics.com",
                path_and_query: "/api/data/v9.2/accounts?$top=1"
            }
        );
        assert_eq!(split_url("https://h:8443").unwrap().path_and_query, "/");
        assert!(!split_url("http://h/x").unwrap().https);
        for bad in ["ftp://h/", "/relative", "https://", "https://u@h/"] {
            assert!(split_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn plain_http_leaves_only_for_loopback_or_a_request_marked_for_it() {
        let get = |url: &str| Request::new(Method::Get, url);
        assert!(get("https://o.crm.dynamics.com/").may_be_sent());
        assert!(get("http://127.0.0.1:8080/x").may_be_sent());
        for refused in [
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "http://o.crm.dynamics.com/",
            "http://10.0.0.1:8081/msi/token",
            "ftp://h/",
            "https://u@h/",
        ] {
            assert!(!get(refused).may_be_sent(), "{refused}");
        }
        let marked = get("http://169.254.169.254/metadata/identity/oauth2/token");
        assert!(marked.allowing_plain_http().may_be_sent());
        assert!(!get("ftp://h/").allowing_plain_http().may_be_sent());
    }

    #[test]
    fn only_loopback_authorities_count_as_loopback() {
        for yes in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9",
            "[::1]",
        ] {
            assert!(is_loopback_authority(yes), "{yes}");
        }
        for no in [
            "127.0.0.2",
            "localhost.evil.example",
            "[::2]:9",
            "evil.example:127.0.0.1",
            "",
        ] {
            assert!(!is_loopback_authority(no), "{no}");
        }
    }
}
