//! The connection to the store: one Redis/Valkey (one URL) or a Redis Cluster (several
//! seed URLs), through the `redis` crate's synchronous API with timeouts, so a thread that
//! uses it waits at most the timeout. The write script lives here.

use std::time::Duration;

use redis::{Cmd, ConnectionLike, RedisResult, Value};

/// The versioned write (see `cluster` module docs, "Schema"). `KEYS[1]` the AoR's hash,
/// `ARGV[1]` now (UNIX ms, the writer's clock), `ARGV[2]` the AoR, then field/value
/// pairs. The script does not publish the invalidation: the writer publishes a whole
/// pipeline's AoRs in one message once every call of it was answered (`pipe::Nodes::write`);
/// one `PUBLISH` per AoR cost every edge a pub/sub message per binding written anywhere, and
/// a Redis Cluster relays each to every node.
///
/// RFC 3261 §10.3 step 7: a binding is replaced only by a newer registration. A value is
/// taken unless the stored one is still live and newer: older time, or the same time with a
/// CSeq not higher from another node (one node's writes reach the store in order, so its
/// same-millisecond writes are taken as they come). A tombstone keeps at least the expiry of
/// what it replaces, so a late, older write cannot resurrect the binding while that binding
/// could still be live. Expired fields are pruned and the key's TTL is set to the longest
/// remaining expiry. A key that does not exist yet (a new AoR) is written without reading
/// anything back: there is nothing older to compare with or prune.
pub const WRITE_SCRIPT: &str = r#"
local function head(v)
  local ms, cs, exp, k, node = string.match(v, '^(%d+):(%d+):(%d+):([ut])\n([^\n]*)')
  if not ms then return nil end
  return tonumber(ms), tonumber(cs), tonumber(exp), k, node
end
local now = tonumber(ARGV[1])
local changed = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- A new AoR (the common write of a registration storm): nothing to compare with or
  -- prune; the TTL is the longest expiry written.
  local maxexp = 0
  for i = 3, #ARGV - 1, 2 do
    local ms, cs, exp = head(ARGV[i + 1])
    if ms and exp > now then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      changed = changed + 1
      if exp > maxexp then maxexp = exp end
    end
  end
  if maxexp > now then
    redis.call('PEXPIRE', KEYS[1], maxexp - now)
  end
  return changed
end
for i = 3, #ARGV - 1, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  local ms, cs, exp, k, node = head(v)
  if ms and exp > now then
    local take = true
    local old = redis.call('HGET', KEYS[1], f)
    if old then
      local oms, ocs, oexp, ok, onode = head(old)
      if oms and oexp > now then
        if ms < oms or (ms == oms and cs <= ocs and node ~= onode) then
          take = false
        elseif k == 't' and oexp > exp then
          v = string.format('%d:%d:%d:t', ms, cs, oexp) .. string.sub(v, string.find(v, '\n', 1, true))
        end
      end
    end
    if take then
      redis.call('HSET', KEYS[1], f, v)
      changed = changed + 1
    end
  end
end
local all = redis.call('HGETALL', KEYS[1])
local maxexp = 0
for i = 1, #all, 2 do
  local ms, cs, exp = head(all[i + 1])
  if (not exp) or exp <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif exp > maxexp then
    maxexp = exp
  end
end
if maxexp > now then
  redis.call('PEXPIRE', KEYS[1], maxexp - now)
end
return changed
"#;

/// One connection, to a single server or a cluster.
pub enum Conn {
    Single(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

/// Connects to `urls` (one: a single server; several: cluster seeds), every operation
/// bounded by `timeout`.
pub fn connect(urls: &[String], timeout: Duration) -> RedisResult<Conn> {
    if let [url] = urls {
        let client = redis::Client::open(url.as_str())?;
        let c = client.get_connection_with_timeout(timeout)?;
        c.set_read_timeout(Some(timeout))?;
        c.set_write_timeout(Some(timeout))?;
        return Ok(Conn::Single(c));
    }
    let client = redis::cluster::ClusterClientBuilder::new(urls.iter().map(String::as_str))
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(0)
        .build()?;
    let c = client.get_connection()?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    Ok(Conn::Cluster(Box::new(c)))
}

impl Conn {
    /// Runs `cmds` as one pipeline (per node, in a cluster) and returns their replies in
    /// order. An error reply fails the whole call.
    pub fn pipeline(&mut self, cmds: Vec<Cmd>) -> RedisResult<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Conn::Single(c) => {
                let mut p = redis::pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                p.query(c)
            }
            Conn::Cluster(c) => {
                let mut p = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    p.add_command(cmd);
                }
                p.query(c)
            }
        }
    }

    /// One command (routed by its key in a cluster; `SCRIPT LOAD` goes to every master).
    pub fn query(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => cmd.query(&mut **c),
        }
    }

    /// Loads [`WRITE_SCRIPT`] (on every master) and returns its SHA1 (the writer's own
    /// connections load it themselves: `pipe::Nodes::connect`).
    #[cfg(test)]
    pub fn load_script(&mut self) -> RedisResult<String> {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(WRITE_SCRIPT);
        self.query(&cmd)?;
        Ok(redis::Script::new(WRITE_SCRIPT).get_hash().to_string())
    }
}
