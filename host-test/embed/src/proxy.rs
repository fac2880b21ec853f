//! Outgoing proxies, read from the environment the way curl and the Azure
//! tools read it: which proxy, if any, a URL goes through ([`ProxyConfig`],
//! parsed by a pure function from a lookup closure, so tests never touch the
//! process environment), and the `CONNECT` handshake that opens a tunnel
//! through an HTTP proxy ([`open_tunnel`]). `network.rs` wires both in.
//!
//! ```
//! use dataverse_host::ProxyConfig;
//!
//! let env = |name: &str| match name {
//!     "HTTPS_PROXY" => Some("http://alice:s3cret@proxy.corp:3128".to_string()),
//!     "NO_PROXY" => Some(".internal.corp,localhost".to_string()),
//!     _ => None,
//! };
//! let config = ProxyConfig::from_env(env).unwrap();
//! let org = "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI".parse().unwrap();
//! let proxy = config.proxy_for(&org).unwrap();
//! // The password never shows, whichever way the proxy is printed.
//! assert_eq!(proxy.to_string(), "http://proxy.corp:3128");
//! assert_eq!(format!("{proxy:?}"), "Proxy(http://alice:***@proxy.corp:3128)");
//! assert!(config.proxy_for(&"https://wiki.internal.corp/".parse().unwrap()).is_none());
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dataverse_wasm::Secret;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::HostError;

/// Longest proxy answer head to `CONNECT` read before giving up: a proxy
/// that sends more is broken or hostile, and the host must stay bounded.
/// Every variable [`ProxyConfig::from_env`] reads: what a host removes from
/// a child's environment to keep it off any proxy.
pub const VARIABLES: [&str; 8] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

pub const MAX_CONNECT_RESPONSE_HEAD: usize = 8 * 1024;

/// Longest reason phrase of a refusal kept for the error message.
const MAX_REASON: usize = 80;

/// Which proxy each URL goes through. [`ProxyConfig::default`] is no proxy
/// at all; [`ProxyConfig::from_env`] reads the variables curl reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    https: Option<Proxy>,
    http: Option<Proxy>,
    no_proxy: NoProxy,
}

impl ProxyConfig {
    /// Reads the proxy variables through `lookup` (pass
    /// `|name| std::env::var(name).ok()` for the process environment):
    ///
    /// - https URLs: `https_proxy`, else `HTTPS_PROXY`;
    /// - http URLs: `http_proxy`, else `HTTP_PROXY`;
    /// - either, when its own is unset: `all_proxy`, else `ALL_PROXY`;
    /// - exceptions: `no_proxy`, else `NO_PROXY` (see [`ProxyConfig::proxy_for`]).
    ///
    /// The lowercase name wins, as in curl. An empty value counts as unset
    /// (so `https_proxy=` falls through to `HTTPS_PROXY`), as in Go and
    /// Python. curl ignores the uppercase `HTTP_PROXY` because CGI servers put
    /// a request's `Proxy:` header there ("httpoxy"); this host is no CGI
    /// program, so it reads it like the Azure CLI (Python) and Go tools do.
    ///
    /// Only `http://` proxies are supported (a URL without a scheme is one);
    /// `https://` and `socks*://` proxies are refused rather than ignored, so
    /// a connection never silently bypasses a proxy the environment names.
    /// The error names the variable, never its value (it may hold a password).
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, HostError> {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|&name| {
                lookup(name)
                    .map(|value| value.trim().to_string())
                    .filter(|value| !value.is_empty())
                    .map(|value| (name, value))
            })
        };
        let parse = |found: Option<(&'static str, String)>| {
            found
                .map(|(name, value)| Proxy::parse(&value, name))
                .transpose()
        };
        let all = ["all_proxy", "ALL_PROXY"];
        Ok(ProxyConfig {
            https: parse(first(&["https_proxy", "HTTPS_PROXY"]).or_else(|| first(&all)))?,
            http: parse(first(&["http_proxy", "HTTP_PROXY"]).or_else(|| first(&all)))?,
            no_proxy: first(&["no_proxy", "NO_PROXY"])
                .map_or_else(NoProxy::default, |(_, list)| NoProxy::parse(&list)),
        })
    }

    /// True when no URL goes through a proxy.
    pub fn is_direct(&self) -> bool {
        self.https.is_none() && self.http.is_none()
    }

    /// The proxy for `url`, or `None` to connect directly: the scheme's
    /// proxy unless the no-proxy list matches the URL's host (and port).
    ///
    /// The list is matched like curl's: comma-separated entries; `*` alone
    /// matches every host; a name matches itself and every name below it
    /// (`contoso.com` and `.contoso.com` both match `contoso.com` and
    /// `api.contoso.com`, not `notcontoso.com`); an IP address matches
    /// itself, or a range in CIDR notation (`10.0.0.0/8`); IPv6 with or
    /// without brackets; an entry may end in `:port` to match that port only.
    /// Loopback is not exempt unless listed (`localhost,127.0.0.1,::1`).
    pub fn proxy_for(&self, url: &http::Uri) -> Option<&Proxy> {
        let https = url.scheme() == Some(&http::uri::Scheme::HTTPS);
        let proxy = if https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let host = url.host()?;
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        (!self.no_proxy.matches(host, port)).then_some(proxy)
    }
}

