//! `[auth]`, `[[accounts]]`, `[[users]]`, `[[ip_auth]]` and `[auth] users_file` → the
//! core's [`AuthSpec`]. Passwords become HA1 (MD5 and SHA-256, for the realm) right here and
//! are dropped: nothing after this file ever sees one.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sipedge_core::auth::{
    ha1, parse_hex_ha1, split_register_aor, AccountSpec, Algorithm, AuthDb, AuthMode, AuthSettings,
    AuthSpec, IpAuthSpec, IpNet, NatMode, NatPing, UserSpec, DEFAULT_ALGORITHMS,
    DEFAULT_NONCE_TTL_SECS, MAX_USERNAME_BYTES,
};

#[path = "auth_reload.rs"]
pub(crate) mod reload;
#[path = "auth_users_file.rs"]
mod users_file;
use users_file::load_users_file;
pub(crate) use users_file::users_file_rows;

/// Largest `[auth] nonce_ttl_secs`.
pub const MAX_NONCE_TTL_SECS: u32 = 3600;

/// `[auth]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    realm: String,
    register: String,
    invite: String,
    username_must_match: bool,
    uri_must_match: bool,
    nonce_ttl_secs: u32,
    nonce_secret: String,
    users_file: String,
    algorithms: Vec<String>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            realm: String::new(),
            register: "auto".into(),
            invite: "auto".into(),
            username_must_match: true,
            uri_must_match: true,
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            nonce_secret: String::new(),
            users_file: String::new(),
            algorithms: DEFAULT_ALGORITHMS
                .iter()
                .map(|a| String::from_utf8_lossy(a.token()).into_owned())
                .collect(),
        }
    }
}

/// `[[accounts]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    name: String,
    #[serde(default)]
    channels: Option<u32>,
    #[serde(default)]
    cps: Option<u32>,
    #[serde(default)]
    cli: Vec<String>,
    /// Digest algorithms offered to its users (empty: `[auth] algorithms`).
    #[serde(default)]
    algorithms: Vec<String>,
}

/// `[[users]]` as written (also a users_file row).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    username: String,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    ha1: Option<String>,
    #[serde(default)]
    ha1_sha256: Option<String>,
    #[serde(default)]
    ip_whitelist: Vec<String>,
    #[serde(default)]
    nat: Option<String>,
    #[serde(default)]
    nat_ping: Option<String>,
    #[serde(default)]
    channels: Option<u32>,
    #[serde(default)]
    cps: Option<u32>,
    /// Digest algorithms offered to this user (empty: its account's, else `[auth]`'s).
    #[serde(default)]
    algorithms: Vec<String>,
}

impl RawUser {
    /// What the NAT settings need: username, domain, `nat`, `nat_ping` as written (`None`:
    /// not given, the `[nat]` default applies). Read by `config_nat::user_overrides`.
    pub(crate) fn nat_keys(&self) -> (&str, Option<&str>, Option<&str>, Option<&str>) {
        (
            &self.username,
            self.domain.as_deref(),
            self.nat.as_deref(),
            self.nat_ping.as_deref(),
        )
    }
}

impl std::fmt::Debug for RawUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password or HA1.
        f.debug_struct("RawUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `[[ip_auth]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpAuth {
    cidr: String,
    account: String,
    #[serde(default)]
    cli_auth: bool,
    /// AoRs (`user@domain`) a source in `cidr` may REGISTER without digest.
    #[serde(default)]
    register: Vec<String>,
    /// Issue 16: concurrent calls per source IP inside `cidr` (0/absent: unlimited).
    #[serde(default)]
    pub(crate) channels: Option<u32>,
    /// Issue 16: calls per second per source IP inside `cidr`.
    #[serde(default)]
    pub(crate) cps: Option<u32>,
}

/// The validated authentication config.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AuthSetup {
    /// What the core builds its tables from.
    pub spec: AuthSpec,
    /// `[auth] nonce_secret` decoded; `None`: generate one at start.
    pub nonce_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for AuthSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSetup")
            .field("spec", &self.spec)
            .field("nonce_secret", &self.nonce_secret.as_ref().map(|_| "<set>"))
            .finish()
    }
}

type Fail = (String, String);

