//! The Lua scripts that change the shared directory in Redis, each atomic: a user's sessions
//! across nodes, who is online, the nodes alive, and the presence changes published once each.
//!
//! Keys: `sb:online` (hash user → name: online anywhere), `sb:since` (hash user → when they
//! came online, ms), `sb:known` (hash user → name: seen on any node), `sb:sessions:<user>` (set of
//! `<node>/<session>`), `sb:node:<node>:users` (hash user → that node's sessions of them),
//! `sb:nodes` (sorted set: node → the time its heartbeat runs out, ms). Channel:
//! `sb:presence`, one JSON message per user coming online or going offline, and one per login
//! that took a single-session user's other sessions away (`kicked`), or by which the site took
//! all of them (`kicked`, `reason` `revoked`).
//!
//! Calls: `sb:call:<id>` (a [`super::shared_call::SharedCall`] as JSON), `sb:calls` (set of
//! live call ids), `sb:user_calls:<user>` (set), `sb:outgoing:<user>` (the user's one outgoing
//! call). Channel: `sb:calls`, one [`super::shared_call::CallChange`] per change. What a change
//! is, `calls::step` decides on the node; the scripts only check that it was decided on the
//! call's current version, and keep the indexes. Each change is also appended to the stream
//! `sb:records`, which the nodes write to the database as one consumer group. With webhooks on,
//! the scripts that change presence are given that stream as `KEYS[1]`, and append each
//! presence change to it too.

use std::sync::LazyLock;

use redis::Script;

/// The channel presence changes are published on.
pub const PRESENCE_CHANNEL: &str = "sb:presence";
/// The channel call changes are published on.
pub const CALLS_CHANNEL: &str = "sb:calls";
/// The channel the built-in room's seats talk to each other on.
pub const ROOMS_CHANNEL: &str = "sb:rooms";

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function node_users(node) return 'sb:node:' .. node .. ':users' end
local function publish(user, name, online)
  redis.call('PUBLISH', 'sb:presence', cjson.encode({user = user, name = name, online = online}))
  -- With webhooks on, KEYS[1] is the records stream: the change is recorded here, once.
  if KEYS[1] then
    redis.call('XADD', KEYS[1], '*', 'p',
      cjson.encode({user = user, name = name, online = online, at = now_ms()}))
  end
end
-- Puts one session of a node on a user; the user comes online with their first.
local function add(node, session, user, name)
  redis.call('HSET', 'sb:known', user, name)
  if redis.call('SADD', 'sb:sessions:' .. user, node .. '/' .. session) == 1 then
    redis.call('HINCRBY', node_users(node), user, 1)
  end
  local was = redis.call('HGET', 'sb:online', user)
  redis.call('HSET', 'sb:online', user, name)
  if not was then
    redis.call('HSET', 'sb:since', user, now_ms())
    publish(user, name, true)
  end
end
-- Takes one session off a user; the user goes offline with their last.
local function drop(node, member, user)
  local key = 'sb:sessions:' .. user
  if redis.call('SREM', key, member) == 1 then
    if redis.call('HINCRBY', node_users(node), user, -1) <= 0 then
      redis.call('HDEL', node_users(node), user)
    end
  end
  if redis.call('SCARD', key) == 0 then
    local name = redis.call('HGET', 'sb:online', user)
    if name then
      redis.call('HDEL', 'sb:online', user)
      redis.call('HDEL', 'sb:since', user)
      publish(user, name, false)
    end
  end
