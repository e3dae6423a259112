//! `sipedgectl`: the sipedge admin API on the command line (issue 18). Tables for people,
//! `--json` for scripts. The address and token come from `--addr`/`SIPEDGE_ADMIN` and
//! `--token`/`SIPEDGE_TOKEN`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// How long one API call may take: `msg send` waits for every contact's final response,
/// up to timer F (64·T1 = 32 s with the default T1) plus the API's own margin.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
use serde_json::Value;

/// sipedgectl — list and drop registrations, reload, read counters of a running sipedge.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The admin API address (`[admin] listen`).
    #[arg(
        long,
        env = "SIPEDGE_ADMIN",
        default_value = "127.0.0.1:9065",
        global = true
    )]
    addr: String,
    /// The bearer token (`[admin] token`).
    #[arg(long, env = "SIPEDGE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Registrations.
    #[command(subcommand)]
    Reg(Reg),
    /// Messages to users.
    #[command(subcommand)]
    Msg(Msg),
    /// Re-reads the config file (as SIGHUP); a refused file is shown and exits 1.
    Reload,
    /// The edge's counters (Prometheus text summed over shards).
    Stats,
}

#[derive(Debug, Subcommand)]
enum Reg {
    /// One AoR's contacts.
    Show { aor: String },
    /// Registrations whose AoR starts with a prefix, page by page.
    List {
        #[arg(long, default_value = "")]
        prefix: String,
        /// Per page.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start from this cursor (printed after a page).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow every page to the end.
        #[arg(long)]
        all: bool,
    },
    /// Removes an AoR's contacts (all, or `--contact`).
    Rm {
        aor: String,
        #[arg(long)]
        contact: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Msg {
    /// Sends a SIP MESSAGE to every registered contact of a user and prints each
    /// contact's final response (waits up to 64·T1 for a silent one: 408).
    Send {
        /// The user (`alice@example.com`) or AoR.
        #[arg(long)]
        to: String,
        /// The From URI (default: `sip:noc@<the user's domain>`).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        body: String,
        #[arg(long, default_value = "text/plain")]
        content_type: String,
    },
}

struct Api {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(cli: &Cli) -> Api {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(HTTP_TIMEOUT))
            .http_status_as_error(false)
            .build()
            .into();
        let base = if cli.addr.contains("://") {
            cli.addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", cli.addr)
        };
        Api {
            agent,
            base,
            token: cli.token.clone(),
        }
    }

    fn auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => r.header("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Sends and returns (status, body as JSON or text).
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}{}", self.base, path);
        let resp = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.auth(self.agent.get(&url))
                } else {
                    self.auth(self.agent.delete(&url))
                };
                for (k, v) in query {
                    r = r.query(*k, *v);
                }
                r.call()
            }
            _ => {
                let r = self.auth(self.agent.post(&url));
                match body {
                    Some(b) => r.send_json(b),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = resp.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, v))
    }
}

/// Percent-encodes one path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A table: a header line and aligned columns.
fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let l: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", l.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn contact_rows(list: &[Value], with_aor: bool) -> Vec<Vec<String>> {
    list.iter()
        .map(|c| {
            let mut r = Vec::new();
            if with_aor {
                r.push(s(&c["aor"]));
            }
            r.extend([
                s(&c["contact"]),
                s(&c["expires_in"]),
                s(&c["source"]),
                if c["nat"] == Value::Bool(true) {
                    "yes".into()
                } else {
                    "no".into()
                },
                s(&c["transport"]),
                s(&c["rtt_ms"]),
                s(&c["shard"]),
                s(&c["user_agent"]),
            ]);
            r
        })
        .collect()
}

const CONTACT_HEADERS: [&str; 8] = [
    "CONTACT",
    "EXPIRES",
    "SOURCE",
    "NAT",
    "TRANSPORT",
    "RTT_MS",
    "SHARD",
    "USER_AGENT",
];