fn mode(key: &str, v: &str, has_users: bool) -> Result<AuthMode, Fail> {
    match v {
        "digest" => Ok(AuthMode::Digest),
        "none" => Ok(AuthMode::None),
        // Kamailio operators expect digest as soon as users exist; without users the
        // default loopback edge stays open.
        "auto" if has_users => Ok(AuthMode::Digest),
        "auto" => Ok(AuthMode::None),
        other => Err((
            key.into(),
            format!("`{other}` is not one of \"auto\", \"digest\", \"none\""),
        )),
    }
}

/// A list of digest algorithm names (`key` names it in errors); empty stays empty.
fn parse_algorithms(key: &str, names: &[String]) -> Result<Vec<Algorithm>, Fail> {
    let mut algorithms = Vec::with_capacity(names.len());
    for (i, a) in names.iter().enumerate() {
        let alg = Algorithm::from_param(Some(a.as_bytes())).ok_or_else(|| {
            (
                format!("{key}[{i}]"),
                format!("`{a}` is not one of \"SHA-256\", \"MD5\""),
            )
        })?;
        if algorithms.contains(&alg) {
            return Err((format!("{key}[{i}]"), format!("`{a}` is listed twice")));
        }
        algorithms.push(alg);
    }
    Ok(algorithms)
}

fn hex_secret(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// Validates the auth sections; `domains` are the edge's (the realm defaults to the first),
/// `file` is the config file (a relative users_file is relative to its directory);
/// `case_sensitive` is `[registrar] case_sensitive`, which digest usernames follow.
pub fn parse(
    raw: RawAuth,
    accounts: Vec<RawAccount>,
    users: Vec<RawUser>,
    ip_auth: Vec<RawIpAuth>,
    domains: &[String],
    file: &str,
    case_sensitive: bool,
) -> Result<AuthSetup, Fail> {
    let realm = if raw.realm.trim().is_empty() {
        domains
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost".into())
    } else {
        raw.realm.trim().to_string()
    };
    if realm.contains(['"', '\\']) {
        return Err(("auth.realm".into(), "must not contain `\"` or `\\`".into()));
    }
    if !(1..=MAX_NONCE_TTL_SECS).contains(&raw.nonce_ttl_secs) {
        return Err((
            "auth.nonce_ttl_secs".into(),
            format!("{} is outside 1..={MAX_NONCE_TTL_SECS}", raw.nonce_ttl_secs),
        ));
    }
    let nonce_secret = if raw.nonce_secret.is_empty() {
        None
    } else {
        match hex_secret(&raw.nonce_secret) {
            Some(s) if s.len() >= 16 => Some(s),
            _ => {
                return Err((
                    "auth.nonce_secret".into(),
                    "must be at least 32 hex digits (16 bytes)".into(),
                ))
            }
        }
    };
    // Every user with the place it came from, for error messages.
    let mut all: Vec<(String, RawUser)> = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| (format!("users[{i}]"), u))
        .collect();
    if !raw.users_file.is_empty() {
        let base = Path::new(file).parent().unwrap_or(Path::new("."));
        let path = base.join(&raw.users_file);
        let rows = load_users_file(&path).map_err(|m| ("auth.users_file".to_string(), m))?;
        all.extend(rows);
    }
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    let mut out_users = Vec::with_capacity(all.len());
    for (place, u) in all {
        let spec = user_spec(&place, u, &realm)?;
        // Usernames follow `[registrar] case_sensitive`: two that differ only by case
        // would be one user.
        let name = if case_sensitive {
            spec.username.clone()
        } else {
            spec.username.to_ascii_lowercase()
        };
        let key = (spec.domain.clone().unwrap_or_default(), name);
        if let Some(first) = seen.get(&key) {
            let who = match &spec.domain {
                Some(d) => format!("{}@{d}", spec.username),
                None => spec.username.clone(),
            };
            return Err((
                format!("{place}.username"),
                format!("duplicate user `{who}`: {first} and {place}"),
            ));
        }
        seen.insert(key, place);
        out_users.push(spec);
    }
    let has_users = !out_users.is_empty();
    let algorithms = parse_algorithms("auth.algorithms", &raw.algorithms)?;
    if algorithms.is_empty() {
        return Err((
            "auth.algorithms".into(),
            "at least one algorithm is required".into(),
        ));
    }
    let settings = AuthSettings {
        algorithms,
        realm,
        register: mode("auth.register", &raw.register, has_users)?,
        invite: mode("auth.invite", &raw.invite, has_users)?,
        username_must_match: raw.username_must_match,
        uri_must_match: raw.uri_must_match,
        nonce_ttl_secs: raw.nonce_ttl_secs,
        case_sensitive,
    };
    let accounts = accounts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            Ok(AccountSpec {
                algorithms: parse_algorithms(&format!("accounts[{i}].algorithms"), &a.algorithms)?,
                name: a.name,
                channels: a.channels,
                cps: a.cps,
                cli: a.cli,
            })
        })
        .collect::<Result<_, Fail>>()?;
    let mut entries = Vec::with_capacity(ip_auth.len());
    for (i, e) in ip_auth.into_iter().enumerate() {
        let cidr = parse_cidr(&e.cidr).ok_or_else(|| {
            (
                format!("ip_auth[{i}].cidr"),
                format!("`{}` is not a CIDR", e.cidr),
            )
        })?;
        let mut register = Vec::with_capacity(e.register.len());
        for (j, a) in e.register.iter().enumerate() {
            let (user, host) = split_register_aor(a).ok_or_else(|| {
                (
                    format!("ip_auth[{i}].register[{j}]"),
                    format!("`{a}` is not user@domain"),
                )
            })?;
            register.push(format!("{user}@{host}"));
        }
        entries.push(IpAuthSpec {
            cidr,
            account: e.account,
            cli_auth: e.cli_auth,
            register,
        });
    }
    let spec = AuthSpec {
        settings,
        accounts,
        users: out_users,
        ip_auth: entries,
    };
    // References, shared prefixes, patterns: the core's own checks, run once here so
    // `--check` and a reload refuse what the shards would.
    AuthDb::build(&spec).map_err(|e| ("auth".to_string(), e.to_string()))?;
    Ok(AuthSetup { spec, nonce_secret })
}

