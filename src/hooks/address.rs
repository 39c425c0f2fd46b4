//! Where a subscriber URL points: public, or somewhere only the Worker's own network reaches
//! (loopback, private ranges, link-local, cloud metadata). Pure.
//!
//! A Worker cannot resolve DNS before it fetches, so the check is on the URL's host as the fetch
//! will read it: the host is parsed the way the WHATWG URL parser does (percent-decoded, every
//! IPv4 spelling it accepts: `2130706433`, `0x7f000001`, `0177.1`, `127.1`; IPv6 with embedded
//! IPv4), and names that always mean this machine or its private network (`localhost`,
//! `*.localhost`, `*.internal` such as `metadata.google.internal`, `*.local`, single-label
//! names) are refused. A public name that resolves to a private address is not caught here.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a URL's host is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL's host {0:?} is not a valid host")]
    Invalid(String),
    #[error("the URL's host {0:?} is not ASCII; use its punycode (xn--) form")]
    NotAscii(String),
    #[error("the URL's host {host:?} is {what}, which a subscription may not reach")]
    Private { host: String, what: &'static str },
}

/// A URL's host as the fetch reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// A lower-case ASCII domain name without a trailing dot.
    Name(String),
}

/// Refuses `url` if its host is not public.
pub fn check_public(url: &str) -> Result<Host, AddressError> {
    let host = parse_host(url)?;
    let what = match &host {
        Host::V4(ip) => v4_class(*ip),
        Host::V6(ip) => v6_class(*ip),
        Host::Name(n) => name_class(n),
    };
    match what {
        Some(what) => Err(AddressError::Private { host: host_text(url), what }),
        None => Ok(host),
    }
}

/// The raw authority's host, as written (for messages).
fn host_text(url: &str) -> String {
    authority_host(url).unwrap_or_default().to_owned()
}

/// The host part of `scheme://[userinfo@]host[:port]/…` as written.
fn authority_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    // Special schemes end the authority at `/`, `\`, `?` or `#`.
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        // An unclosed bracket is left whole, for the parser to refuse.
        return Some(host_port.find(']').map_or(host_port, |close| &host_port[..=close]));
    }
    Some(host_port.split_once(':').map_or(host_port, |(h, _)| h))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) =
                (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Parses a URL's host the way the WHATWG URL parser does for http(s).
pub fn parse_host(url: &str) -> Result<Host, AddressError> {
    let raw = authority_host(url).ok_or(AddressError::NoHost)?;
    if raw.is_empty() {
        return Err(AddressError::NoHost);
    }
    if let Some(inner) = raw.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| AddressError::Invalid(raw.into()))?;
        return inner.parse::<Ipv6Addr>().map(Host::V6).map_err(|_| AddressError::Invalid(raw.into()));
    }
    let decoded = percent_decode(raw);
    let text = String::from_utf8(decoded).map_err(|_| AddressError::Invalid(raw.into()))?;
    if !text.is_ascii() {
        return Err(AddressError::NotAscii(raw.into()));
    }
    let host = text.to_ascii_lowercase();
    if host.is_empty()
        || host.contains([
            '\0', '\t', '\n', '\r', ' ', '#', '/', ':', '<', '>', '?', '@', '[', '\\', ']', '^', '|', '%',
        ])
    {
        return Err(AddressError::Invalid(raw.into()));
    }
    if ends_in_number(&host) {
        return parse_ipv4(&host).map(Host::V4).ok_or_else(|| AddressError::Invalid(raw.into()));
    }
    Ok(Host::Name(host.strip_suffix('.').unwrap_or(&host).to_owned()))
}

/// The WHATWG "ends in a number" check: such a host must parse as IPv4 or is invalid.
fn ends_in_number(host: &str) -> bool {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.last() == Some(&"") {
        if parts.len() == 1 {
            return false;
        }
        parts.pop();
    }
    let last = parts.last().copied().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    parse_ipv4_number(last).is_some()
}