fn run(cli: &Cli) -> Result<(), String> {
    let api = Api::new(cli);
    let fail = |status: u16, v: &Value| -> Result<(), String> {
        let msg = v.get("error").map_or_else(|| s(v), s);
        Err(format!("{status}: {msg}"))
    };
    match &cli.cmd {
        Cmd::Reg(Reg::Show { aor }) => {
            let (st, v) = api.call("GET", "/api/v1/registrations", &[("aor", aor)], None)?;
            if st != 200 {
                return fail(st, &v);
            }
            if cli.json {
                println!("{v}");
            } else {
                println!("{} (shard {})", s(&v["aor"]), s(&v["shard"]));
                let list = v["contacts"].as_array().cloned().unwrap_or_default();
                table(&CONTACT_HEADERS, &contact_rows(&list, false));
            }
        }
        Cmd::Reg(Reg::List {
            prefix,
            limit,
            cursor,
            all,
        }) => {
            let mut cursor = cursor.clone();
            let mut rows = Vec::new();
            loop {
                let limit = limit.to_string();
                let mut q = vec![("prefix", prefix.as_str()), ("limit", limit.as_str())];
                if let Some(c) = &cursor {
                    q.push(("cursor", c.as_str()));
                }
                let (st, v) = api.call("GET", "/api/v1/registrations", &q, None)?;
                if st != 200 {
                    return fail(st, &v);
                }
                let list = v["registrations"].as_array().cloned().unwrap_or_default();
                if cli.json {
                    println!("{v}");
                } else {
                    rows.extend(contact_rows(&list, true));
                }
                cursor = v["next_cursor"].as_str().map(str::to_string);
                if !*all || cursor.is_none() {
                    break;
                }
            }
            if !cli.json {
                let mut h = vec!["AOR"];
                h.extend(CONTACT_HEADERS);
                table(&h, &rows);
                if let Some(c) = cursor {
                    println!("more: --cursor {c}");
                }
            }
        }
        Cmd::Reg(Reg::Rm { aor, contact }) => {
            let path = format!("/api/v1/registrations/{}", segment(aor));
            let q: Vec<(&str, &str)> = contact.iter().map(|c| ("contact", c.as_str())).collect();
            let (st, v) = api.call("DELETE", &path, &q, None)?;
            if st != 200 {
                return fail(st, &v);
            }
            if cli.json {
                println!("{v}");
            } else {
                println!(
                    "removed {} binding(s) of {}",
                    s(&v["removed"]),
                    s(&v["aor"])
                );
            }
        }
        Cmd::Reload => {
            let (st, v) = api.call("POST", "/api/v1/reload", &[], None)?;
            if st != 200 {
                return fail(st, &v);
            }
            if cli.json {
                println!("{v}");
            } else {
                println!("reloaded: {}", s(&v["summary"]));
            }
        }
        Cmd::Stats => {
            let (st, v) = api.call("GET", "/metrics", &[], None)?;
            if st != 200 {
                return fail(st, &v);
            }
            let text = v.as_str().unwrap_or_default();
            let mut sums: std::collections::BTreeMap<String, f64> = Default::default();
            for l in text.lines().filter(|l| !l.starts_with('#')) {
                let Some((k, val)) = l.rsplit_once(' ') else {
                    continue;
                };
                let name = k.split('{').next().unwrap_or(k).to_string();
                if let Ok(x) = val.parse::<f64>() {
                    *sums.entry(name).or_default() += x;
                }
            }
            if cli.json {
                println!("{}", serde_json::to_string(&sums).unwrap_or_default());
            } else {
                let rows: Vec<Vec<String>> = sums
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.to_string()])
                    .collect();
                table(&["METRIC", "VALUE"], &rows);
            }
        }
        Cmd::Msg(Msg::Send {
            to,
            from,
            body,
            content_type,
        }) => {
            let req = serde_json::json!({ "to": to, "from": from, "body": body, "content_type": content_type });
            let (st, v) = api.call("POST", "/api/v1/messages", &[], Some(&req))?;
            if st != 200 {
                return fail(st, &v);
            }
            if cli.json {
                println!("{v}");
            } else {
                let rows: Vec<Vec<String>> = v["results"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|r| vec![s(&r["contact"]), s(&r["code"]), s(&r["reason"])])
                    .collect();
                table(&["CONTACT", "CODE", "REASON"], &rows);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipedgectl: {e}");
            ExitCode::FAILURE
        }
    }
}