/// `a.b.c.d/len`, `v6/len`, or a bare address (a host prefix).
fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

fn user_spec(place: &str, u: RawUser, realm: &str) -> Result<UserSpec, Fail> {
    let key = |k: &str| format!("{place}.{k}");
    if u.username.is_empty() || u.username.contains(['"', '\\', ':']) {
        return Err((
            key("username"),
            "must be non-empty, without `\"`, `\\` or `:`".into(),
        ));
    }
    if u.username.len() > MAX_USERNAME_BYTES {
        return Err((
            key("username"),
            format!("longer than {MAX_USERNAME_BYTES} bytes"),
        ));
    }
    let (ha1_md5, ha1_sha256) = match (&u.password, &u.ha1, &u.ha1_sha256) {
        (Some(p), None, None) => {
            let m = ha1(
                Algorithm::Md5,
                u.username.as_bytes(),
                realm.as_bytes(),
                p.as_bytes(),
            );
            let mut md5 = [0u8; 32];
            md5.copy_from_slice(&m[..32]);
            let sha = ha1(
                Algorithm::Sha256,
                u.username.as_bytes(),
                realm.as_bytes(),
                p.as_bytes(),
            );
            (Some(md5), Some(sha))
        }
        (None, md5, sha) if md5.is_some() || sha.is_some() => {
            let md5 = match md5 {
                Some(h) => Some(parse_hex_ha1::<32>(h).ok_or((
                    key("ha1"),
                    "must be 32 hex digits (MD5 of username:realm:password)".to_string(),
                ))?),
                None => None,
            };
            let sha = match sha {
                Some(h) => Some(parse_hex_ha1::<64>(h).ok_or((
                    key("ha1_sha256"),
                    "must be 64 hex digits (SHA-256 of username:realm:password)".to_string(),
                ))?),
                None => None,
            };
            (md5, sha)
        }
        (None, None, None) => {
            return Err((
                key("password"),
                "a user needs password, ha1 or ha1_sha256".into(),
            ))
        }
        _ => {
            return Err((
                key("password"),
                "give either password or ha1/ha1_sha256, not both".into(),
            ))
        }
    };
    let mut ip_whitelist = Vec::with_capacity(u.ip_whitelist.len());
    for (i, c) in u.ip_whitelist.iter().enumerate() {
        ip_whitelist.push(parse_cidr(c).ok_or_else(|| {
            (
                key(&format!("ip_whitelist[{i}]")),
                format!("`{c}` is not a CIDR"),
            )
        })?);
    }
    let nat = match u.nat.as_deref().unwrap_or("auto") {
        "auto" => NatMode::Auto,
        "force" => NatMode::Force,
        "disabled" => NatMode::Disabled,
        o => {
            return Err((
                key("nat"),
                format!("`{o}` is not one of \"auto\", \"force\", \"disabled\""),
            ))
        }
    };
    let nat_ping = match u.nat_ping.as_deref().unwrap_or("disabled") {
        "disabled" => NatPing::Disabled,
        "enabled" => NatPing::Enabled,
        "timeout" => NatPing::Timeout,
        o => {
            return Err((
                key("nat_ping"),
                format!("`{o}` is not one of \"disabled\", \"enabled\", \"timeout\""),
            ))
        }
    };
    let algorithms = parse_algorithms(&key("algorithms"), &u.algorithms)?;
    // A user's own list may only name algorithms it can answer (an inherited list is
    // narrowed to them silently, see `Offer`).
    for (i, a) in algorithms.iter().enumerate() {
        let (has, field) = match a {
            Algorithm::Md5 => (ha1_md5.is_some(), "ha1"),
            Algorithm::Sha256 => (ha1_sha256.is_some(), "ha1_sha256"),
        };
        if !has {
            return Err((
                key(&format!("algorithms[{i}]")),
                format!(
                    "the user has no {field} to answer {}",
                    String::from_utf8_lossy(a.token())
                ),
            ));
        }
    }
    let domain = u
        .domain
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    Ok(UserSpec {
        algorithms,
        username: u.username,
        domain,
        account: u.account,
        ha1_md5,
        ha1_sha256,
        ip_whitelist,
        nat,
        nat_ping,
        channels: u.channels,
        cps: u.cps,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use sipedge_core::auth::{ha1, Algorithm, AuthMode, NatPing};

    fn parse(text: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(text, "/nonexistent/dir/test.toml")
    }

    #[test]
    fn default_is_open_and_users_turn_digest_on() {
        let c = parse("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.auth.spec.settings.register, AuthMode::None);
        assert_eq!(c.auth.spec.settings.realm, "localhost");
        let c = parse(
            "[server]\ndomains = [\"example.com\"]\n[[accounts]]\nname = \"a\"\n[[users]]\nusername = \"alice\"\naccount = \"a\"\npassword = \"pw\"\nnat_ping = \"timeout\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let s = &c.auth.spec;
        assert_eq!(
            (s.settings.register, s.settings.invite),
            (AuthMode::Digest, AuthMode::Digest)
        );
        assert_eq!(s.settings.realm, "example.com");
        let u = &s.users[0];
        assert_eq!(u.nat_ping, NatPing::Timeout);
        let want = ha1(Algorithm::Sha256, b"alice", b"example.com", b"pw");
        assert_eq!(u.ha1_sha256, Some(want));
        let md5 = ha1(Algorithm::Md5, b"alice", b"example.com", b"pw");
        assert_eq!(u.ha1_md5.map(|h| h.to_vec()), Some(md5[..32].to_vec()));
        // The password is nowhere in the validated config, nor in its Debug.
        assert!(!format!("{c:?}").contains("pw\""), "{c:?}");
        let c = parse("[auth]\nregister = \"none\"\n[[users]]\nusername = \"a\"\nha1 = \"0123456789ABCDEF0123456789abcdef\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.auth.spec.settings.register, AuthMode::None);
        assert_eq!(
            c.auth.spec.users[0].ha1_md5.as_ref().map(|h| &h[..]),
            Some(&b"0123456789abcdef0123456789abcdef"[..])
        );
        assert_eq!(c.auth.spec.users[0].ha1_sha256, None);
    }

    #[test]
    fn md5_by_default_sha256_where_asked_for() {
        let c = parse("[[accounts]]\nname = \"a\"\nalgorithms = [\"SHA-256\", \"MD5\"]\n[[users]]\nusername = \"alice\"\npassword = \"pw\"\n[[users]]\nusername = \"bob\"\naccount = \"a\"\npassword = \"pw\"\n[[users]]\nusername = \"carol\"\npassword = \"pw\"\nalgorithms = [\"SHA-256\"]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = &c.auth.spec;
        assert_eq!(s.settings.algorithms, [Algorithm::Md5]);
        assert_eq!(
            s.accounts[0].algorithms,
            [Algorithm::Sha256, Algorithm::Md5]
        );
        assert_eq!(s.users[2].algorithms, [Algorithm::Sha256]);
        let db = sipedge_core::auth::AuthDb::build(s).unwrap_or_else(|e| panic!("{e}"));
        let offer = |n: &[u8]| db.offer_for(b"localhost", n).as_slice().to_vec();
        assert_eq!(offer(b"alice"), [Algorithm::Md5]);
        assert_eq!(offer(b"bob"), [Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(offer(b"carol"), [Algorithm::Sha256]);
        // A user's own list names only algorithms it has an HA1 for.
        let (k, m) = key_of("[[users]]\nusername = \"d\"\nha1 = \"0123456789abcdef0123456789abcdef\"\nalgorithms = [\"SHA-256\"]\n");
        assert_eq!(k, "users[0].algorithms[0]");
        assert!(m.contains("ha1_sha256"), "{m}");
        assert_eq!(
            key_of("[[accounts]]\nname = \"a\"\nalgorithms = [\"MD5-sess\"]\n").0,
            "accounts[0].algorithms[0]"
        );
        assert_eq!(
            key_of(
                "[[users]]\nusername = \"d\"\npassword = \"p\"\nalgorithms = [\"MD5\", \"md5\"]\n"
            )
            .0,
            "users[0].algorithms[1]"
        );
    }

    #[test]
    fn usernames_follow_registrar_case_sensitive() {
        let two = "[[users]]\nusername = \"alice\"\npassword = \"a\"\n[[users]]\nusername = \"Alice\"\npassword = \"b\"\n";
        let (k, m) = key_of(two);
        assert_eq!(k, "users[1].username");
        assert!(m.contains("users[0] and users[1]"), "{m}");
        let c = parse(&format!("[registrar]\ncase_sensitive = true\n{two}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.auth.spec.settings.case_sensitive);
        let c = parse("[[users]]\nusername = \"Alice\"\npassword = \"a\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!c.auth.spec.settings.case_sensitive);
        let db = sipedge_core::auth::AuthDb::build(&c.auth.spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(db.find_user(b"localhost", b"alice"), Some(0));
        assert_eq!(
            key_of(&format!(
                "[[users]]\nusername = \"{}\"\npassword = \"a\"\n",
                "u".repeat(257)
            ))
            .0,
            "users[0].username"
        );
    }

    fn key_of(text: &str) -> (String, String) {
        match parse(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => (e.key, e.message),
        }
    }

    #[test]
    fn errors_name_the_place() {
        let (k, m) = key_of(
            "[[users]]\nusername = \"alice\"\npassword = \"a\"\n[[users]]\nusername = \"bob\"\npassword = \"b\"\n[[users]]\nusername = \"alice\"\npassword = \"c\"\n",
        );
        assert_eq!(k, "users[2].username");
        assert!(
            m.contains("duplicate user `alice`") && m.contains("users[0] and users[2]"),
            "{m}"
        );
        // Same name in two domains is fine; twice in one domain is not.
        assert!(parse("[[users]]\nusername = \"a\"\ndomain = \"x.org\"\npassword = \"p\"\n[[users]]\nusername = \"a\"\npassword = \"p\"\n").is_ok());
        let (k, m) = key_of("[[users]]\nusername = \"a\"\ndomain = \"X.org\"\npassword = \"p\"\n[[users]]\nusername = \"a\"\ndomain = \"x.org\"\npassword = \"p\"\n");
        assert_eq!(
            (k.as_str(), m.contains("`a@x.org`")),
            ("users[1].username", true),
            "{m}"
        );
        assert_eq!(
            key_of("[[users]]\nusername = \"a\"\n").0,
            "users[0].password"
        );
        assert_eq!(
            key_of("[[users]]\nusername = \"a\"\npassword = \"p\"\nha1 = \"00\"\n").0,
            "users[0].password"
        );
        assert_eq!(
            key_of("[[users]]\nusername = \"a\"\nha1 = \"00\"\n").0,
            "users[0].ha1"
        );
        assert_eq!(
            key_of(
                "[[users]]\nusername = \"a\"\npassword = \"p\"\nip_whitelist = [\"10.0.0.0/33\"]\n"
            )
            .0,
            "users[0].ip_whitelist[0]"
        );
        assert_eq!(
            key_of("[[users]]\nusername = \"a\"\npassword = \"p\"\nnat = \"yes\"\n").0,
            "users[0].nat"
        );
        assert_eq!(key_of("[auth]\nregister = \"basic\"\n").0, "auth.register");
        assert_eq!(
            key_of("[auth]\nnonce_ttl_secs = 0\n").0,
            "auth.nonce_ttl_secs"
        );
        assert_eq!(
            key_of("[auth]\nalgorithms = [\"SHA-1\"]\n").0,
            "auth.algorithms[0]"
        );
        assert_eq!(key_of("[auth]\nalgorithms = []\n").0, "auth.algorithms");
        assert_eq!(
            key_of("[auth]\nnonce_secret = \"abc\"\n").0,
            "auth.nonce_secret"
        );
        assert_eq!(
            key_of("[[ip_auth]]\ncidr = \"x\"\naccount = \"a\"\n").0,
            "ip_auth[0].cidr"
        );
        let (k, m) = key_of("[[ip_auth]]\ncidr = \"10.0.0.0/8\"\naccount = \"nope\"\n");
        assert!(k == "auth" && m.contains("unknown account `nope`"), "{m}");
        let (_, m) = key_of("[[accounts]]\nname = \"a\"\ncli = [\"(\"]\n");
        assert!(m.contains("cli pattern"), "{m}");
        let (_, m) = key_of("[[users]]\nusername = \"a\"\npassword = \"p\"\nsecret = 1\n");
        assert!(m.contains("secret"), "{m}");
        assert_eq!(
            key_of("[auth]\nusers_file = \"missing.csv\"\n").0,
            "auth.users_file"
        );
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new() -> TempDir {
            // One per test: tests run in parallel threads of one process.
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("sipedge-auth-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
            TempDir(p)
        }
        fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn users_file_rows_carry_their_nat_settings() {
        let dir = TempDir::new();
        std::fs::write(
            dir.path().join("users.csv"),
            "username,account,password,nat,nat_ping\ndave,acme,pw,force,timeout\nerin,acme,pw,,\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let main = dir.path().join("sipedge.toml");
        let cfg = "[server]\ndomains = [\"example.com\"]\n[auth]\nusers_file = \"users.csv\"\n[[accounts]]\nname = \"acme\"\n";
        std::fs::write(&main, cfg).unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
        let dave = sipedge_core::NatUser {
            nat: Some(sipedge_core::NatMode::Force),
            ping: Some(sipedge_core::PingMode::Timeout),
        };
        assert_eq!(c.nat.users.get(b"sip:dave@example.com"), Some(dave));
        assert!(c.nat.users.get(b"sip:erin@example.com").is_none());
        std::fs::write(
            dir.path().join("users.csv"),
            "username,account,password,nat\nfrank,acme,pw,sometimes\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&main)
            .expect_err("a bad nat value in the file")
            .to_string();
        assert!(e.contains("nat"), "{e}");
    }

    #[test]
    fn users_files_csv_and_toml() {
        let dir = TempDir::new();
        let csv = dir.path().join("users.csv");
        std::fs::write(
            &csv,
            "# provisioning export\nusername,domain,account,password,ip_whitelist,channels\nalice,,acme,\"pa,ss\"\"word\",10.0.0.0/8 192.0.2.1,2\nbob,example.com,acme,pw,,\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let main = dir.path().join("sipedge.toml");
        let cfg = "[auth]\nusers_file = \"users.csv\"\n[[accounts]]\nname = \"acme\"\n[[users]]\nusername = \"carol\"\npassword = \"x\"\n";
        std::fs::write(&main, cfg).unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
        let users = &c.auth.spec.users;
        assert_eq!(users.len(), 3);
        assert_eq!(users[1].username, "alice");
        assert_eq!(users[1].ip_whitelist.len(), 2);
        assert_eq!(users[1].channels, Some(2));
        let want = ha1(Algorithm::Sha256, b"alice", b"localhost", b"pa,ss\"word");
        assert_eq!(users[1].ha1_sha256, Some(want));
        assert_eq!(users[2].domain.as_deref(), Some("example.com"));
        // A duplicate between the config and the file names both places.
        std::fs::write(&csv, "username,password\ncarol,y\n").unwrap_or_else(|e| panic!("{e}"));
        let e = Config::load(&main)
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.message.contains("users[0] and users_file"), "{e}");
        assert!(e.message.contains("line 2"), "{e}");
        // TOML users file.
        let toml_users = dir.path().join("users.toml");
        std::fs::write(&toml_users, "[[users]]\nusername = \"dave\"\nha1_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&main, cfg.replace("users.csv", "users.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let c = Config::load(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.auth.spec.users[1].username, "dave");
    }
}
