//! `allowed_targets`: which addresses a module may be pointed at through `/probe?target=`.
//!
//! Without it the exporter is an open proxy: anyone who can reach `/probe` could make it connect
//! anywhere its network allows, with the module's credentials. A destination is allowed when one
//! rule matches it; nothing matches by default.
//!
//! - `10.0.0.0/8`, `10.1.2.3`, `fd00::/8`: a CIDR or a single IP, for targets written as IP
//!   literals. A host name never matches an IP rule, even when it would resolve into the range:
//!   resolving here and connecting later could give two different answers.
//! - `*.redis.svc.cluster.local`, `localhost`, `db-?`: a host-name glob, case-insensitive; `*` matches
//!   any run of characters (dots included) and `?` one character.
//! - `https://status.example.com/api/`, `redis://cache.internal:6380/`, `unix:///run/redis/`: a URL
//!   prefix. Scheme, host and port must be equal (a rule without a port takes the scheme's default,
//!   or any port when the scheme has none, like `mysql://db.internal/`), and the target's path must
//!   start with the rule's path at a `/` boundary.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use fanout_collectors::config::{Destination, Host};

/// The compiled `allowed_targets` of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<Rule>);

/// One rule of an allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Cidr {
        network: IpAddr,
        prefix: u8,
    },
    Glob(String),
    Url {
        scheme: String,
        host: Host,
        port: Option<u16>,
        path: String,
    },
    Socket(PathBuf),
}

impl AllowList {
    /// Compile the rules; the error names the rule (by index) and says what was expected.
    pub fn parse(rules: &[String]) -> Result<Self, (usize, String)> {
        rules
            .iter()
            .enumerate()
            .map(|(i, text)| Rule::parse(text.trim()).map_err(|why| (i, why)))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether any rule allows `destination`.
    pub fn allows(&self, destination: &Destination) -> bool {
        self.0.iter().any(|rule| rule.allows(destination))
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match rule {
                Rule::Cidr { network, prefix } => write!(f, "{network}/{prefix}")?,
                Rule::Glob(glob) => f.write_str(glob)?,
                Rule::Url {
                    scheme,
                    host,
                    port,
                    path,
                } => {
                    write!(f, "{scheme}://{host}")?;
                    if let Some(port) = port {
                        write!(f, ":{port}")?;
                    }
                    f.write_str(path)?;
                }
                Rule::Socket(path) => write!(f, "unix://{}", path.display())?,
            }
        }
        Ok(())
    }
}

impl Rule {
    fn parse(text: &str) -> Result<Self, String> {
        let quoted = shown(text);
        if text.is_empty() {
            return Err("empty rule: expected a CIDR, a host-name glob or a URL prefix".into());
        }
        if let Some(path) = text.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{quoted:?}: a unix socket rule needs an absolute path (unix:///run/redis/)"
                ));
            }
            return Ok(Self::Socket(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Self::url(text);
        }
        if let Some((network, prefix)) = text.split_once('/') {
            let network: IpAddr = network
                .parse()
                .map_err(|_| format!("{quoted:?}: expected a CIDR such as 10.0.0.0/8"))?;
            let network = network.to_canonical();
            let bits = if network.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{quoted:?}: the prefix length must be 0 to {bits}"))?;
            if mask(network, prefix) != network {
                return Err(format!(
                    "{quoted:?}: host bits are set; write the network address ({}/{prefix})",
                    mask(network, prefix)
                ));
            }
            return Ok(Self::Cidr { network, prefix });
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Ok(Self::Cidr {
                network: ip,
                prefix,
            });
        }
        let plain = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?'));
        if !plain {
            return Err(format!(
                "{quoted:?}: expected a CIDR (10.0.0.0/8), a host-name glob (*.svc.cluster.local) \
                 or a URL prefix (https://status.example.com/)"
            ));
        }
        Ok(Self::Glob(text.to_ascii_lowercase()))
    }

    fn url(text: &str) -> Result<Self, String> {
        let quoted = shown(text);
        let url = url::Url::parse(text).map_err(|e| format!("{quoted:?}: invalid URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{quoted:?}: a rule holds no credentials: remove the user and password"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{quoted:?}: a rule is a scheme, host, port and path prefix, without query or fragment"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{quoted:?}: the URL has no host"))?;
        if host.contains('*') {
            return Err(format!(
                "{quoted:?}: a URL rule names one host; use a host-name glob for many"
            ));
        }
        let Ok(Destination::Net { host, .. }) = Destination::net(url.scheme(), host, 0, "") else {
            return Err(format!(
                "{quoted:?}: the host is not a plain DNS name or IP"
            ));
        };
        // A rule written without a path (`mysql://db.internal`) allows every path.
        let path = match url.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        Ok(Self::Url {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port_or_known_default(),
            path,
        })
    }

    fn allows(&self, destination: &Destination) -> bool {
        match (self, destination) {
            (
                Self::Cidr { network, prefix },
                Destination::Net {
                    host: Host::Ip(ip), ..
                },
            ) => ip.is_ipv4() == network.is_ipv4() && mask(*ip, *prefix) == *network,
            (
                Self::Glob(glob),
                Destination::Net {
                    host: Host::Name(name),
                    ..
                },
            ) => glob_matches(glob.as_bytes(), name.as_bytes()),
            (
                Self::Url {
                    scheme,
                    host,
                    port,
                    path,
                },
                Destination::Net {
                    scheme: s,
                    host: h,
                    port: p,
                    path: target_path,
                },
            ) => {
                scheme == s
                    && host == h
                    && port.is_none_or(|port| port == *p)
                    && path_within(
                        path,
                        if target_path.is_empty() {
                            "/"
                        } else {
                            target_path
                        },
                    )
            }
            (Self::Socket(rule), Destination::Unix(path)) => socket_within(rule, path),
            _ => false,
        }
    }
}

