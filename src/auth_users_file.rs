//! `[auth] users_file`: a separate file of users, `.toml` with `[[users]]` tables or `.csv`
//! with a header row naming the `[[users]]` fields.

use std::path::Path;

use serde::Deserialize;

use super::{RawAuth, RawUser};

/// A users_file in TOML: `[[users]]` only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<RawUser>,
}

/// A users_file: `.toml` with `[[users]]`, or `.csv` with a header row naming the
/// `[[users]]` fields (`ip_whitelist` as CIDRs separated by spaces or `;`; fields may be
/// double-quoted, `""` inside quotes is one quote).
/// The rows of `[auth] users_file` (none when it is `""`), each with its place for error
/// messages; a relative path is relative to the config `file`'s directory.
pub(crate) fn users_file_rows(
    raw: &RawAuth,
    file: &str,
) -> Result<Vec<(String, RawUser)>, (String, String)> {
    if raw.users_file.is_empty() {
        return Ok(Vec::new());
    }
    let base = Path::new(file).parent().unwrap_or(Path::new("."));
    load_users_file(&base.join(&raw.users_file)).map_err(|m| ("auth.users_file".to_string(), m))
}

pub(super) fn load_users_file(path: &Path) -> Result<Vec<(String, RawUser)>, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let rows = if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("csv"))
    {
        parse_csv(&text, &shown)?
    } else {
        let f: UsersFile = toml::from_str(&text).map_err(|e| format!("`{shown}`: {e}"))?;
        f.users
            .into_iter()
            .enumerate()
            .map(|(i, u)| (format!("users_file `{shown}` users[{i}]"), u))
            .collect()
    };
    // A users_file is there to hold users: an empty one is a failed export or a file caught
    // mid-write, and taking it would turn `auto` authentication off (at start and on SIGHUP).
    if rows.is_empty() {
        return Err(format!(
            "`{shown}` has no users (an empty users_file is refused: with register/invite \"auto\" it would turn authentication off; set users_file = \"\" for none)"
        ));
    }
    Ok(rows)
}

fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (false, ',') => out.push(std::mem::take(&mut cur).trim().to_string()),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur.trim().to_string());
    Ok(out)
}

fn parse_csv(text: &str, shown: &str) -> Result<Vec<(String, RawUser)>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let names = split_csv(header).map_err(|e| format!("`{shown}` header: {e}"))?;
    let mut out = Vec::new();
    for (n, line) in lines {
        let at = format!("users_file `{shown}` line {}", n + 1);
        let fields = split_csv(line).map_err(|e| format!("{at}: {e}"))?;
        if fields.len() != names.len() {
            return Err(format!(
                "{at}: {} fields, the header has {}",
                fields.len(),
                names.len()
            ));
        }
        let mut u = RawUser::default();
        for (name, v) in names.iter().zip(fields) {
            let opt = || (!v.is_empty()).then(|| v.clone());
            let num = |v: &str| -> Result<Option<u32>, String> {
                if v.is_empty() {
                    return Ok(None);
                }
                v.parse()
                    .map(Some)
                    .map_err(|_| format!("{at}: `{name}` is not a number"))
            };
            match name.as_str() {
                "username" => u.username = v.clone(),
                "domain" => u.domain = opt(),
                "account" => u.account = opt(),
                "password" => u.password = opt(),
                "ha1" => u.ha1 = opt(),
                "ha1_sha256" => u.ha1_sha256 = opt(),
                "ip_whitelist" => {
                    u.ip_whitelist = v
                        .split([' ', ';'])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "algorithms" => {
                    u.algorithms = v
                        .split([' ', ';'])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "nat" => u.nat = opt(),
                "nat_ping" => u.nat_ping = opt(),
                "channels" => u.channels = num(&v)?,
                "cps" => u.cps = num(&v)?,
                other => return Err(format!("`{shown}` header: unknown field `{other}`")),
            }
        }
        out.push((at, u));
    }
    Ok(out)
}
