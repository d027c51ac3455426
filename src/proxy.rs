//! Which peers may tell the service who the client is.
//!
//! Behind a reverse proxy every connection comes from the proxy, so the client's address is in
//! the `X-Forwarded-For` (or RFC 7239 `Forwarded: for=`) header the proxy appends to. Clients can
//! send those headers too, so only entries added by proxies listed in `SIPAS_TRUSTED_PROXIES`
//! count: walking from the right, the first address that is not a trusted proxy is the client.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Addresses and networks of the reverse proxies in front of the service (empty: none, the peer
/// address is the client's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// A `trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadProxyEntry(pub String);

impl fmt::Display for BadProxyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trusted proxy `{}` is neither an IP address nor a network such as 10.0.0.0/8 or fd00::/8",
            self.0
        )
    }
}

impl std::error::Error for BadProxyEntry {}

impl FromStr for TrustedProxies {
    type Err = BadProxyEntry;

    /// Comma-separated addresses (`10.0.0.5`, `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let net = match entry.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => entry
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| BadProxyEntry(entry.to_string()))?,
            };
            nets.push(net);
        }
        Ok(Self { nets })
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.nets.iter().map(IpNet::to_string).collect();
        f.write_str(&list.join(","))
    }
}

impl<'de> serde::Deserialize<'de> for TrustedProxies {
    /// A TOML string (`"10.0.0.1, 10.1.0.0/16"`) or a list of strings.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let text = match Raw::deserialize(d)? {
            Raw::One(s) => s,
            Raw::Many(v) => v.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// 127.0.0.0/8 and ::1: what the deprecated `SIPAS_TRUST_PROXY=true` means.
    pub fn loopback() -> Self {
        "127.0.0.0/8,::1".parse().unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Adds every network of `other` not already listed.
    pub fn extend(&mut self, other: &TrustedProxies) {
        for net in &other.nets {
            if !self.nets.contains(net) {
                self.nets.push(*net);
            }
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: `peer` itself unless it is a trusted proxy; then, walking the
    /// forwarded chain (`hops`, oldest first, as the headers list them) from the right, the
    /// first address that is not a trusted proxy. An entry that is not an address (`unknown`,
    /// an obfuscated RFC 7239 name) ends the walk at the proxy that wrote it, and a chain made
    /// only of proxies gives its left-most one.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        hops: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        for hop in hops.rev() {
            match parse_node(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The address of an `X-Forwarded-For` entry or an RFC 7239 node: `1.2.3.4`, `1.2.3.4:80`,
/// `2001:db8::1`, `[2001:db8::1]:443`, optionally quoted.
pub fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"').trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let inside = rest.split(']').next()?;
        return inside.parse::<IpAddr>().ok().map(canonical);
    }
    // IPv4 with a port.
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The `for=` nodes of `Forwarded` header values, in order.
pub fn forwarded_for<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    forwarded_param(values, "for")
}

/// One parameter (`for`, `host`, `proto`) of every element of `Forwarded` header values, in
/// order; elements without it are skipped.
pub fn forwarded_param<'a>(values: impl Iterator<Item = &'a str>, name: &str) -> Vec<&'a str> {
    values
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().trim_matches('"'))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_networks() {
        let p: TrustedProxies = " 10.0.0.5 , 192.168.0.0/16,fd00::/8, ::1 ,"
            .parse()
            .unwrap();
        assert_eq!(p.to_string(), "10.0.0.5/32,192.168.0.0/16,fd00::/8,::1/128");
        assert!(p.contains(ip("10.0.0.5")) && !p.contains(ip("10.0.0.6")));
        assert!(p.contains(ip("192.168.44.1")) && p.contains(ip("fd12::3")));
        assert!(p.contains(ip("::ffff:10.0.0.5")), "IPv4-mapped IPv6");
        assert!(p.contains(ip("::1")) && !p.contains(ip("::2")));
        // Host bits in a network are dropped, not refused.
        let q: TrustedProxies = "10.1.2.3/8".parse().unwrap();
        assert!(q.contains(ip("10.200.0.1")));
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in [
            "localhost",
            "10.0.0.0/33",
            "10.0.0",
            "fd00::/129",
            "1.2.3.4:80",
        ] {
            let err = bad.parse::<TrustedProxies>().unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn loopback_alias() {
        let p = TrustedProxies::loopback();
        assert!(p.contains(ip("127.0.0.1")) && p.contains(ip("127.8.9.10")));
        assert!(p.contains(ip("::1")) && !p.contains(ip("10.0.0.1")));
    }

    #[test]
    fn right_most_untrusted_entry_is_the_client() {
        let p: TrustedProxies = "10.0.0.0/8, 2001:db8::/32".parse().unwrap();
        let walk = |peer: &str, chain: &str| {
            p.client_ip(ip(peer), chain.split(',').filter(|s| !s.trim().is_empty()))
        };
        // An untrusted peer: headers are ignored.
        assert_eq!(walk("203.0.113.1", "198.51.100.1"), ip("203.0.113.1"));
        // A trusted peer: the entry it appended.
        assert_eq!(walk("10.0.0.2", "203.0.113.7"), ip("203.0.113.7"));
        // Entries the client prepended do not count.
        assert_eq!(
            walk("10.0.0.2", "1.1.1.1, 9.9.9.9, 203.0.113.7"),
            ip("203.0.113.7")
        );
        // Several proxies: skip every trusted hop.
        assert_eq!(
            walk("10.0.0.2", "1.1.1.1, 203.0.113.7, 10.0.0.9, 2001:db8::5"),
            ip("203.0.113.7")
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(walk("10.0.0.2", ""), ip("10.0.0.2"));
        // Only proxies: the left-most one.
        assert_eq!(walk("10.0.0.2", "10.0.0.7, 10.0.0.8"), ip("10.0.0.7"));
        // Garbage from the client left of a real entry is never reached; garbage written by a
        // proxy stops at that proxy.
        assert_eq!(walk("10.0.0.2", "nonsense, 203.0.113.7"), ip("203.0.113.7"));
        assert_eq!(walk("10.0.0.2", "10.0.0.3, unknown"), ip("10.0.0.2"));
        // Ports and IPv6 forms.
        assert_eq!(walk("10.0.0.2", "203.0.113.7:5555"), ip("203.0.113.7"));
        assert_eq!(walk("10.0.0.2", "[2001:db9::1]:443"), ip("2001:db9::1"));
        assert_eq!(walk("::ffff:10.0.0.2", "203.0.113.7"), ip("203.0.113.7"));
        // No proxies configured: always the peer.
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("127.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn reads_rfc7239_elements() {
        let values = [
            "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
            "for=unknown;host=example.org",
        ];
        assert_eq!(
            forwarded_for(values.into_iter()),
            ["192.0.2.60", "[2001:db8:cafe::17]:4711", "unknown"]
        );
        assert_eq!(forwarded_param(values.into_iter(), "host"), ["example.org"]);
        assert_eq!(
            parse_node("[2001:db8:cafe::17]:4711"),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(parse_node("_hidden"), None);
    }
}