/// One HTTP proxy: where it listens and, when its URL has `user:pass@`, the
/// Basic credentials (percent-decoded). `Display` is `http://host:port`;
/// `Debug` adds the user name with the password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
    credentials: Option<(String, Secret)>,
}

impl Proxy {
    /// Parses `[http://][user[:password]@]host[:port][/]`; the port defaults
    /// to 80, as the URL says (curl alone assumes 1080). `setting` names
    /// where the URL came from, for the error; the URL itself never appears
    /// in it.
    fn parse(url: &str, setting: &'static str) -> Result<Proxy, HostError> {
        let invalid = |reason: String| HostError::ProxyUrl { setting, reason };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                // Only an ASCII word is echoed: anything else might be a
                // mangled URL carrying its password.
                let scheme =
                    if scheme.bytes().all(|b| b.is_ascii_alphanumeric()) && scheme.len() <= 10 {
                        scheme.to_ascii_lowercase()
                    } else {
                        "unknown".to_string()
                    };
                return Err(invalid(format!(
                    "{scheme}:// proxies are not supported; use an http:// proxy (CONNECT tunnels)"
                )));
            }
            None => url,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // `user:1234/5@proxy` would parse as the host `user`, port 1234: and
        // then every message naming the proxy would show part of the password.
        if rest[authority.len()..].contains('@') {
            return Err(invalid(
                "the proxy credentials hold a character that must be percent-encoded (/ ? #)"
                    .into(),
            ));
        }
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let credentials = userinfo
            .map(|userinfo| {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| {
                    invalid("the proxy user name is not valid percent-encoded UTF-8".into())
                })?;
                let password = percent_decode(password).ok_or_else(|| {
                    invalid("the proxy password is not valid percent-encoded UTF-8".into())
                })?;
                Ok((user, Secret::new(password)))
            })
            .transpose()?;
        let (host, port) = split_host_port(host_port)
            .ok_or_else(|| invalid("the proxy URL has no valid host[:port]".into()))?;
        Ok(Proxy {
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(80),
            credentials,
        })
    }

    /// The proxy's host name or IP address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True when the proxy runs on this machine (a debugging proxy such as
    /// mitmproxy or Fiddler).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The `Proxy-Authorization` value, when the URL carries credentials.
    /// Call only where it goes on the wire.
    pub(crate) fn authorization(&self) -> Option<Secret> {
        self.credentials.as_ref().map(|(user, password)| {
            let pair = Secret::new(format!("{user}:{}", password.expose()));
            Secret::new(format!("Basic {}", STANDARD.encode(pair.expose())))
        })
    }

    fn write_host_port(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", HostPort(&self.host, self.port))
    }
}