/// A rule as errors quote it: with anything that may be a user or password (up to the last `@`,
/// after the scheme if there is one) left out, since errors are logged and answered to
/// `POST /-/reload`.
fn shown(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    match rest.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}[credentials]@{host}"),
        None => text.to_owned(),
    }
}

/// `ip` with all but the first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u32::MAX << (32 - u32::from(prefix)))
            };
            IpAddr::V4(kept.into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = if prefix == 0 {
                0
            } else {
                bits & (u128::MAX << (128 - u32::from(prefix)))
            };
            IpAddr::V6(kept.into())
        }
    }
}

/// `*` matches any run of bytes, `?` exactly one; iterative, so a hostile pattern cannot blow the
/// stack or take exponential time.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether `path` lies under the rule's `prefix` at a `/` boundary (`/api` allows `/api` and
/// `/api/x`, not `/apix`).
fn path_within(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix) || path == prefix.trim_end_matches('/');
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether a socket path lies under a rule's path, component by component (so `..` cannot escape:
/// a path with `..` is never allowed).
fn socket_within(rule: &Path, path: &Path) -> bool {
    let escapes = path.components().any(|c| {
        matches!(
            c,
            std::path::Component::ParentDir | std::path::Component::CurDir
        )
    });
    !escapes && path.starts_with(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> AllowList {
        let rules: Vec<String> = rules.iter().map(|r| (*r).to_owned()).collect();
        match AllowList::parse(&rules) {
            Ok(list) => list,
            Err((i, why)) => panic!("rule {i}: {why}"),
        }
    }

    fn net(scheme: &str, host: &str, port: u16, path: &str) -> Destination {
        match Destination::net(scheme, host, port, path) {
            Ok(d) => d,
            Err(e) => panic!("{host}: {e}"),
        }
    }

    #[test]
    fn cidr_rules_match_ip_literals_only() {
        let allow = list(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]);
        assert!(allow.allows(&net("mysql", "10.200.3.4", 3306, "")));
        assert!(allow.allows(&net("redis", "192.168.1.7", 6379, "/0")));
        assert!(!allow.allows(&net("redis", "192.168.1.8", 6379, "/0")));
        assert!(allow.allows(&net("redis", "[fd12::1]", 6379, "/0")));
        assert!(!allow.allows(&net("redis", "fe80::1", 6379, "/0")));
        // An IPv4-mapped IPv6 literal is the IPv4 address it maps.
        assert!(allow.allows(&net("mysql", "::ffff:10.1.1.1", 3306, "")));
        assert!(!allow.allows(&net("mysql", "11.0.0.1", 3306, "")));
        // A name is never judged by an IP rule, whatever it resolves to.
        assert!(!allow.allows(&net("mysql", "localhost", 3306, "")));
        assert!(list(&["0.0.0.0/0"]).allows(&net("mysql", "1.2.3.4", 1, "")));
        assert!(!list(&["0.0.0.0/0"]).allows(&net("mysql", "::1", 1, "")));
    }

    #[test]
    fn globs_match_whole_names_case_insensitively() {
        let allow = list(&["*.Redis.svc.cluster.local", "db-?", "localhost"]);
        assert!(allow.allows(&net("redis", "redis-0.redis.svc.cluster.local", 6379, "/0")));
        assert!(allow.allows(&net("redis", "A.B.REDIS.svc.cluster.local", 6379, "/0")));
        assert!(!allow.allows(&net(
            "redis",
            "redis.svc.cluster.local.evil.com",
            6379,
            "/0"
        )));
        assert!(!allow.allows(&net("redis", "redis.svc.cluster.local", 6379, "/0")));
        assert!(allow.allows(&net("mysql", "db-1", 3306, "")));
        assert!(!allow.allows(&net("mysql", "db-12", 3306, "")));
        assert!(allow.allows(&net("mysql", "localhost", 3306, "")));
        assert!(!allow.allows(&net("mysql", "127.0.0.1", 3306, "")));
        // Pathological patterns finish quickly.
        let many = "*a".repeat(50);
        assert!(glob_matches(many.as_bytes(), "a".repeat(60).as_bytes()));
        assert!(!glob_matches(
            many.as_bytes(),
            format!("{}b", "a".repeat(49)).as_bytes()
        ));
        assert!(glob_matches(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!glob_matches(b"*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn url_prefixes_need_scheme_host_port_and_a_path_boundary() {
        let allow = list(&["https://status.example.com/api", "redis://cache.internal/"]);
        assert!(allow.allows(&net("https", "status.example.com", 443, "/api")));
        assert!(allow.allows(&net("https", "status.example.com", 443, "/api/health")));
        assert!(!allow.allows(&net("https", "status.example.com", 443, "/apix")));
        assert!(!allow.allows(&net("https", "status.example.com", 8443, "/api")));
        assert!(!allow.allows(&net("http", "status.example.com", 443, "/api")));
        assert!(!allow.allows(&net("https", "status.example.com.evil.com", 443, "/api")));
        // redis has no known default port: a rule without one allows any.
        assert!(allow.allows(&net("redis", "cache.internal", 6380, "/2")));
        assert!(!allow.allows(&net("rediss", "cache.internal", 6380, "/2")));
        let sockets = list(&["unix:///run/redis/"]);
        assert!(sockets.allows(&Destination::Unix("/run/redis/redis.sock".into())));
        assert!(!sockets.allows(&Destination::Unix("/run/redis/../mysqld/x.sock".into())));
        assert!(!sockets.allows(&Destination::Unix("/run/redisx.sock".into())));
        assert!(!sockets.allows(&net("redis", "run", 6379, "/0")));
    }

    #[test]
    fn bad_rules_say_what_was_expected() {
        let err = |rules: &[&str]| {
            let rules: Vec<String> = rules.iter().map(|r| (*r).to_owned()).collect();
            match AllowList::parse(&rules) {
                Ok(list) => panic!("accepted {list}"),
                Err(e) => e,
            }
        };
        assert_eq!(err(&["10.0.0.0/8", "10.0.0.1/8"]).0, 1);
        assert!(
            err(&["10.0.0.1/8"]).1.contains("10.0.0.0/8"),
            "{:?}",
            err(&["10.0.0.1/8"])
        );
        assert!(err(&["10.0.0.0/33"]).1.contains("0 to 32"));
        assert!(err(&["bad host/8"]).1.contains("CIDR"));
        assert!(err(&["a b"]).1.contains("host-name glob"));
        assert!(err(&[""]).1.contains("empty rule"));
        assert!(err(&["https://u:p@h/"]).1.contains("no credentials"));
        // Errors are logged and answered to a reload: a rule's credentials are not quoted.
        for rule in [
            "https://u:s3cr3t@h/",
            "https://u:s3cr3t@h:x/",
            "unix://u:s3cr3t@",
            "u:s3cr3t@h",
        ] {
            let (_, why) = err(&[rule]);
            assert!(!why.contains("s3cr3t"), "{why}");
            assert!(why.contains("[credentials]@"), "{why}");
        }
        assert!(err(&["https://*.h/"]).1.contains("host-name glob"));
        assert!(err(&["unix://run"]).1.contains("absolute path"));
    }

    #[test]
    fn display_lists_the_rules_as_compiled() {
        let allow = list(&["10.0.0.0/8", "*.X.local", "https://h/p", "unix:///run/"]);
        assert_eq!(
            allow.to_string(),
            "10.0.0.0/8, *.x.local, https://h:443/p, unix:///run/"
        );
        let v6 = list(&["redis://[fd00::1]:6380/"]);
        assert_eq!(v6.to_string(), "redis://[fd00::1]:6380/");
        assert_eq!(
            net("redis", "[fd00::1]", 6380, "/0").to_string(),
            "redis://[fd00::1]:6380"
        );
    }

    mod props {
        use proptest::prelude::*;

        use super::super::*;

        /// Texts shaped like each kind of rule, and some that are not.
        fn rule_text() -> impl Strategy<Value = String> {
            prop_oneof![
                (any::<std::net::IpAddr>(), 0u8..=128).prop_map(|(ip, p)| format!("{ip}/{p}")),
                any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
                "[a-zA-Z0-9*?_.-]{1,20}",
                (
                    proptest::sample::select(vec![
                        "http", "https", "redis", "rediss", "mysql", "ftp"
                    ]),
                    "[a-zA-Z0-9.-]{1,12}|\\[[0-9a-f:]{2,12}\\]",
                    proptest::option::of(0u32..70_000),
                    "(/[a-z0-9._%-]{0,6}){0,3}",
                )
                    .prop_map(|(scheme, host, port, path)| match port {
                        Some(port) => format!("{scheme}://{host}:{port}{path}"),
                        None => format!("{scheme}://{host}{path}"),
                    }),
                "unix://[a-z/.]{0,16}",
                any::<String>(),
            ]
        }

        proptest! {
            /// Any rule text parses or is refused without panicking; a rule that parses is shown
            /// (on the status page, by `--config.check`) as text that parses back to the same rule.
            #[test]
            fn rules_parse_back_from_how_they_are_shown(text in rule_text()) {
                if let Ok(list) = AllowList::parse(std::slice::from_ref(&text)) {
                    let shown = list.to_string();
                    prop_assert_eq!(AllowList::parse(std::slice::from_ref(&shown)), Ok(list), "{} shown as {}", text, shown);
                }
            }

            #[test]
            fn a_network_allows_its_own_addresses(ip in any::<std::net::IpAddr>(), prefix in 0u8..=128) {
                let ip = ip.to_canonical();
                let bits = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = prefix.min(bits);
                let network = mask(ip, prefix);
                let list = AllowList::parse(&[format!("{network}/{prefix}")]);
                prop_assert!(list.is_ok(), "{:?}", list);
                let host = match ip {
                    IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                };
                let reached = Destination::net("mysql", &host, 3306, "");
                prop_assert!(reached.is_ok());
                if let (Ok(list), Ok(reached)) = (list, reached) {
                    prop_assert!(list.allows(&reached));
                }
            }

            #[test]
            fn globs_never_panic_and_a_name_matches_itself(pattern in "[a-z*?.]{0,12}", name in "[a-z.]{0,12}") {
                let _ = glob_matches(pattern.as_bytes(), name.as_bytes());
                prop_assert!(glob_matches(name.as_bytes(), name.as_bytes()));
                prop_assert!(glob_matches(b"*", name.as_bytes()));
            }

            #[test]
            fn errors_never_show_credentials(
                password in "[a-z]{3}[A-Z]{3}[0-9]{2}",
                cut in proptest::sample::select(vec!["", "/", "?", "#", ":", "@"]),
                rest in "[ -~]{0,12}",
                scheme in proptest::sample::select(vec!["https", "redis", "mysql", "unix", "x"]),
            ) {
                for text in [
                    format!("{scheme}://user:{password}@{rest}"),
                    format!("{scheme}://user:{password}{cut}{rest}@host/"),
                    format!("{scheme}://{password}@host:{rest}/"),
                ] {
                    if let Err((_, e)) = AllowList::parse(std::slice::from_ref(&text)) {
                        prop_assert!(!e.contains(&password), "{}: {}", text, e);
                    }
                }
            }
        }
    }
}