/// One IPv4 part: `0x…` hex, `0…` octal, else decimal.
fn parse_ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (h, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Longer than any valid part: out of range (and no overflow while parsing).
    let digits = digits.trim_start_matches('0');
    if digits.len() > 12 {
        return Some(u64::MAX);
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The WHATWG IPv4 parser: 1-4 parts, all but the last at most 255, the last filling the rest.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.last() == Some(&"") && parts.len() > 1 {
        parts.pop();
    }
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let numbers: Vec<u64> = parts.iter().map(|p| parse_ipv4_number(p)).collect::<Option<_>>()?;
    let (last, init) = numbers.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let room_bits = 8 * (5 - numbers.len() as u32);
    if *last >= 1u64 << room_bits {
        return None;
    }
    let mut v: u64 = *last;
    for (i, n) in init.iter().enumerate() {
        v += n << (8 * (3 - i as u32));
    }
    Some(Ipv4Addr::from(u32::try_from(v).ok()?))
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

/// What a non-public IPv4 address is, or `None` if it is public.
pub fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "this network (0.0.0.0/8)"),
        ([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
        ([100, 64, 0, 0], 10, "a shared address (100.64.0.0/10)"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([169, 254, 0, 0], 16, "a link-local address (cloud metadata lives here)"),
        ([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
        ([192, 0, 0, 0], 24, "an IETF protocol address (192.0.0.0/24)"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
        ([198, 18, 0, 0], 15, "a benchmarking address (198.18.0.0/15)"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
    ];
    RANGES.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, what)| *what)
}

/// What a non-public IPv6 address is (embedded IPv4 judged as IPv4), or `None` if public.
pub fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64).
    if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return v4_class(embedded(s[6], s[7]));
    }
    if s[..6] == [0; 6] {
        return v4_class(embedded(s[6], s[7])).or(Some("an IPv4-compatible address (deprecated)"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_class(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return v4_class(embedded(s[1], s[2]));
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("a unique local address (fc00::/7)"),
        x if x & 0xffc0 == 0xfe80 => Some("a link-local address (fe80::/10)"),
        x if x & 0xffc0 == 0xfec0 => Some("a site-local address (fec0::/10)"),
        x if x & 0xff00 == 0xff00 => Some("a multicast address"),
        0x0100 if s[1..4] == [0, 0, 0] => Some("a discard address (100::/64)"),
        0x2001 if s[1] == 0x0db8 => Some("a documentation address"),
        _ => None,
    }
}

/// What a name that never leaves the local network is, or `None`.
pub fn name_class(name: &str) -> Option<&'static str> {
    const SUFFIXES: &[&str] =
        &["localhost", "local", "internal", "localdomain", "home.arpa", "lan", "intranet"];
    if !name.contains('.') {
        return Some("a single-label name (resolved on the local network)");
    }
    let is_or_under = |s: &str| name == s || name.strip_suffix(s).is_some_and(|p| p.ends_with('.'));
    if is_or_under("localhost") {
        return Some("this machine (localhost)");
    }
    if is_or_under("metadata.google.internal") {
        return Some("a cloud metadata service");
    }
    SUFFIXES.iter().any(|s| is_or_under(s)).then_some("a local network name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        matches!(check_public(url), Err(AddressError::Private { .. }))
    }

    #[test]
    fn every_ipv4_spelling_of_loopback_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0X7F.0.0.1/",
            "http://0177.0.0.1/",
            "http://0177.1/",
            "http://127.0.1/",
            "http://127.0.0.1./",
            "http://%31%32%37.0.0.1/",
            "https://user:pw@127.0.0.1:8443/x",
            "http://0/",
            "http://0.0.0.0/",
            "http://127.0.0.1\\@example.com/",
        ] {
            assert!(refused(url), "{url} should be refused: {:?}", check_public(url));
        }
        assert_eq!(parse_host("http://2130706433/"), Ok(Host::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert_eq!(parse_host("http://0x7f000001/"), Ok(Host::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert_eq!(parse_host("http://0177.1/"), Ok(Host::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert_eq!(parse_host("http://192.168.257/"), Ok(Host::V4(Ipv4Addr::new(192, 168, 1, 1))));
    }

    #[test]
    fn private_link_local_and_metadata_are_refused() {
        for url in [
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://0xa9fea9fe/",
            "https://100.64.0.1/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://METADATA.google.internal./",
            "https://metadata/",
            "https://0x1g/",
            "https://localhost:8080/",
            "https://api.localhost/",
            "https://printer.local/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::10.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[ff02::1]/",
        ] {
            assert!(refused(url), "{url} should be refused: {:?}", check_public(url));
        }
    }

    #[test]
    fn public_hosts_pass() {
        for url in [
            "https://hooks.example.com/x",
            "https://8.8.8.8/",
            "https://172.32.0.1/",
            "https://[2606:4700::1111]/",
            "https://[::ffff:8.8.8.8]/",
            "https://example.com.:443/",
            "https://1.2.3.4.example.com/",
            "https://localhost.example.com/",
            "https://0x7f.example.com/",
        ] {
            assert!(check_public(url).is_ok(), "{url}: {:?}", check_public(url));
        }
    }

    #[test]
    fn hosts_that_are_not_hosts_are_refused() {
        for url in ["https://999.0.0.1/", "https://1.2.3.4.5/", "https://4294967296/", "https://[::1/"] {
            assert!(
                matches!(check_public(url), Err(AddressError::Invalid(_))),
                "{url}: {:?}",
                check_public(url)
            );
        }
        assert_eq!(check_public("https:///x"), Err(AddressError::NoHost));
        assert!(matches!(check_public("https://ｌocalhost/"), Err(AddressError::NotAscii(_))));
        assert!(matches!(check_public("https://exa%00mple.com/"), Err(AddressError::Invalid(_))));
        assert!(matches!(
            check_public(&format!("https://{}/", "9".repeat(40))),
            Err(AddressError::Invalid(_))
        ));
    }
}