end
-- Takes every session of a node off every user, except those in `keep`.
local function drop_node(node, keep)
  local prefix = node .. '/'
  for _, user in ipairs(redis.call('HKEYS', node_users(node))) do
    for _, member in ipairs(redis.call('SMEMBERS', 'sb:sessions:' .. user)) do
      if string.sub(member, 1, #prefix) == prefix and not keep[user .. ' ' .. member] then
        drop(node, member, user)
      end
    end
  end
end
"#;

/// ARGV: node, session, user, name, and `1` when a user may have one session only: then every
/// other session of the user, on any node, is taken off, and the ones taken are published on
/// `sb:presence` as `kicked` (`<node>/<session>` each) for their nodes to log out.
pub static JOIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
local node, session, user, name = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
add(node, session, user, name)
if ARGV[5] == '1' then
  local me = node .. '/' .. session
  local kicked = {{}}
  for _, member in ipairs(redis.call('SMEMBERS', 'sb:sessions:' .. user)) do
    if member ~= me then
      drop(string.match(member, '^(.*)/[^/]*$'), member, user)
      table.insert(kicked, member)
    end
  end
  if #kicked > 0 then
    redis.call('PUBLISH', 'sb:presence',
      cjson.encode({{user = user, name = name, online = true, kicked = kicked}}))
  end
end
return 1"#
    ))
});

/// Takes every session of a user off, on every node, and publishes the ones taken on
/// `sb:presence` as `kicked` with `reason` `revoked`, for their nodes to log out (the user's
/// going offline is published first, as any last session's end). ARGV: user. Returns how many
/// sessions there were.
pub static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
local user = ARGV[1]
local name = redis.call('HGET', 'sb:online', user) or redis.call('HGET', 'sb:known', user) or ''
local kicked = {{}}
for _, member in ipairs(redis.call('SMEMBERS', 'sb:sessions:' .. user)) do
  drop(string.match(member, '^(.*)/[^/]*$'), member, user)
  table.insert(kicked, member)
end
if #kicked > 0 then
  redis.call('PUBLISH', 'sb:presence',
    cjson.encode({{user = user, name = name, online = false, kicked = kicked, reason = 'revoked'}}))
end
return #kicked"#
    ))
});

/// The presence of each user in ARGV, four strings each: the name (online, else as last seen;
/// empty for a user never seen), `1` if online anywhere, when they came online (ms; empty if
/// offline), and how many sessions they have on all nodes.
pub static PRESENCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local out = {}
for _, user in ipairs(ARGV) do
  local online = redis.call('HGET', 'sb:online', user)
  table.insert(out, online or redis.call('HGET', 'sb:known', user) or '')
  table.insert(out, online and '1' or '0')
  table.insert(out, online and redis.call('HGET', 'sb:since', user) or '')
  table.insert(out, tostring(redis.call('SCARD', 'sb:sessions:' .. user)))
end
return out"#,
    )
});

/// ARGV: node, session, user.
pub static LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}drop(ARGV[1], ARGV[1] .. '/' .. ARGV[2], ARGV[3]) return 1"
    ))
});

/// Makes Redis hold exactly this node's sessions, and renews its heartbeat. ARGV: node,
/// timeout ms, then (session, user, name) for every logged-in session of the node.
pub static SYNC: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
local node = ARGV[1]
local keep = {{}}
for i = 3, #ARGV, 3 do keep[ARGV[i + 1] .. ' ' .. node .. '/' .. ARGV[i]] = true end
drop_node(node, keep)
for i = 3, #ARGV, 3 do add(node, ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
redis.call('ZADD', 'sb:nodes', now_ms() + tonumber(ARGV[2]), node)
return 1"#
    ))
});

/// Renews a node's heartbeat, and ends the nodes whose heartbeat ran out: their sessions go,
/// and users with none left elsewhere go offline. ARGV: node, timeout ms. Returns whether this
/// node was still known (false: it had been ended itself, and must sync again).
pub static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{PRELUDE}
local now = now_ms()
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', 'sb:nodes', '-inf', now)) do
  if dead ~= ARGV[1] then
    drop_node(dead, {{}})
    redis.call('DEL', node_users(dead))
    redis.call('ZREM', 'sb:nodes', dead)
  end