impl fmt::Display for Proxy {
    /// `http://host:port`: what error messages name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        self.write_host_port(f)
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Proxy(http://")?;
        if let Some((user, password)) = &self.credentials {
            write!(f, "{user}:{password}@")?;
        }
        self.write_host_port(f)?;
        f.write_str(")")
    }
}

impl Hash for Proxy {
    // Keys the keep-alive pool. Equal proxies hash alike without the
    // password taking part (Eq still compares it).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.host.hash(state);
        self.port.hash(state);
        self.credentials.as_ref().map(|(user, _)| user).hash(state);
    }
}

/// `host:port`, with an IPv6 host in brackets: the form of a `CONNECT`
/// target, a `Host` header and a URL authority.
struct HostPort<'a>(&'a str, u16);

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.contains(':') {
            write!(f, "[{}]:{}", self.0, self.1)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`: the host (without brackets)
/// and the port if any. `None` for an empty host or a bad port.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let port = port.map(str::parse::<u16>).transpose().ok()?;
    Some((host, port))
}

/// `%XX` decoding of a URL's user or password. `None` when an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The parsed `NO_PROXY` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NoProxy {
    everything: bool,
    entries: Vec<Bypass>,
}

/// One `NO_PROXY` entry: what it names, on any port or one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bypass {
    target: Bypassed,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Bypassed {
    /// A name and every name below it (lowercase, no leading or trailing dot).
    Domain(String),
    /// An address, or a range of `bits` leading bits.
    Ip { network: IpAddr, bits: u8 },
}

impl NoProxy {
    /// Lenient, as curl: an entry that means nothing (`:`, `a:b:c`) matches
    /// nothing rather than making the whole list an error.
    fn parse(list: &str) -> NoProxy {
        let mut no_proxy = NoProxy::default();
        // curl splits on spaces too: "a.com, b.com" and "a.com b.com".
        for entry in list.split([',', ' ', '\t']).filter(|e| !e.is_empty()) {
            if entry == "*" {
                no_proxy.everything = true;
            } else if let Some(bypass) = Bypass::parse(entry) {
                no_proxy.entries.push(bypass);
            }
        }
        no_proxy
    }

    /// Names are compared as names and addresses as addresses: nothing is
    /// resolved, so `localhost` does not cover `127.0.0.1` (as in curl).
    fn matches(&self, host: &str, port: u16) -> bool {
        if self.everything {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && match (&entry.target, ip) {
                    (Bypassed::Ip { network, bits }, Some(ip)) => in_network(ip, *network, *bits),
                    (Bypassed::Domain(domain), None) => {
                        name == *domain
                            || name
                                .strip_suffix(domain.as_str())
                                .is_some_and(|below| below.ends_with('.'))
                    }
                    _ => false,
                }
        })
    }
}

impl Bypass {
    fn parse(entry: &str) -> Option<Bypass> {
        // curl documents IPv6 entries without brackets (`::1`, `fd00::/8`):
        // their colons are no port separator. With brackets a port may follow.
        let bare_ipv6 = !entry.starts_with('[') && entry.matches(':').count() > 1;
        let (address, port) = if bare_ipv6 {
            (entry, None)
        } else {
            split_host_port(entry)?
        };
        let (ip, bits) = match address.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().ok()?)),
            None => (address, None),
        };
        if let Ok(network) = ip.parse::<IpAddr>() {
            let max = if network.is_ipv4() { 32 } else { 128 };
            let bits = bits.unwrap_or(max);
            let target = Bypassed::Ip { network, bits };
            return (bits <= max).then_some(Bypass { target, port });
        }
        if bare_ipv6 || bits.is_some() {
            return None;
        }
        // `*.contoso.com` (as Windows bypass lists write it) means what
        // `.contoso.com` means to curl.
        let name = address
            .strip_prefix("*.")
            .unwrap_or(address)
            .trim_start_matches('.')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name.is_empty() {
            return None;
        }
        Some(Bypass {
            target: Bypassed::Domain(name),
            port,
        })
    }
}

/// True when the first `bits` bits of `ip` and `network` agree (same family).
fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    let (ip, network, width) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    ip & mask == network & mask
}

/// Asks `proxy`, over `stream` (a fresh TCP connection to it), for a tunnel
/// to `host:port`: writes `CONNECT` (with `Proxy-Authorization` when the
/// proxy URL carries credentials) and reads the answer's head, at most
/// [`MAX_CONNECT_RESPONSE_HEAD`] bytes. On 2xx the stream is the tunnel,
/// with not one byte of it read past the head; any other answer is a
/// [`HostError::ProxyRefused`] or [`HostError::ProxyProtocol`] naming the
/// proxy without its credentials. The caller bounds the time it takes.
pub async fn open_tunnel<S>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), HostError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let target = HostPort(host.trim_start_matches('[').trim_end_matches(']'), port).to_string();
    let failed = |problem: &str| HostError::ProxyProtocol {
        proxy: proxy.to_string(),
        target: target.clone(),
        problem: problem.to_string(),
    };
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(failed("not a valid CONNECT target"));
    }
    let authorization = proxy.authorization();
    // Room for the whole head at once: a reallocation would leave a copy of
    // the credentials behind, unscrubbed.
    let mut head = String::with_capacity(
        64 + 2 * target.len() + authorization.as_ref().map_or(0, |a| a.expose().len()),
    );
    head.push_str(&format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"));
    if let Some(authorization) = &authorization {
        head.push_str("Proxy-Authorization: ");
        head.push_str(authorization.expose());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    // The head holds the credentials: a `Secret`, scrubbed when dropped.
    let head = Secret::new(head);
    let written = async {
        stream.write_all(head.expose().as_bytes()).await?;
        stream.flush().await
    };
    written
        .await
        .map_err(|_| failed("the proxy closed the connection before CONNECT was sent"))?;

    // Byte by byte, so that nothing after the head (the start of the
    // tunnel) is consumed; a head is short and this happens once per
    // connection, before a TLS handshake that costs far more.
    let mut answer = Vec::with_capacity(256);
    loop {
        let mut byte = [0u8; 1];
        match stream.read(&mut byte).await {
            Ok(1) => answer.push(byte[0]),
            _ => return Err(failed("the proxy closed the connection before answering")),
        }
        if answer.ends_with(b"\r\n\r\n") || answer.ends_with(b"\n\n") {
            break;
        }
        if answer.len() >= MAX_CONNECT_RESPONSE_HEAD {
            return Err(failed("the proxy's answer head is longer than 8 KiB"));
        }
    }
    let status_line = answer
        .split(|&b| b == b'\n')
        .next()
        .map(|line| String::from_utf8_lossy(line).trim_end().to_string())
        .unwrap_or_default();
    let (status, reason) = parse_status_line(&status_line)
        .ok_or_else(|| failed("the proxy's answer is not HTTP/1.x"))?;
    if (200..300).contains(&status) {
        return Ok(());
    }
    Err(HostError::ProxyRefused {
        proxy: proxy.to_string(),
        target,
        status,
        reason,
    })
}

/// `HTTP/1.1 407 Proxy Authentication Required` → (407, the reason, kept
/// printable and short: it is the proxy's text going into a message).
fn parse_status_line(line: &str) -> Option<(u16, String)> {
    let rest = line.strip_prefix("HTTP/1.")?;
    let mut parts = rest.splitn(3, ' ');
    let _minor = parts.next().filter(|m| m.len() == 1)?;
    let code = parts.next().filter(|c| c.len() == 3)?;
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|s| (100..600).contains(s))?;
    let reason: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_REASON)
        .collect();
    Some((status, reason.trim().to_string()))
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
