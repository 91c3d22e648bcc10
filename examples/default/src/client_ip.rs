//! The client's address, as the logs show it: the peer that connected, unless that peer is a
//! proxy named in `TRUSTED_PROXIES`, whose `X-Forwarded-For` (or, without one, `Forwarded`)
//! header is then believed hop by hop. Anyone can send those headers, so without trusted
//! proxies they are ignored; and the trusted proxies must append to `X-Forwarded-For` (as
//! nginx, Envoy and cloud load balancers do), or a client could choose what is logged.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{FORWARDED, HeaderMap, X_FORWARDED_FOR};
use ipnet::IpNet;

/// The proxies whose forwarding headers are believed; registered as app data.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// IPv4 peers of a dual-stack listener arrive as `::ffff:a.b.c.d`: compared as IPv4.
    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The address of the client behind `peer`: walking the forwarding header from the
    /// nearest hop back, the first address that is not a trusted proxy. A hop that is not
    /// an address (`unknown`, an obfuscated name) ends the walk at the proxy that wrote it.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(address) if self.trusts(*address) => client = *address,
                Some(address) => return *address,
                None => return client,
            }
        }
        client
    }
}

/// The client's address for `request`, or `None` when the connection has no peer address
/// (a test request).
pub fn client_ip(request: &ServiceRequest) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    Some(match request.app_data::<TrustedProxies>() {
        Some(trusted) => trusted.client_of(peer, request.headers()),
        None => peer,
    })
}

/// An address that displays as [`IpAddr`] does, an IPv4 address in one piece: `Ipv4Addr`
/// writes seven (four numbers, three dots), and the request span records the client's
/// address on every request, where each piece costs the JSON log layer a call.
pub struct Address(pub IpAddr);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let IpAddr::V4(address) = self.0 else {
            return self.0.fmt(f);
        };
        let mut text = [0_u8; 15];
        let mut len = 0;
        for (index, octet) in address.octets().into_iter().enumerate() {
            if index > 0 {
                text[len] = b'.';
                len += 1;
            }
            for (place, shown) in [(100, octet >= 100), (10, octet >= 10), (1, true)] {
                if shown {
                    text[len] = b'0' + octet / place % 10;
                    len += 1;
                }
            }
        }
        f.pad(std::str::from_utf8(&text[..len]).unwrap_or_default())
    }
}

/// Every hop of `X-Forwarded-For`, or of `Forwarded` (RFC 7239 `for=`) without one, from
/// the original client to the nearest proxy; `None` for a hop that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| {
        headers
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
    };
    if headers.contains_key(X_FORWARDED_FOR) {
        return values(X_FORWARDED_FOR).map(parse_address).collect();
    }
    values(FORWARDED)
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| name.eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| parse_address(node.trim_matches('"')))
        })
        .collect()
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]:4711` or `192.0.2.1:4711`.
fn parse_address(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|address| address.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            TrustedProxies::default().client_of(ip("198.51.100.7"), &forged),
            ip("198.51.100.7")
        );
        // A peer outside the trusted networks is not believed either.
        assert_eq!(
            trusted(&["10.0.0.0/8"]).client_of(ip("198.51.100.7"), &forged),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_nearest_back() {
        let proxies = trusted(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real address.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &chain), ip("203.0.113.9"));
        // Several header lines form one list.
        let split = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &split), ip("203.0.113.9"));
        // An entry that is not an address stops the walk at the proxy that wrote it.
        let unknown = headers(&[("x-forwarded-for", "unknown, 10.0.0.2")]);
        assert_eq!(proxies.client_of(ip("10.0.0.1"), &unknown), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_peers_of_a_dual_stack_listener_match_ipv4_networks() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let chain = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &chain),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client_of(ip("::ffff:198.51.100.7"), &chain),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn addresses_display_as_the_standard_library_displays_them() {
        for text in [
            "0.0.0.0",
            "9.10.99.100",
            "127.0.0.1",
            "255.255.255.255",
            "::1",
            "2001:db8::17",
            "::ffff:192.0.2.1",
        ] {
            assert_eq!(Address(ip(text)).to_string(), ip(text).to_string());
        }
    }

    #[test]
    fn the_forwarded_header_is_read_when_there_is_no_x_forwarded_for() {
        let proxies = trusted(&["10.0.0.0/8"]);
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &forwarded),
            ip("2001:db8:cafe::17")
        );
    }
}
