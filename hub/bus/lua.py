"""The Lua scripts of `hub.bus.redis.RedisBus`: what must happen in one step on the server (an
event and its ring, a read and its gap check, a trim and its bookkeeping)."""

# Ids are compared as digit strings: Lua numbers are doubles and lose sequence numbers past 2^53.
_LIB = """
local function less(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as < bs
end
local function info(key)
  local raw, f = redis.call('XINFO', 'STREAM', key), {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  return f
end
"""

# KEYS: stream, changes, workspace set [, dedupe]; ARGV: maxlen, ttl, name, conversation id,
# data, changes maxlen, workspace id, lean data ('' for none: no `l` field). Answers {id, dup}.
# The ring goes with the event, never without it, and so does the workspace's place in the set
# the workers read their streams from (SADD on every publish: O(1) inside the script, so a Redis
# that lost the set has it back with the first event after its return, whichever process
# publishes it).
# The dedupe key is written last: a script that fails midway is not rolled back, and a key
# set before a failed XADD would answer "duplicate" with no event for the whole TTL.
# Redis 7.0 trimming does not advance max-deleted-entry-id (only XDEL does), so the script
# trims exactly and records the newest trimmed id itself; `read` relies on it to see gaps.
PUBLISH = (
    _LIB
    + """
local stream, changes, dedupe = KEYS[1], KEYS[2], KEYS[4]
if dedupe then
  local seen = redis.call('GET', dedupe)
  if seen then return {seen, 1} end
end
local length = redis.call('XLEN', stream)
-- XINFO only for an empty stream: it doubles the script's cost if run on every publish.
local fresh = length == 0 and (redis.call('EXISTS', stream) == 0
  or tonumber(info(stream)['entries-added']) == 0)
local excess = length + 1 - tonumber(ARGV[1])
local trimmed = false
if excess > 0 then
  local old = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
  if #old > 0 then trimmed = old[#old][1] end
end
local fields = {'n', ARGV[3], 'c', ARGV[4], 'd', ARGV[5]}
if ARGV[8] ~= '' then
  fields[#fields + 1] = 'l'
  fields[#fields + 1] = ARGV[8]
end
local id = redis.call('XADD', stream, 'MAXLEN', ARGV[1], '*', unpack(fields))
redis.call('XADD', changes, 'MAXLEN', '~', ARGV[6], '*', 'w', ARGV[7])
redis.call('SADD', KEYS[3], ARGV[7])
if trimmed and less(info(stream)['max-deleted-entry-id'], trimmed) then
  redis.call('XSETID', stream, id, 'MAXDELETEDID', trimmed)
elseif fresh then
  -- A new stream (or one lost and re-created): cursors from before it are unknown, so they
  -- must get CursorTooOld rather than a silent gap. Everything before it counts as deleted.
  redis.call('XSETID', stream, id, 'MAXDELETEDID', string.match(id, '^(%d+)-') .. '-0')
end
if dedupe then redis.call('SET', dedupe, id, 'EX', ARGV[2]) end
return {id, 0}
"""
)

# KEYS: stream; ARGV: after (canonical id), count. Nil means CursorTooOld. The check and
# the range run in one script so no trim can fall between them.
READ = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[1] == '0-0' then return {} end
  return false
end
local f = info(KEYS[1])
local last = f['last-generated-id']
-- 0-0 ("I have seen nothing") stays good while nothing was ever deleted.
local whole = ARGV[1] == '0-0' and tonumber(f['entries-added']) == tonumber(f['length'])
if (less(ARGV[1], f['max-deleted-entry-id']) and not whole) or less(last, ARGV[1]) then
  return false
end
if ARGV[1] == last then return {} end
return redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
"""
)

# KEYS: stream; ARGV: the first id kept ("<ms>-0"). Answers how many entries went. As in
# PUBLISH, XTRIM does not advance max-deleted-entry-id on Redis 7.0: the script records the
# newest trimmed id itself, so `read` refuses the cursors before it.
TRIM = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local newest = redis.call('XREVRANGE', KEYS[1], '(' .. ARGV[1], '-', 'COUNT', 1)
if #newest == 0 then return 0 end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local f = info(KEYS[1])
if less(f['max-deleted-entry-id'], newest[1][1]) then
  redis.call('XSETID', KEYS[1], f['last-generated-id'], 'MAXDELETEDID', newest[1][1])
end
return trimmed
"""
)

LAST_ID = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return '0-0' end
return info(KEYS[1])['last-generated-id']
"""
)


# KEYS: stream; ARGV: group. Answers the id up to which the group acked every entry: the kept
# entry before its oldest pending one, else its last-delivered-id; false when the stream or
# the group is missing, or the group was handed nothing, or that entry is not kept.
HANDLED_UP_TO = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local seen = false
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #raw, 2 do g[raw[i]] = raw[i + 1] end
  if g['name'] == ARGV[1] then seen = g['last-delivered-id'] end
end
if not seen then return false end
local oldest = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
if not oldest then
  if seen == '0-0' then return false end
  return seen
end
local before = redis.call('XREVRANGE', KEYS[1], '(' .. oldest, '-', 'COUNT', 1)[1]
if not before then return false end
return before[1]
"""


# KEYS: stream; ARGV: the most entries to count for one group. Answers {length, name, lag,
# pending, name, lag, pending...}. XINFO GROUPS knows a group's lag only while no entry was
# deleted past its position (our fresh-stream and trim bookkeeping moves that mark), so
# otherwise the entries after its last-delivered-id are counted, up to ARGV[1].
STATS = (
    _LIB
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local out = {redis.call('XLEN', KEYS[1])}
local last = info(KEYS[1])['last-generated-id']
for _, raw in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local g = {}
  for i = 1, #raw, 2 do g[raw[i]] = raw[i + 1] end
  local lag = g['lag']
  if not lag then
    local seen = g['last-delivered-id']
    if less(seen, last) then
      lag = #redis.call('XRANGE', KEYS[1], '(' .. seen, '+', 'COUNT', ARGV[1])
    else
      lag = 0
    end
  end
  out[#out + 1] = g['name']
  out[#out + 1] = lag
  out[#out + 1] = g['pending']
end
return out
"""
)


# KEYS: stream; ARGV: group, consumer, first id, last id, ids... Resets the idle time of the
# listed entries that are still pending for this consumer (never takes another's), so a
# consumer that is busy with a long batch is not taken for a crashed one. Answers how many.
TOUCH = """
local wanted = {}
for i = 5, #ARGV do wanted[ARGV[i]] = true end
local mine = {}
-- Other entries of ours may lie between the first and last id: look a little further.
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[4], 2 * (#ARGV - 4)
    + 100, ARGV[2])) do
  if wanted[p[1]] then mine[#mine + 1] = p[1] end
end
local n = #mine
if n > 0 then
  mine[n + 1] = 'JUSTID'  -- last: unpack() in the middle of a call gives only one value
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, unpack(mine))
end
return n
"""


# KEYS: value, veto; ARGV: value, ttl. SET EX unless the veto key exists, in one step: a value
# read before a revocation and written after it must not come back (`hub.storage.lastknown`).
# Answers 1 when written.
KEEP = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