end
local known = redis.call('ZSCORE', 'sb:nodes', ARGV[1])
redis.call('ZADD', 'sb:nodes', now + tonumber(ARGV[2]), ARGV[1])
if known then return 1 else return 0 end"#
    ))
});

/// Places a call if the callee is online and free for the caller (a ringing call of theirs, or
/// an answered one, with someone else makes them busy). ARGV: id, shared JSON, caller, callee,
/// change JSON, whether the placing node knows the callee (1/0). Returns `unknown` (never seen
/// on any node), `offline`, `busy`, or `placed:` and the caller's previous outgoing call.
pub static PLACE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id, caller, callee = ARGV[1], ARGV[3], ARGV[4]
if redis.call('HEXISTS', 'sb:online', callee) == 0 then
  if ARGV[6] == '1' or redis.call('HEXISTS', 'sb:known', callee) == 1 then return 'offline' end
  return 'unknown'
end
for _, other in ipairs(redis.call('SMEMBERS', 'sb:user_calls:' .. callee)) do
  local raw = redis.call('GET', 'sb:call:' .. other)
  if raw then
    local c = cjson.decode(raw).record.call
    if c.caller.id ~= caller
      and (c.state == 'answered' or (c.state == 'ringing' and c.callee.id == callee)) then
      return 'busy'
    end
  end
end
local previous = redis.call('GET', 'sb:outgoing:' .. caller) or ''
redis.call('SET', 'sb:call:' .. id, ARGV[2])
redis.call('SADD', 'sb:calls', id)
redis.call('SADD', 'sb:user_calls:' .. caller, id)
redis.call('SADD', 'sb:user_calls:' .. callee, id)
redis.call('SET', 'sb:outgoing:' .. caller, id)
redis.call('XADD', 'sb:records', '*', 'r', ARGV[2])
redis.call('PUBLISH', 'sb:calls', ARGV[5])
return 'placed:' .. previous"#,
    )
});

/// Replaces a call decided on version `expected`; a call that is over leaves every index.
/// ARGV: id, expected version, shared JSON, over (1/0), caller, callee, change JSON. Returns
/// `ok`, `conflict` (it changed meanwhile) or `gone`.
pub static STEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local id, caller, callee = ARGV[1], ARGV[5], ARGV[6]
local raw = redis.call('GET', 'sb:call:' .. id)
if not raw then return 'gone' end
if cjson.decode(raw).version ~= tonumber(ARGV[2]) then return 'conflict' end
if ARGV[4] == '1' then
  redis.call('DEL', 'sb:call:' .. id)
  redis.call('SREM', 'sb:calls', id)
  redis.call('SREM', 'sb:user_calls:' .. caller, id)
  redis.call('SREM', 'sb:user_calls:' .. callee, id)
  if redis.call('GET', 'sb:outgoing:' .. caller) == id then
    redis.call('DEL', 'sb:outgoing:' .. caller)
  end
else
  redis.call('SET', 'sb:call:' .. id, ARGV[3])
end
redis.call('XADD', 'sb:records', '*', 'r', ARGV[3])
redis.call('PUBLISH', 'sb:calls', ARGV[7])
return 'ok'"#,
    )
});

/// Puts back live calls a node still knows of that Redis lost (it restarted empty), without
/// touching any it has. ARGV: (id, shared JSON, caller, callee) per call.
pub static RESTORE_CALLS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 1, #ARGV, 4 do
  local id, caller, callee = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  if redis.call('SET', 'sb:call:' .. id, ARGV[i + 1], 'NX') then
    redis.call('SADD', 'sb:calls', id)
    redis.call('SADD', 'sb:user_calls:' .. caller, id)
    redis.call('SADD', 'sb:user_calls:' .. callee, id)
    if redis.call('EXISTS', 'sb:outgoing:' .. caller) == 0 then
      redis.call('SET', 'sb:outgoing:' .. caller, id)
    end
  end
end
return 1"#,
    )
});
