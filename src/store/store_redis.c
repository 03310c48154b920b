/* store_redis.c — the shared store: tests, reward events, decision records, settings and
 * tokens in Redis, so several scoutd replicas serve and learn together.
 *
 * Keys (every per-test key carries the hash tag {<test>} so Redis Cluster keeps a test on one
 * node):
 *   scout:tests                  HASH  test id → definition (JSON)
 *   scout:{T}:meta               HASH  created, rollout, predictions, last_prediction, stats
 *   scout:{T}:events             STREAM reward events: v (variant), r (reward), c (context), q (request id), t
 *   scout:{T}:armpred            HASH  variant → decisions
 *   scout:{T}:d                  HASH  request id → decision record (one line, redis_record.h)
 *   scout:{T}:dlog               STREAM the request ids in the order of their writing, an entry per
 *                                      batch: n <count> <id> <created> ... (format 2: r <id>);
 *                                      scans by time (analytics, export), trimming
 *   scout:{T}:settle             ZSET  request ids by the end of their reward window
 *   scout:{T}:sticky             HASH  user → "variant propensity"
 *   scout:{T}:snap               HASH  id (last event covered), state (learned state, bytes), t, format,
 *                                      trimmed (events before this id may be gone)
 *   scout:{T}:snaplock           STRING the replica snapshotting the test this interval
 *   scout:settings               HASH  key → JSON
 *   scout:tokens                 SET   token ids
 *   scout:token:<id>             HASH  a token: name, scope, hash of the secret (never the secret), times
 *   scout:tokens:version         counter bumped by every token change
 *   scout:format                 STRING the version of this layout (STORE_FORMAT); older data is
 *                                      migrated when a server opens the store
 *   scout:catalog                STREAM changes replicas follow: test put/delete, rollout, setting
 *
 * Rewards: a Lua script joins each reward to its decision, applies the test's aggregation rules
 * and XADDs the events, atomically; the request is acknowledged once Redis answered. The
 * writer thread runs it in its pipeline, for the queued updates of one test at once (an update
 * naming decisions, which may have to wait for another replica's, gets a call of its own); the
 * request thread does not wait for it. Events are learned by the reader thread, which follows every test's stream
 * (XREAD BLOCK) and hands each event to the event handler in stream order — on every replica
 * alike, so all converge to the same state. An update waits (briefly) until its own events
 * were read back, so a client reads its writes on the replica it talks to.
 * Snapshots: once per interval, the replica that takes a test's snapshot lock files the state
 * it learned, with the id of the last event in it, and trims the events both covered by the
 * snapshot and older than the retention period. A starting replica loads the snapshot and
 * replays only the events after it; a replica that fell behind trimmed events (told on the
 * catalog) takes the snapshot that covers them.
 * Request threads share a small pool of links, so writes from several requests are in flight at
 * once; the reader and the writer have a link each.
 * Sticky assignments are claimed synchronously (the first replica to assign a user wins).
 * Decision records, counters, token touches and updates are queued and written by
 * the writer thread in pipelined batches: a decision never waits for Redis. A batch's decisions
 * of one test go in one MULTI block of plain commands (append_decisions). The writer also
 * settles decisions whose reward window ended (one replica at a time, under a lock key) and
 * trims expired decisions (readers ignore a decision past its expiry; one still to be settled
 * stays TRIM_GRACE longer, so the settling of a window that ends at the expiry finds it).
 * While Redis is unreachable, synchronous calls fail at once with SCOUT_ESTORE (503 for the
 * client) and the links reconnect with backoff; queued writes wait (up to a bound) and are
 * written when Redis is back. */
#include "store/store_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "bandit/snapshot.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "store/redis_conn.h"
#include "store/redis_record.h"
#include "util/util.h"

#define MAX_QUEUE 65536           /* queued async writes: past it a writer waits for room while Redis is up,
                                     and the write is dropped (counted) while it is away */
#define QUEUE_WAIT 2              /* seconds a write waits for room in a full queue */
#define BATCH_MAX 512             /* async writes per pipeline */
#define DEC_CALL_MAX 128          /* decisions written in one block (append_decisions) */
#define DEC_CALL_BYTES (32 * 1024) /* ... and no more once their records reach that many bytes */
#define REWARDS_CALL_MAX 1000    /* reward events in one script call, past the first update's */
#define PIPE_FLUSH (16 * 1024)    /* the writer sends its pipeline once it holds that much */
#define READ_BLOCK_MS 100         /* XREAD BLOCK: how long the reader waits for new events */
#define READ_COUNT 1000           /* events per stream per XREAD */
#define READBACK_WAIT 1.0         /* seconds an update waits to see its own events applied */
#define JOIN_WAIT 0.1             /* seconds a reward waits for a decision another replica queued */
#define JOIN_STEP 0.005
#define SETTLE_INTERVAL 0.25
#define SETTLE_SLICE 1000
#define TRIM_INTERVAL 1.0
#define TRIM_GRACE 60.0           /* seconds an expired record still to be settled stays (unseen) */
#define TRIM_SLICE 1000           /* expired decisions per test one trim call drops */
#define STORE_FORMAT 3            /* 1: one expiring hash per decision; 2: one field of scout:{T}:d, one
                                     dlog entry per decision; 3: dlog entries list several */
#define MIGRATE_SLICE 1000
#define CLOCK_SLACK 300           /* seconds Redis's clock (stream ids) and a replica's may differ by */
#define LOCK_TTL_MS 5000
#define CATALOG_MAXLEN 10000      /* changes kept for replicas that fall behind */
#define POOL_LINKS 4              /* links for request threads: that many operations at once */

/* ---- the Lua scripts ----------------------------------------------------------------- */

/* Reading and rewriting a decision record (the line of redis_record.h) in the scripts. A record
 * is a table of its fields as text, but n (rewards) and sum are numbers. */
#define REC_LUA \
    "local function rec_get(h, rid)\n" \
    "  local val = redis.call('HGET', h, rid)\n" \
    "  if not val then return nil end\n" \
    "  local v, p, x, t, e, s, a, dr, mv, n, sum, st, c = string.match(val,\n" \
    "    '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)\\n(.*)$')\n" \
    "  if not v then return nil end\n" \
    "  return {v = v, p = p, x = x, t = t, e = e, s = s, a = a, dr = dr, mv = mv, n = tonumber(n),\n" \
    "          sum = tonumber(sum), st = st, c = c}\n" \
    "end\n" \
    "local function rec_put(h, rid, d)\n" \
    "  redis.call('HSET', h, rid, string.format('%s %s %s %s %s %s %s %s %s %d %.17g %s\\n%s', d.v, d.p, d.x,\n" \
    "             d.t, d.e, d.s, d.a, d.dr, d.mv, d.n, d.sum, d.st, d.c))\n" \
    "end\n"

/* KEYS: events stream, meta, decision records. ARGV: now, wait (0/1), then per event 5 values:
 * request id ('' = none), variant (-1 = from the decision), reward, context ('' = none), skip
 * stored context (0/1). With wait 1, answers the status WAIT and writes nothing while a named
 * decision is not in Redis yet (another replica may still have it queued). A decision past its
 * expiry counts as not found. Returns per event {found, variant, outcome, context joined, event
 * id ('' when no event was added)}. */
static const char APPEND_LUA[] =
    REC_LUA
    "if redis.call('EXISTS', KEYS[2]) == 0 then return redis.error_reply('NOTFOUND') end\n"
    "local now = tonumber(ARGV[1]); local out = {}\n"
    "if ARGV[2] == '1' then\n"
    "  for i = 3, #ARGV, 5 do\n"
    "    if ARGV[i] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[i]) == 0 then return redis.status_reply('WAIT') end\n"
    "  end\n"
    "end\n"
    "for i = 3, #ARGV, 5 do\n"
    "  local rid, v, r, c, skip = ARGV[i], tonumber(ARGV[i+1]), ARGV[i+2], ARGV[i+3], ARGV[i+4]\n"
    "  local found, outcome, joined = 0, 0, ''\n"
    "  if rid ~= '' then\n"
    "    local d = rec_get(KEYS[3], rid)\n"
    "    if d and tonumber(d.e) > now then\n"
    "      found = 1\n"
    "      if v < 0 then v = tonumber(d.v) end\n"
    "      if c == '' and skip == '0' then c = d.c; joined = d.c end\n"
    "      local settle_at = tonumber(d.s)\n"
    "      if d.st == '1' or (settle_at > 0 and now >= settle_at) then outcome = 3\n"
    "      elseif d.a == '1' and d.n > 0 then outcome = 2\n"
    "      elseif d.a == '2' then outcome = 1 end\n"
    "      if outcome <= 1 then d.n = d.n + 1; d.sum = d.sum + tonumber(r); rec_put(KEYS[3], rid, d) end\n"
    "    end\n"
    "  end\n"
    "  local id = ''\n"
    "  if outcome == 0 and v >= 0 then\n"
    "    id = redis.call('XADD', KEYS[1], '*', 'v', v, 'r', r, 'c', c, 'q', rid, 't', ARGV[1])\n"
    "  end\n"
    "  out[#out + 1] = {found, v, outcome, joined, id}\n"
    "end\n"
    "return out\n";

/* KEYS: events stream, settle zset, decision records. ARGV: now, request ids...
 * Settles each decision once: its sum (aggregation sum) or its default reward becomes an
 * event. Returns the number of events made. */
static const char SETTLE_LUA[] =
    REC_LUA
    "local made = 0\n"
    "for i = 2, #ARGV do\n"
    "  local rid = ARGV[i]\n"
    "  local d = rec_get(KEYS[3], rid)\n"
    "  if d and d.st ~= '1' then\n"
    "    d.st = '1'; rec_put(KEYS[3], rid, d)\n"
    "    local r = nil\n"
    "    if d.a == '2' and d.n > 0 then r = string.format('%.17g', d.sum)\n"
    "    elseif d.n == 0 and d.dr ~= '-' then r = d.dr end\n"
    "    if r then\n"
    "      redis.call('XADD', KEYS[1], '*', 'v', d.v, 'r', r, 'c', d.c, 'q', rid, 't', ARGV[1])\n"
    "      made = made + 1\n"
    "    end\n"
    "  end\n"
    "  redis.call('ZREM', KEYS[2], rid)\n"
    "end\n"
    "return made\n";

/* KEYS: snapshot hash, events stream, catalog, meta. ARGV: last event id the state covers, the
 * state, now (ms), retention (ms), format, test id, catalog length. Files nothing when the test
 * was deleted meanwhile (its meta is gone: a late snapshot never leaves a key behind). Files the
 * snapshot unless one at or past that event exists, then trims the events both covered by it and older than the
 * retention (approximately: whole stream nodes, bounded work). When events went, it records in
 * `trimmed` the id before which events may be gone and tells the replicas on the catalog, in
 * the same atomic step: a replica still behind that id reads the notice before (or in the same
 * XREAD as) the events after the gap, and takes the snapshot instead. Returns {1 when filed,
 * events trimmed}. */
static const char SNAPSHOT_LUA[] =
    "local function less(a, b)\n"
    "  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
    "  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"
    "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n"
    "  return am < bm or (am == bm and as < bs)\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[4]) == 0 then return {0, 0} end\n"
    "local cur = redis.call('HGET', KEYS[1], 'id')\n"
    "if cur and not less(cur, ARGV[1]) then return {0, 0} end\n"
    "redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', ARGV[2], 't', ARGV[3], 'format', ARGV[5])\n"
    "local cut = tonumber(ARGV[3]) - tonumber(ARGV[4])\n"
    "if cut < 0 then cut = 0 end\n"
    "local minid = string.format('%d-0', cut)\n"
    "if less(ARGV[1], minid) then minid = ARGV[1] end\n"
    "local n = redis.call('XTRIM', KEYS[2], 'MINID', '~', minid)\n"
    "local old = redis.call('HGET', KEYS[1], 'trimmed')\n"
    "if n > 0 then\n"
    "  if not old or less(old, minid) then redis.call('HSET', KEYS[1], 'trimmed', minid) end\n"
    "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'op', 'trim', 'id', ARGV[6], 'upto', minid)\n"
    "end\n"
    "return {1, n}\n";

/* KEYS: meta, armpred, settle, decision records, dlog of one test. ARGV: decisions written, the
 * newest one's creation time, then variant, count... Runs last in the MULTI block that writes a
 * batch's decision records of the test with plain commands (decision_block): it counts them, or,
 * when the test is gone (deleted by any replica, before this block ran), deletes the keys that
 * block made again. Atomic with the block, so a deleted test's keys are never left behind: a
 * delete after the block removes what it wrote, one before it is seen here. Runs with EVAL, so a
 * restarted Redis (which forgot the loaded scripts) never fails it after the writes went in. */
static const char DEC_COUNT_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('UNLINK', KEYS[2], KEYS[3], KEYS[4], KEYS[5])\n"
    "  return 0\n"
    "end\n"
    "redis.call('HINCRBY', KEYS[1], 'predictions', ARGV[1])\n"
    "local prev = redis.call('HGET', KEYS[1], 'last_prediction')\n"
    "if not prev or tonumber(ARGV[2]) > tonumber(prev) then redis.call('HSET', KEYS[1], 'last_prediction', ARGV[2]) end\n"
    "for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end\n"
    "return tonumber(ARGV[1])\n";

/* KEYS: meta, armpred, settle, decision records, dlog. ARGV: per decision DEC_ARGS values:
 * request id, record (redis_record.h), created, end of the reward window (0: none), variant.
 * Writes decisions sent before in a batch whose fate is unknown (the link broke, or Redis
 * answered NOSCRIPT to another call): a decision whose record is there with its creation time
 * went in with its whole MULTI block (entry, window, counts) and is skipped; the others are
 * written as decision_block would, so a batch sent twice is counted once. Nothing when the test
 * is gone. Returns the number written. */
#define DEC_ARGS 5
static const char DEC_REPLAY_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local entry, st, arms, n, last = {'n', 0}, {}, {}, 0, nil\n"
    "for a = 0, #ARGV - 5, 5 do\n"
    "  local rid, t, s, v = ARGV[a + 1], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]\n"
    "  local cur = redis.call('HGET', KEYS[4], rid)\n"
    "  if not cur or string.match(cur, '^%S+ %S+ %S+ (%S+)') ~= t then\n"
    "    redis.call('HSET', KEYS[4], rid, ARGV[a + 2])\n"
    "    entry[#entry + 1] = rid; entry[#entry + 1] = t\n"
    "    if s ~= '0' then st[#st + 1] = s; st[#st + 1] = rid end\n"
    "    arms[v] = (arms[v] or 0) + 1\n"
    "    n = n + 1\n"
    "    if not last or tonumber(t) > tonumber(last) then last = t end\n"
    "  end\n"
    "end\n"
    "if n == 0 then return 0 end\n"
    "entry[2] = n\n"
    "redis.call('XADD', KEYS[5], '*', unpack(entry))\n"
    "if #st > 0 then redis.call('ZADD', KEYS[3], unpack(st)) end\n"
    "for v, c in pairs(arms) do redis.call('HINCRBY', KEYS[2], v, c) end\n"
    "redis.call('HINCRBY', KEYS[1], 'predictions', n)\n"
    "local prev = redis.call('HGET', KEYS[1], 'last_prediction')\n"
    "if not prev or tonumber(last) > tonumber(prev) then redis.call('HSET', KEYS[1], 'last_prediction', last) end\n"
    "return n\n";

/* dlog entries, in Lua: DLOG_LUA's dlog_entry(fields) gives an entry's request ids and, for each,
 * the creation time of the record the entry was written with (nil for an entry of one id
 * without it, the first shape: 'r', id). A record whose time differs was written again since
 * (a client sent its request id twice): the entry is stale for it. */
#define DLOG_LUA \
    "local function dlog_entry(f)\n" \
    "  local rids, ts = {}, {}\n" \
    "  if f[1] == 'n' then\n" \
    "    for j = 3, #f - 1, 2 do rids[#rids + 1] = f[j]; ts[#rids] = f[j + 1] end\n" \
    "  elseif f[1] == 'r' then rids[1] = f[2] end\n" \
    "  return rids, ts\n" \
    "end\n"

/* KEYS: dlog, decision records, settle of one test. ARGV: now, a time TRIM_GRACE ago, at most how
 * many records. Drops the expired decisions from the front of dlog (the oldest), records and
 * entries, up to the first entry holding a live one: a pass over a test with nothing to drop
 * reads one entry. One still waiting to be settled (its window ends at its expiry) goes only
 * once it expired before the second time, so the settling finds it; meanwhile the walk passes
 * it by, and its entry stays while it does. A record that outlives those written after it (its
 * window is longer, or the TTL was lowered since) holds back their dropping until it expires;
 * readers ignore them all the same. Returns how many records went. */
static const char TRIM_LUA[] =
    DLOG_LUA
    "local now, cut, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local xids, gone, from, seen, live = {}, {}, '-', 0, false\n"
    "while not live and seen < limit do\n"
    "  local entries = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)\n"
    "  for _, e in ipairs(entries) do\n"
    "    local rids, ts = dlog_entry(e[2])\n"
    "    local vals = #rids > 0 and redis.call('HMGET', KEYS[2], unpack(rids)) or {}\n"
    "    local drop, keep = {}, false\n"
    "    for j, rid in ipairs(rids) do\n"
    "      local val = vals[j]\n"
    "      if val then\n"
    "        local t, exp = string.match(val, '^%S+ %S+ %S+ (%S+) (%S+)')\n"
    "        if not ts[j] or t == ts[j] then\n"
    "          exp = tonumber(exp)\n"
    "          if exp and exp >= now then live = true; break end\n"
    "          if not exp or exp < cut or not redis.call('ZSCORE', KEYS[3], rid) then drop[#drop + 1] = rid\n"
    "          else keep = true end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if live then break end\n"
    "    for _, rid in ipairs(drop) do gone[#gone + 1] = rid end\n"
    "    if not keep then xids[#xids + 1] = e[1] end\n"
    "    seen = seen + #rids\n"
    "    from = '(' .. e[1]\n"
    "    if seen >= limit then break end\n"
    "  end\n"
    "  if #entries < 100 then break end\n"
    "end\n"
    "for i = 1, #gone, 1000 do redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 999, #gone))) end\n"
    "for i = 1, #xids, 1000 do redis.call('XDEL', KEYS[1], unpack(xids, i, math.min(i + 999, #xids))) end\n"
    "return #gone\n";

/* KEYS: dt, decision records, dlog of one test. ARGV: the prefix of the first format's record
 * keys (one hash with expiry per decision, indexed by dt), first rank, how many. Moves the
 * records of that slice of dt into the records hash, in this format, and into dlog in the
 * order of dt (ids from their creation times, always increasing), and deletes their keys; a
 * key that expired is gone already. Returns how many ids the slice held. */
static const char MIGRATE_LUA[] =
    "local ids = redis.call('ZRANGE', KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1, 'WITHSCORES')\n"
    "local lms, lseq = 0, 0\n"
    "local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)\n"
    "if #top > 0 then\n"
    "  local ms, seq = string.match(top[1][1], '^(%d+)-(%d+)$')\n"
    "  lms, lseq = tonumber(ms), tonumber(seq)\n"
    "end\n"
    "for i = 1, #ids, 2 do\n"
    "  local rid = ids[i]\n"
    "  local k = ARGV[1] .. rid\n"
    "  local h = redis.call('HGETALL', k)\n"
    "  if #h > 0 then\n"
    "    local d = {}\n"
    "    for j = 1, #h, 2 do d[h[j]] = h[j + 1] end\n"
    "    if d.v and d.t and d.e and redis.call('HEXISTS', KEYS[2], rid) == 0 then\n"
    "      local dr = d.dr\n"
    "      if not dr or dr == '' then dr = '-' end\n"
    "      redis.call('HSET', KEYS[2], rid, string.format('%s %s %s %s %s %s %s %s %s %d %.17g %s\\n%s', d.v,\n"
    "                 d.p or '0', d.x or '0', d.t, d.e, d.s or '0', d.a or '0', dr, d.mv or '0',\n"
    "                 tonumber(d.n or '0'), tonumber(d.sum or '0'), d.st == '1' and '1' or '0', d.c or ''))\n"
    "      local ms = math.floor(tonumber(ids[i + 1]) * 1000)\n"
    "      if ms > lms then lms, lseq = ms, 0 else lseq = lseq + 1 end\n"
    "      redis.call('XADD', KEYS[3], string.format('%d-%d', lms, lseq), 'n', 1, rid, d.t)\n"
    "    end\n"
    "    redis.call('DEL', k)\n"
    "  end\n"
    "end\n"
    "return #ids / 2\n";

/* KEYS: a hash. ARGV: field, value. Sets the field only on a hash that exists (a test's meta, a
 * token): a late write never brings back a deleted object. */
static const char HSET_EXISTING_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n";

/* KEYS: meta, armpred, sticky, snap, events, dlog, decision records of one test. Reads
 * everything of the test at one instant, for a backup: {meta, armpred, sticky, snap, events,
 * {request id, record, ...} in the order of dlog}, or nil when the test is gone. Read-only. */
static const char DUMP_LUA[] =
    DLOG_LUA
    "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
    "local out = {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),\n"
    "             redis.call('HGETALL', KEYS[4]), redis.call('XRANGE', KEYS[5], '-', '+')}\n"
    "local ds, ids, ts = {}, {}, {}\n"
    "for _, e in ipairs(redis.call('XRANGE', KEYS[6], '-', '+')) do\n"
    "  local rids, t = dlog_entry(e[2])\n"
    "  for j, rid in ipairs(rids) do ids[#ids + 1] = rid; ts[#ids] = t[j] end\n"
    "end\n"
    "for from = 1, #ids, 1000 do\n"
    "  local slice = {unpack(ids, from, math.min(from + 999, #ids))}\n"
    "  local vals = redis.call('HMGET', KEYS[7], unpack(slice))\n"
    "  for i, rid in ipairs(slice) do\n"
    "    local v, t = vals[i], ts[from + i - 1]\n"
    "    if v and (not t or string.match(v, '^%S+ %S+ %S+ (%S+)') == t) then ds[#ds + 1] = rid; ds[#ds + 1] = v end\n"
    "  end\n"
    "end\n"
    "out[6] = ds\n"
    "return out\n";

/* The scripts run with EVALSHA, loaded at start-up and again after a Redis restart (but
 * DEC_COUNT_LUA, which runs with EVAL). */
enum script { SCRIPT_APPEND, SCRIPT_SETTLE, SCRIPT_SNAPSHOT, SCRIPT_DEC_REPLAY, SCRIPT_TRIM, SCRIPT_MIGRATE,
              SCRIPT_HSET_EXISTING, SCRIPT_DUMP, SCRIPT_COUNT };
static const char *const SCRIPTS[SCRIPT_COUNT] = {APPEND_LUA, SETTLE_LUA, SNAPSHOT_LUA, DEC_REPLAY_LUA, TRIM_LUA,
                                                  MIGRATE_LUA, HSET_EXISTING_LUA, DUMP_LUA};

/* KEYS: a lock; ARGV: the holder's token. Deletes the lock only if this holder has it. */
static const char UNLOCK_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

/* ---- state ------------------------------------------------------------------------- */

/* Stream positions are struct store_event_pos ("ms-seq"), comparable with pos_le. */

/* A test the reader follows. */
struct followed {
    char id[SCOUT_ID_LEN + 1];
    char last[48];               /* last event id read ("0-0" at first) */
    struct store_event_pos pos;
    uint64_t since_snap;         /* events applied since this replica last snapshotted the test */
    double next_snap;            /* monotonic time of the next look at its snapshot */
};

/* A caller waiting for the writer to reach its flush marker; heap-allocated because a caller
 * that gives up (timeout) leaves it to the writer to free. */
struct flush_wait {
    int state;                   /* 0 pending, 1 written, -1 given up */
    int abandoned;
};

#define FLUSH_WAIT 3.0            /* seconds a flush waits for the writer */

enum aop_kind { AOP_DECISION, AOP_STATS, AOP_TOUCH, AOP_FLUSH, AOP_REWARDS };

/* Operations as /metrics counts them: the same names as the embedded store's. */
enum rop { ROP_DECISION, ROP_REWARDS, ROP_PUT_TEST, ROP_DELETE_TEST, ROP_ROLLOUT, ROP_SETTING, ROP_FLUSH, ROP_TOKEN,
           ROP_TOKEN_DELETE, ROP_ASSIGN, ROP_TEST_STATS, ROP_TOKEN_TOUCH, ROP_IMPORT, ROP_COUNT };
static const char *const ROP_NAMES[ROP_COUNT] = {
    "decision", "rewards", "put_test", "delete_test", "rollout", "setting", "flush", "token", "token_delete",
    "assignment", "test_stats", "token_touch", "import",
};
static const enum rop AOP_ROP[] = {[AOP_DECISION] = ROP_DECISION,
                                   [AOP_STATS] = ROP_TEST_STATS, [AOP_TOUCH] = ROP_TOKEN_TOUCH,
                                   [AOP_FLUSH] = ROP_FLUSH, [AOP_REWARDS] = ROP_REWARDS};

/* A queued asynchronous write (or a flush marker a caller waits on). */
struct aop {
    enum aop_kind kind;
    struct aop *next;
    int grouped;                 /* AOP_DECISION, AOP_REWARDS: already in a script call of this batch */
    int tried;                   /* AOP_DECISION: sent in a batch that failed (it may be in Redis) */
    union {
        struct store_decision *decision;
        struct {
            char test_id[SCOUT_ID_LEN + 1];
            char *json;
        } stats;
        struct {
            char id[17];
            double when;
        } touch;
        struct flush_wait *wait; /* AOP_FLUSH: who waits for the writes queued before it */
        struct {                 /* AOP_REWARDS: an update request's events, answered through then */
            char test_id[SCOUT_ID_LEN + 1];
            struct store_reward *ev;   /* the caller's, valid until then is called */
            int n;
            store_done_fn then;
            void *arg;
            int joins;           /* names decisions, which another replica may not have written yet:
                                    its own script call, which may answer WAIT */
            double join_deadline;      /* monotonic: from then on it joins what is there */
            double not_before;         /* monotonic: when it waited, the next try */
            int reply, offset;   /* in the batch: its script call's reply, its first event there */
            int answered, again; /* then was called; the call answered WAIT (try again) */
        } rewards;
    } u;
};

/* One decision's arguments as text (dec_text_fill). */
struct dec_text {
    char head[REDIS_RECORD_HEAD_MAX];
    char t[REDIS_RECORD_TIME_MAX], s[REDIS_RECORD_TIME_MAX], v[24];
    char *value;                 /* head, or a malloc'd head + context */
    size_t len;
};

/* The writer's room for building a block of decisions, reused from batch to batch: a batch
 * allocates nothing large (glibc maps every block over 128 KiB and unmaps it on free, main.c:
 * page faults, and a TLB shootdown that interrupts the other core). */
struct dec_scratch {
    struct dec_text text[DEC_CALL_MAX];
    struct aop *ops[DEC_CALL_MAX];
    const char *argv[8 + DEC_ARGS * DEC_CALL_MAX];
    size_t lens[8 + DEC_ARGS * DEC_CALL_MAX];
    long arm[DEC_CALL_MAX], count[DEC_CALL_MAX];
    char nums[2 * DEC_CALL_MAX][24];
};

struct rs {
    struct store base;           /* first: a struct store * is a struct rs * */
    struct redis_config cfg;     /* strings owned below */
    char *host, *user, *password;

    struct redis_pool pool;      /* links for synchronous operations of request threads */
    char sha[SCRIPT_COUNT][41];  /* the scripts' hashes, for EVALSHA */

    /* Followed tests: the reader's list, guarded by follow_lock; readers of positions wait on
     * applied (an update waiting for its own events). */
    pthread_mutex_t follow_lock;
    pthread_cond_t applied;
    struct readback *readbacks;  /* asynchronous updates waiting for their events, under follow_lock */
    struct followed *follow;
    size_t nfollow, capfollow;
    uint64_t follow_version;     /* bumped when the list changes */

    /* The async queue. */
    pthread_mutex_t qlock;
    pthread_cond_t qcond, qdone, qspace;   /* queued, flushed, room again */
    struct aop *qhead, *qtail;
    long qlen;
    struct aop *joins;           /* the writer's: updates waiting for decisions to join (not queued) */

    store_event_fn on_event;
    void *event_arg;
    store_change_fn on_change;
    void *change_arg;
    struct store_snapshots snap; /* take == NULL: no snapshots */
    char catalog_last[48];       /* the reader's position in scout:catalog (reader thread only) */
    char replica[33];            /* this process's random token (lock values) */

    pthread_t writer, reader;
    int started;
    _Atomic int stopping;
    _Atomic int reader_up, writer_up;   /* whether those threads' connections are up */
    _Atomic uint64_t events_read, writes_dropped, settled, purged;
    _Atomic uint64_t snapshots_taken, snapshots_restored, snapshot_errors, events_trimmed;
    _Atomic long pending_decisions;
    _Atomic uint64_t ops_ok[ROP_COUNT], ops_err[ROP_COUNT];
    struct histogram latency;    /* one synchronous operation or one pipelined batch */
    double last_settle, last_trim;
    size_t counts_next;          /* the writer's place in the followed tests for counts_step */
    struct dec_scratch dec;      /* the writer's */
};

static const struct store_ops redis_ops;
static int rs_flush(struct store *base);
static int take_results(const redisReply *r, size_t from, struct store_reward *ev, int n, double t,
                        struct store_event_pos *last, int *have_last);
static void reward_args(const struct store_reward *ev, char nums[2][40], const char **argv);
static void answer_after_readback(struct rs *s, const char *test_id, struct store_event_pos last, store_done_fn then,
                                  void *arg);

#define RS(base) ((struct rs *)(base))

/* Counts one operation and, for a synchronous one, its time since `started` (0: none). */
static void count_op(struct rs *s, enum rop op, int ok, double started) {
    atomic_fetch_add(ok ? &s->ops_ok[op] : &s->ops_err[op], 1);
    if (started > 0) histogram_observe(&s->latency, util_monotonic() - started);
}

static void fmt_double(char *buf, size_t len, double v) {
    snprintf(buf, len, "%.17g", v);
}

static int parse_pos(const char *id, struct store_event_pos *p) {
    return sscanf(id, "%" SCNu64 "-%" SCNu64, &p->ms, &p->seq) == 2;
}

static int pos_le(struct store_event_pos a, struct store_event_pos b) {
    return a.ms < b.ms || (a.ms == b.ms && a.seq <= b.seq);
}

static const char *hash_field(const redisReply *h, const char *name) {
    for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (h->element[i]->str && !strcmp(h->element[i]->str, name)) return h->element[i + 1]->str;
    return NULL;
}

static double num_field(const redisReply *h, const char *name, double dflt) {
    const char *v = hash_field(h, name);
    return v && *v ? strtod(v, NULL) : dflt;
}

static int reply_ok(const redisReply *r) {
    return r && r->type != REDIS_REPLY_ERROR;
}


/* ---- opening --------------------------------------------------------------------------- */

static int load_scripts(struct rs *s, redisContext *c, char *err, size_t errlen) {
    for (int i = 0; i < SCRIPT_COUNT; i++) {
        redisReply *a = redisCommand(c, "SCRIPT LOAD %s", SCRIPTS[i]);
        int ok = a && a->type == REDIS_REPLY_STRING;
        if (ok) snprintf(s->sha[i], sizeof s->sha[i], "%s", a->str);
        else snprintf(err, errlen, "Redis refused Scout's scripts: %s", a && a->type == REDIS_REPLY_ERROR ? a->str : "no answer");
        if (a) freeReplyObject(a);
        if (!ok) return SCOUT_ESTORE;
    }
    return SCOUT_OK;
}

/* Runs an EVALSHA command (argv[1] the script's hash; lens NULL for text arguments). A Redis
 * that restarted has forgotten Scout's scripts (NOSCRIPT): they are loaded again and the
 * command retried once. NULL when the connection broke (the caller fails the link). */
static redisReply *evalsha(struct rs *s, redisContext *c, int argc, const char **argv, const size_t *lens) {
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    char err[160];
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8) &&
        load_scripts(s, c, err, sizeof err) == SCOUT_OK) {
        freeReplyObject(r);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    return r;
}

/* Refuses a Redis older than 6.2, which lacks what the store uses (exclusive stream ranges,
 * UNLINK, HSET of many fields): said at start-up, not at the first scan. */
static int check_version(redisContext *c, char *err, size_t errlen) {
    redisReply *r = redisCommand(c, "INFO server");
    const char *v = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    const char *at = v ? strstr(v, "redis_version:") : NULL;
    int major = 0, minor = 0, rc = SCOUT_OK;
    if (r && r->type == REDIS_REPLY_ERROR) {
        /* an ACL user without INFO: nothing to tell by, the scripts will say it */
    } else if (!at || sscanf(at, "redis_version:%d.%d", &major, &minor) != 2) {
        snprintf(err, errlen, "Redis did not say its version (INFO server)");
        rc = SCOUT_ESTORE;
    } else if (major < 6 || (major == 6 && minor < 2)) {
        snprintf(err, errlen, "Scout needs Redis 6.2 or newer; this one is %d.%d", major, minor);
        rc = SCOUT_EINVAL;
    }
    if (r) freeReplyObject(r);
    return rc;
}

/* Brings data of an older layout (scout:format) to this one, before anything else reads it; a
 * layout newer than this build's stops the start. Format 1 kept each decision in its own
 * expiring hash: MIGRATE_LUA moves them into the test's records hash a slice at a time. Every
 * replica must run this build before any writes again in the older layout (a rolling upgrade
 * of the record format is not supported: stop the old replicas, then start the new ones). */
static int migrate(struct rs *s, redisContext *c, char *err, size_t errlen) {
    redisReply *f = redisCommand(c, "GET scout:format"), *tests = NULL;
    long format = f && f->type == REDIS_REPLY_STRING ? strtol(f->str, NULL, 10) : 1;
    long moved = 0;
    int rc = SCOUT_ESTORE;
    if (!reply_ok(f)) {
        snprintf(err, errlen, "reading the store's format from Redis failed");
        goto out;
    }
    if (format > STORE_FORMAT) {
        snprintf(err, errlen, "Redis holds Scout data in format %ld, newer than this build's (%d): run a newer scoutd",
                 format, STORE_FORMAT);
        rc = SCOUT_EINVAL;
        goto out;
    }
    if (format == STORE_FORMAT) {
        rc = SCOUT_OK;
        goto out;
    }
    /* From format 2 nothing moves: readers take its dlog entries (the first shape, r <id>) too,
     * and the new number keeps an older scoutd, which cannot read this one's, from starting. */
    if (format >= 2) goto done;
    tests = redisCommand(c, "HKEYS scout:tests");
    if (!tests || tests->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "reading the tests from Redis failed");
        goto out;
    }
    for (size_t i = 0; i < tests->elements; i++) {
        const char *id = tests->element[i]->str;
        char dt[128], recs[128], dlog[128], prefix[128], from[24], slice[16];
        long long start = 0;
        snprintf(dt, sizeof dt, "scout:{%s}:dt", id);
        snprintf(recs, sizeof recs, "scout:{%s}:d", id);
        snprintf(dlog, sizeof dlog, "scout:{%s}:dlog", id);
        snprintf(prefix, sizeof prefix, "scout:{%s}:d:", id);
        snprintf(slice, sizeof slice, "%d", MIGRATE_SLICE);
        for (;;) {
            snprintf(from, sizeof from, "%lld", start);
            const char *argv[] = {"EVALSHA", s->sha[SCRIPT_MIGRATE], "3", dt, recs, dlog, prefix, from, slice};
            redisReply *r = evalsha(s, c, 9, argv, NULL);
            long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
            if (n < 0) snprintf(err, errlen, "moving the decision records of test %s to format %d failed: %s", id,
                                STORE_FORMAT, r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
            if (r) freeReplyObject(r);
            if (n < 0) goto out;
            start += n;
            if (n < MIGRATE_SLICE) break;
        }
        moved += (long)start;
        redisReply *d = redisCommand(c, "DEL scout:{%s}:dt scout:{%s}:dx", id, id);   /* format 1's indexes */
        int gone = reply_ok(d);
        if (d) freeReplyObject(d);
        if (!gone) {
            snprintf(err, errlen, "deleting the indexes of format 1 of test %s failed", id);
            goto out;
        }
    }
done:
    freeReplyObject(f);
    if (!reply_ok(f = redisCommand(c, "SET scout:format %d", STORE_FORMAT))) {
        snprintf(err, errlen, "recording the store's format in Redis failed");
        goto out;
    }
    if (tests && tests->elements)
        log_msg(LOG_INFO, "store: moved the decision records of %zu tests to format %d (%ld index entries)",
                tests->elements, STORE_FORMAT, moved);
    rc = SCOUT_OK;
out:
    if (f) freeReplyObject(f);
    if (tests) freeReplyObject(tests);
    return rc;
}

int store_open_redis(struct store **out, const char *host, int port, const char *user, const char *password,
                     char *err, size_t errlen) {
    struct rs *s = calloc(1, sizeof *s);
    redisContext *c;
    int rc;
    if (!s) return SCOUT_ENOMEM;
    s->base.ops = &redis_ops;
    s->host = strdup(host);
    s->user = user ? strdup(user) : NULL;
    s->password = password ? strdup(password) : NULL;
    if (!s->host || (user && !s->user) || (password && !s->password)) {
        rc = SCOUT_ENOMEM;
        goto fail;
    }
    s->cfg = (struct redis_config){s->host, port, s->user, s->password, 0, 2.0};
    {
        unsigned char raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(s->replica, sizeof s->replica, raw, sizeof raw);
    }
    pthread_mutex_init(&s->follow_lock, NULL);
    pthread_cond_init(&s->applied, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_cond_init(&s->qspace, NULL);
    pthread_cond_init(&s->qdone, NULL);
    /* The first connection says clearly what is wrong (wrong password: SCOUT_EINVAL). */
    if ((rc = redis_open(&s->cfg, &c, err, errlen)) != SCOUT_OK) goto fail;
    if ((rc = redis_pool_init(&s->pool, &s->cfg, POOL_LINKS, c)) != SCOUT_OK) {
        redisFree(c);
        goto fail;
    }
    redis_pool_reconnect(&s->pool);
    if ((rc = check_version(c, err, errlen)) != SCOUT_OK || (rc = load_scripts(s, c, err, errlen)) != SCOUT_OK ||
        (rc = migrate(s, c, err, errlen)) != SCOUT_OK)
        goto fail;
    {   /* Changes from here on reach this process (what came before, loading reads). */
        redisReply *last = redisCommand(c, "XREVRANGE scout:catalog + - COUNT 1");
        snprintf(s->catalog_last, sizeof s->catalog_last, "%s",
                 last && last->type == REDIS_REPLY_ARRAY && last->elements == 1 ? last->element[0]->element[0]->str
                                                                                 : "0-0");
        if (last) freeReplyObject(last);
    }
    *out = &s->base;
    return SCOUT_OK;
fail:
    redis_ops.close(&s->base);
    return rc;
}

/* ---- following tests ------------------------------------------------------------------- */

static struct followed *find_followed(struct rs *s, const char *id) {
    for (size_t i = 0; i < s->nfollow; i++)
        if (!strcmp(s->follow[i].id, id)) return &s->follow[i];
    return NULL;
}

/* Starts following a test's stream after `last` ("0-0": from the start). */
static void follow(struct rs *s, const char *id, const char *last) {
    pthread_mutex_lock(&s->follow_lock);
    if (!find_followed(s, id)) {
        if (s->nfollow == s->capfollow) {
            size_t cap = s->capfollow ? s->capfollow * 2 : 16;
            struct followed *grown = realloc(s->follow, cap * sizeof *grown);
            if (!grown) goto out;
            s->follow = grown;
            s->capfollow = cap;
        }
        struct followed *f = &s->follow[s->nfollow++];
        memset(f, 0, sizeof *f);
        snprintf(f->id, sizeof f->id, "%s", id);
        snprintf(f->last, sizeof f->last, "%s", last);
        parse_pos(last, &f->pos);
        /* spread the tests' snapshot looks over one interval */
        f->next_snap = util_monotonic() + s->snap.interval * (0.5 + randombytes_uniform(1000) / 2000.0);
        s->follow_version++;
    }
out:
    pthread_mutex_unlock(&s->follow_lock);
}

static void unfollow(struct rs *s, const char *id) {
    pthread_mutex_lock(&s->follow_lock);
    struct followed *f = find_followed(s, id);
    if (f) {
        *f = s->follow[--s->nfollow];
        s->follow_version++;
    }
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->follow_lock);
}

/* Applies one stream entry: fields v, r, c, q, t. */
static void apply_entry(struct rs *s, const char *test_id, const redisReply *fields) {
    long variant = -1;
    double reward = NAN, ts = 0;
    const char *ctx = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (!k || !v) continue;
        if (!strcmp(k, "v")) variant = strtol(v, NULL, 10);
        else if (!strcmp(k, "r")) reward = strtod(v, NULL);
        else if (!strcmp(k, "c")) ctx = *v ? v : NULL;
        else if (!strcmp(k, "t")) ts = strtod(v, NULL);
    }
    if (variant < 0 || !isfinite(reward)) return;
    if (s->on_event) s->on_event(s->event_arg, test_id, variant, reward, ctx, ts);
    atomic_fetch_add(&s->events_read, 1);
}

/* Applies one catalog entry: tells the app, then follows (or forgets) the test's stream — in
 * that order, so a new test is registered before any of its events arrive. */
static void catch_up_trimmed(struct rs *s, struct redis_link *l, const char *test_id, const char *upto);
static int restore_snapshot(struct rs *s, struct redis_link *l, const char *test_id, char *id, size_t idlen,
                            int *trimmed);

static void apply_change(struct rs *s, struct redis_link *l, const redisReply *entry) {
    redisContext *c = l->c;
    struct store_change_event ev = {0};
    const redisReply *f;
    const char *op, *id;
    redisReply *def = NULL, *meta = NULL;
    if (!c || entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return;   /* link lost: read it again */
    snprintf(s->catalog_last, sizeof s->catalog_last, "%s", entry->element[0]->str);
    f = entry->element[1];
    op = hash_field(f, "op");
    id = hash_field(f, "id");
    if (!op) return;
    ev.test_id = id;
    if (!strcmp(op, "put") && id) {
        def = redisCommand(c, "HGET scout:tests %s", id);
        meta = redisCommand(c, "HMGET scout:{%s}:meta created", id);
        if (!def || def->type != REDIS_REPLY_STRING) goto out;   /* deleted meanwhile */
        ev.kind = STORE_TEST_PUT;
        ev.definition = def->str;
        ev.created = meta && meta->type == REDIS_REPLY_ARRAY && meta->element[0]->str ? strtod(meta->element[0]->str, NULL) : 0;
        if (s->on_change) s->on_change(s->change_arg, &ev);
        {   /* A test made here is followed already; one imported elsewhere starts from its
             * snapshot (the events before it are history, not what its state was folded from). */
            char snap[48] = "";
            int known, gone;
            pthread_mutex_lock(&s->follow_lock);
            known = find_followed(s, id) != NULL;
            pthread_mutex_unlock(&s->follow_lock);
            if (!known && restore_snapshot(s, l, id, snap, sizeof snap, &gone) == SCOUT_EINVAL && gone)
                log_fields(LOG_ERROR, "a new test's snapshot cannot be read: its learned state misses what it "
                                      "covers until this replica restarts with a release that reads it",
                           json_pack("{s:s, s:s}", "event", "snapshot_unreadable", "model_id", id));
            if (!known) follow(s, id, snap[0] ? snap : "0-0");
        }
    } else if (!strcmp(op, "delete") && id) {
        ev.kind = STORE_TEST_DELETED;
        unfollow(s, id);
        if (s->on_change) s->on_change(s->change_arg, &ev);
    } else if (!strcmp(op, "rollout") && id) {
        meta = redisCommand(c, "HMGET scout:{%s}:meta rollout", id);
        if (!meta || meta->type != REDIS_REPLY_ARRAY || !meta->element[0]->str) goto out;
        ev.kind = STORE_ROLLOUT;
        ev.variant_id = strtol(meta->element[0]->str, NULL, 10);   /* the latest value, whichever came first */
        if (s->on_change) s->on_change(s->change_arg, &ev);
    } else if (!strcmp(op, "trim") && id) {
        const char *upto = hash_field(f, "upto");
        if (upto) catch_up_trimmed(s, l, id, upto);
    } else if (!strcmp(op, "setting")) {
        ev.kind = STORE_SETTING;
        ev.key = hash_field(f, "key");
        if (ev.key && s->on_change) s->on_change(s->change_arg, &ev);
    }
out:
    if (def) freeReplyObject(def);
    if (meta) freeReplyObject(meta);
}

/* One XREAD over every followed stream; applies what came, in stream order per test. */
static void read_once(struct rs *s, struct redis_link *l) {
    size_t n, i, nids;
    const char **argv;
    size_t *lens;
    char **ids;
    redisContext *c = redis_link_get(l);
    redisReply *r;
    if (!c) {
        util_sleep(0.1);
        return;
    }
    pthread_mutex_lock(&s->follow_lock);
    n = s->nfollow;
    nids = 2 * n;
    argv = calloc(8 + 2 * n, sizeof *argv);
    lens = calloc(8 + 2 * n, sizeof *lens);
    ids = calloc(2 * n + 1, sizeof *ids);
    if (!argv || !lens || !ids) n = 0;
    for (i = 0; i < n; i++) {
        if (asprintf(&ids[2 * i], "scout:{%s}:events", s->follow[i].id) < 0) ids[2 * i] = NULL;
        ids[2 * i + 1] = strdup(s->follow[i].last);
        if (!ids[2 * i] || !ids[2 * i + 1]) n = i;
    }
    pthread_mutex_unlock(&s->follow_lock);
    if (!argv || !lens || !ids) goto done;
    {
        char count[16], block[16];
        int argc = 0;
        snprintf(count, sizeof count, "%d", READ_COUNT);
        snprintf(block, sizeof block, "%d", READ_BLOCK_MS);
        argv[argc++] = "XREAD";
        argv[argc++] = "COUNT";
        argv[argc++] = count;
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
        argv[argc++] = "STREAMS";
        argv[argc++] = "scout:catalog";
        for (i = 0; i < n; i++) argv[argc++] = ids[2 * i];
        argv[argc++] = s->catalog_last;
        for (i = 0; i < n; i++) argv[argc++] = ids[2 * i + 1];
        for (int k = 0; k < argc; k++) lens[k] = strlen(argv[k]);
        r = redisCommandArgv(c, argc, argv, lens);
    }
    if (!r) {
        redis_link_fail(l, c->errstr);
        goto done;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        /* The catalog first: a notice of trimmed events must be seen before the events after
         * the gap (XREAD reads every stream at one instant). When the catalog came in a full
         * batch, more of it waits: the tests' events are left for the next XREAD. */
        int catalog_full = 0;
        for (size_t k = 0; k < r->elements; k++) {
            redisReply *stream = r->element[k];
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2 || !stream->element[0]->str ||
                strcmp(stream->element[0]->str, "scout:catalog"))
                continue;
            for (size_t e = 0; e < stream->element[1]->elements && l->c; e++)
                apply_change(s, l, stream->element[1]->element[e]);
            catalog_full = stream->element[1]->elements >= READ_COUNT;
        }
        for (size_t k = 0; k < r->elements && !catalog_full && l->c; k++) {
            redisReply *stream = r->element[k], *entries;
            char test_id[SCOUT_ID_LEN + 1] = "";
            const char *key;
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2) continue;
            key = stream->element[0]->str;
            entries = stream->element[1];
            if (!key || sscanf(key, "scout:{%36[^}]}:events", test_id) != 1) continue;
            for (size_t e = 0; e < entries->elements; e++) {
                redisReply *entry = entries->element[e];
                struct followed *f;
                struct store_event_pos pos;
                int fresh;
                if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 || !parse_pos(entry->element[0]->str, &pos))
                    continue;
                /* Only events past the position: a snapshot taken in this pass covers the rest. */
                pthread_mutex_lock(&s->follow_lock);
                f = find_followed(s, test_id);
                fresh = f && !pos_le(pos, f->pos);
                pthread_mutex_unlock(&s->follow_lock);
                if (!fresh) continue;
                apply_entry(s, test_id, entry->element[1]);
                pthread_mutex_lock(&s->follow_lock);
                if ((f = find_followed(s, test_id))) {
                    snprintf(f->last, sizeof f->last, "%s", entry->element[0]->str);
                    f->pos = pos;
                    f->since_snap++;
                }
                pthread_mutex_unlock(&s->follow_lock);
            }
        }
        pthread_mutex_lock(&s->follow_lock);
        pthread_cond_broadcast(&s->applied);
        pthread_mutex_unlock(&s->follow_lock);
    } else if (r->type == REDIS_REPLY_ERROR) {
        log_msg(LOG_ERROR, "store: reading events failed: %s", r->str);
    }
    freeReplyObject(r);
done:
    for (i = 0; ids && i < nids; i++) free(ids[i]);
    free(ids);
    free(argv);
    free(lens);
}

/* ---- snapshots ------------------------------------------------------------------------ */

#define SNAP_PER_PASS 4   /* tests looked at per reader pass: bounded work between two XREADs */

/* Sets the position the reader continues from (after a restored snapshot). */
static void set_position(struct rs *s, const char *test_id, const char *id) {
    struct store_event_pos pos;
    pthread_mutex_lock(&s->follow_lock);
    struct followed *f = find_followed(s, test_id);
    if (f && parse_pos(id, &pos)) {
        snprintf(f->last, sizeof f->last, "%s", id);
        f->pos = pos;
        f->since_snap = 0;
    }
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->follow_lock);
}

/* Puts a test's stored snapshot back, if it has one: SCOUT_OK with the id it covers in id (""
 * when there is none), SCOUT_EINVAL when it cannot be read (*trimmed: events it covers may be
 * gone), SCOUT_ESTORE when Redis failed. */
static int restore_snapshot(struct rs *s, struct redis_link *l, const char *test_id, char *id, size_t idlen,
                            int *trimmed) {
    redisReply *r = redis_link_command(l, "HMGET scout:{%s}:snap id state trimmed", test_id);
    int rc = SCOUT_ESTORE;
    id[0] = '\0';
    *trimmed = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) goto out;
    rc = SCOUT_OK;
    if (r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) goto out;
    *trimmed = r->element[2]->type == REDIS_REPLY_STRING;
    if (!s->snap.restore ||
        s->snap.restore(s->snap.arg, test_id, (const unsigned char *)r->element[1]->str, r->element[1]->len) != 0) {
        atomic_fetch_add(&s->snapshot_errors, 1);
        rc = SCOUT_EINVAL;
        goto out;
    }
    snprintf(id, idlen, "%s", r->element[0]->str);
    atomic_fetch_add(&s->snapshots_restored, 1);
out:
    if (r) freeReplyObject(r);
    return rc;
}

/* Files the test's state as of the reader's position (the reader thread is the only one that
 * applies events, so state and position agree). */
static void take_snapshot(struct rs *s, struct redis_link *l, const char *test_id, const char *last) {
    unsigned char *state = NULL;
    size_t len = 0;
    char key[128], evkey[128], metakey[128], now[24], keep[24], format[8], maxlen[16];
    redisContext *c = redis_link_get(l);
    redisReply *r;
    if (!c || s->snap.take(s->snap.arg, test_id, &state, &len) != 0) return;   /* deleted meanwhile */
    snprintf(key, sizeof key, "scout:{%.36s}:snap", test_id);
    snprintf(evkey, sizeof evkey, "scout:{%.36s}:events", test_id);
    snprintf(metakey, sizeof metakey, "scout:{%.36s}:meta", test_id);
    snprintf(now, sizeof now, "%lld", (long long)(util_now() * 1000.0));
    snprintf(keep, sizeof keep, "%lld", (long long)(s->snap.retention * 1000.0));
    snprintf(format, sizeof format, "%d", SNAPSHOT_FORMAT);
    snprintf(maxlen, sizeof maxlen, "%d", CATALOG_MAXLEN);
    const char *argv[] = {"EVALSHA", s->sha[SCRIPT_SNAPSHOT], "4", key, evkey, "scout:catalog", metakey, last,
                          (const char *)state, now, keep, format, test_id, maxlen};
    size_t lens[14];
    for (int i = 0; i < 14; i++) lens[i] = i == 8 ? len : strlen(argv[i]);
    if (!(r = evalsha(s, c, 14, argv, lens))) redis_link_fail(l, c->errstr);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
        if (r->element[0]->integer == 1) atomic_fetch_add(&s->snapshots_taken, 1);
        atomic_fetch_add(&s->events_trimmed, (uint64_t)r->element[1]->integer);
    } else {
        atomic_fetch_add(&s->snapshot_errors, 1);
        if (r && r->type == REDIS_REPLY_ERROR) log_msg(LOG_ERROR, "store: filing a snapshot failed: %s", r->str);
    }
    if (r) freeReplyObject(r);
    free(state);
}

/* Snapshots the tests whose time came (at most SNAP_PER_PASS per pass) and that learned
 * something since this replica last looked: the replica that takes a test's lock files it, so
 * one replica snapshots a test per interval. */
static void snapshot_step(struct rs *s, struct redis_link *l) {
    struct {
        char id[SCOUT_ID_LEN + 1], last[48];
    } due[SNAP_PER_PASS];
    int n = 0;
    double now = util_monotonic();
    if (!s->snap.take || !redis_link_get(l)) return;
    pthread_mutex_lock(&s->follow_lock);
    for (size_t i = 0; i < s->nfollow && n < SNAP_PER_PASS; i++) {
        struct followed *f = &s->follow[i];
        if (f->next_snap > now) continue;
        f->next_snap = now + s->snap.interval;
        if (f->since_snap == 0) continue;
        f->since_snap = 0;
        snprintf(due[n].id, sizeof due[n].id, "%s", f->id);
        snprintf(due[n].last, sizeof due[n].last, "%s", f->last);
        n++;
    }
    pthread_mutex_unlock(&s->follow_lock);
    for (int i = 0; i < n && l->c; i++) {
        redisReply *r = redis_link_command(l, "SET scout:{%s}:snaplock %s NX PX %lld", due[i].id, s->replica,
                                           (long long)(s->snap.interval * 1000.0));
        if (r && r->type == REDIS_REPLY_STATUS) take_snapshot(s, l, due[i].id, due[i].last);
        if (r) freeReplyObject(r);
    }
}

/* A replica learned that events of a test before `upto` were trimmed: if it had not read them
 * all, it takes the snapshot that covers them and continues after it. */
static void catch_up_trimmed(struct rs *s, struct redis_link *l, const char *test_id, const char *upto) {
    struct store_event_pos gone, pos;
    int behind = 0, trimmed;
    char id[48];
    if (!parse_pos(upto, &gone)) return;
    pthread_mutex_lock(&s->follow_lock);
    struct followed *f = find_followed(s, test_id);
    if (f) {
        pos = f->pos;
        behind = !pos_le(gone, pos);
    }
    pthread_mutex_unlock(&s->follow_lock);
    if (!behind) return;
    if (restore_snapshot(s, l, test_id, id, sizeof id, &trimmed) == SCOUT_OK && id[0] &&
        parse_pos(id, &gone) && !pos_le(gone, pos)) {
        set_position(s, test_id, id);
        log_fields(LOG_WARN, "this replica fell behind events trimmed meanwhile and took the test's snapshot",
                   json_pack("{s:s, s:s, s:s}", "event", "snapshot_catch_up", "model_id", test_id, "snapshot_event", id));
    } else {
        log_fields(LOG_ERROR, "this replica fell behind events trimmed meanwhile and cannot read the test's snapshot: "
                              "its learned state misses events until it restarts",
                   json_pack("{s:s, s:s}", "event", "snapshot_unreadable", "model_id", test_id));
    }
}

/* An asynchronous update whose answer waits until the reader applied its events (the same
 * read-your-writes bound as wait_applied) without holding a request thread. */
struct readback {
    struct readback *next;
    char test_id[SCOUT_ID_LEN + 1];
    struct store_event_pos pos;
    double deadline;              /* monotonic */
    store_done_fn then;
    void *arg;
};

/* Answers the waiting updates whose events were applied, whose test is no longer followed, or
 * whose wait ran out; all of them when the store stops. Called by the reader after each pass
 * (and by close); the answers go out after the lock is released. */
static void finish_readbacks(struct rs *s, int all) {
    struct readback *ready = NULL, **p;
    double now = util_monotonic();
    pthread_mutex_lock(&s->follow_lock);
    for (p = &s->readbacks; *p;) {
        struct readback *rb = *p;
        struct followed *f = find_followed(s, rb->test_id);
        if (all || !f || pos_le(rb->pos, f->pos) || now >= rb->deadline) {
            *p = rb->next;
            rb->next = ready;
            ready = rb;
        } else {
            p = &rb->next;
        }
    }
    pthread_mutex_unlock(&s->follow_lock);
    while (ready) {
        struct readback *next = ready->next;
        ready->then(ready->arg, SCOUT_OK);   /* the events are durable: only the wait ends */
        free(ready);
        ready = next;
    }
}

static void *reader_main(void *arg) {
    struct rs *s = arg;
    struct redis_link l;
    redis_link_init(&l, &s->cfg);
    while (!atomic_load(&s->stopping)) {
        read_once(s, &l);
        finish_readbacks(s, 0);
        snapshot_step(s, &l);
        atomic_store(&s->reader_up, l.c != NULL);
    }
    redis_link_close(&l);
    return NULL;
}

/* Waits until the reader applied the test's stream up to pos (bounded). */
static void wait_applied(struct rs *s, const char *test_id, struct store_event_pos pos) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(READBACK_WAIT * 1e9);
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->follow_lock);
    for (;;) {
        struct followed *f = find_followed(s, test_id);
        if (!f || pos_le(pos, f->pos) || atomic_load(&s->stopping)) break;
        if (pthread_cond_timedwait(&s->applied, &s->follow_lock, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&s->follow_lock);
}

/* ---- the asynchronous writer ---------------------------------------------------------- */

static void aop_free(struct aop *op) {
    if (op->kind == AOP_DECISION) {   /* the caller took it off the pending count */
        free(op->u.decision->context);
        free(op->u.decision);
    } else if (op->kind == AOP_STATS) {
        free(op->u.stats.json);
    } else if (op->kind == AOP_REWARDS && !op->u.rewards.answered) {
        op->u.rewards.then(op->u.rewards.arg, SCOUT_ESTORE);   /* dropped: the update failed */
    }
    free(op);
}

/* Queues op; the queue is bounded: past MAX_QUEUE a write is dropped (and counted) rather
 * than letting memory grow while Redis is away. Flush markers are never dropped. */
static void enqueue(struct rs *s, struct aop *op) {
    pthread_mutex_lock(&s->qlock);
    if (op->kind != AOP_FLUSH && s->qlen >= MAX_QUEUE && atomic_load(&s->writer_up)) {
        /* Redis is up but slower than the decisions coming in: wait for room (backpressure)
         * rather than drop a record a reward may join later. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)QUEUE_WAIT;
        while (s->qlen >= MAX_QUEUE && atomic_load(&s->writer_up) && !atomic_load(&s->stopping))
            if (pthread_cond_timedwait(&s->qspace, &s->qlock, &until) == ETIMEDOUT) break;
    }
    if (op->kind != AOP_FLUSH && (s->qlen >= MAX_QUEUE || atomic_load(&s->stopping))) {
        pthread_mutex_unlock(&s->qlock);
        atomic_fetch_add(&s->writes_dropped, 1);
        count_op(s, AOP_ROP[op->kind], 0, 0);
        aop_free(op);
        return;
    }
    if (op->kind == AOP_DECISION) atomic_fetch_add(&s->pending_decisions, 1);
    op->next = NULL;
    if (s->qtail) s->qtail->next = op;
    else s->qhead = op;
    s->qtail = op;
    s->qlen++;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
}

/* Fills f for d: its record (the head in f, the context after it in value when there is one),
 * its creation time, the end of its window and its variant. */
static int dec_text_fill(struct dec_text *f, const struct store_decision *d) {
    struct redis_record r = {d->variant_id, d->propensity, d->explored, d->created, d->expires, d->settle_at,
                             d->aggregate, d->has_default, d->default_reward, d->model_version, 0, 0, 0, NULL};
    size_t h = redis_record_head(f->head, &r), c = d->context ? strlen(d->context) : 0;
    redis_record_time(f->t, d->created);
    if (d->settle_at > 0) redis_record_time(f->s, d->settle_at);
    else strcpy(f->s, "0");
    snprintf(f->v, sizeof f->v, "%ld", d->variant_id);
    f->value = f->head;
    f->len = h;
    if (c) {
        if (!(f->value = malloc(h + c))) return -1;
        memcpy(f->value, f->head, h);
        memcpy(f->value + h, d->context, c);
        f->len = h + c;
    }
    return 0;
}

/* Appends argv[0..argc) (text unless lens) to the pipeline, and sends the pipeline once it
 * holds PIPE_FLUSH bytes: hiredis's output buffer then stays small, and no batch maps and unmaps
 * a large block (glibc maps every block over 128 KiB, main.c). Returns 0, -1 when the link broke
 * (c->err says why). */
static int pipe_argv(redisContext *c, int argc, const char **argv, const size_t *lens) {
    int done = 0;
    if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) return -1;
    if (sdslen(c->obuf) < PIPE_FLUSH) return 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK) return -1;
    return 0;
}

/* Appends the writing of the decisions of first's test in the batch not written yet (first and
 * later queued ones of the same test, sent before or not as first was: op->tried), as many as
 * fit one block: DEC_CALL_MAX, or DEC_CALL_BYTES of records. They are marked grouped; later ones
 * go in another block. Fresh decisions go in one MULTI block of plain commands — their records
 * (one HSET), one dlog entry listing them (XADD), their windows (ZADD) and DEC_COUNT_LUA, which
 * counts them or undoes the block when the test is gone. Decisions sent before go through
 * DEC_REPLAY_LUA, which skips those already in. Returns the replies that follow: 0 when nothing
 * was appended (out of memory: the decisions stay ungrouped and the batch is retried), -1 when
 * the link broke. */
static int append_decisions(struct rs *s, redisContext *c, struct aop *first) {
    struct dec_scratch *x = &s->dec;
    const char *test = first->u.decision->test_id;
    int tried = first->tried, replies = 0, rc = 0;
    char keys[5][128], mtxt[24];
    size_t m = 0, bytes = 0, k, narms = 0, newest = 0;
    for (struct aop *op = first; op && m < DEC_CALL_MAX && bytes < DEC_CALL_BYTES; op = op->next) {
        if (op->kind != AOP_DECISION || op->grouped || op->tried != tried || strcmp(op->u.decision->test_id, test))
            continue;
        if (dec_text_fill(&x->text[m], op->u.decision) < 0) goto out;
        x->ops[m] = op;
        bytes += x->text[m].len;
        if (op->u.decision->created > x->ops[newest]->u.decision->created) newest = m;
        m++;
    }
    snprintf(keys[0], sizeof keys[0], "scout:{%s}:meta", test);
    snprintf(keys[1], sizeof keys[1], "scout:{%s}:armpred", test);
    snprintf(keys[2], sizeof keys[2], "scout:{%s}:settle", test);
    snprintf(keys[3], sizeof keys[3], "scout:{%s}:d", test);
    snprintf(keys[4], sizeof keys[4], "scout:{%s}:dlog", test);
    snprintf(mtxt, sizeof mtxt, "%zu", m);
    if (tried) {   /* EVALSHA replay 5 keys, then DEC_ARGS values per decision */
        x->argv[0] = "EVALSHA";
        x->argv[1] = s->sha[SCRIPT_DEC_REPLAY];
        x->argv[2] = "5";
        for (int i = 0; i < 5; i++) x->argv[3 + i] = keys[i];
        for (k = 0; k < 8; k++) x->lens[k] = strlen(x->argv[k]);
        for (size_t i = 0; i < m; i++) {
            struct dec_text *f = &x->text[i];
            const char *vals[DEC_ARGS] = {x->ops[i]->u.decision->request_id, f->value, f->t, f->s, f->v};
            for (int j = 0; j < DEC_ARGS; j++, k++) {
                x->argv[k] = vals[j];
                x->lens[k] = j == 1 ? f->len : strlen(vals[j]);
            }
        }
        rc = pipe_argv(c, (int)k, x->argv, x->lens);
        replies = 1;
        goto out;
    }
    /* MULTI; HSET d rid record ...; XADD dlog * n m rid created ...; ZADD settle end rid ...;
     * EVAL DEC_COUNT_LUA ...; EXEC */
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    if ((rc = pipe_argv(c, 1, multi, NULL)) < 0) goto out;
    x->argv[0] = "HSET";
    x->argv[1] = keys[3];
    for (k = 0; k < 2; k++) x->lens[k] = strlen(x->argv[k]);
    for (size_t i = 0; i < m; i++, k += 2) {
        x->argv[k] = x->ops[i]->u.decision->request_id;
        x->lens[k] = strlen(x->argv[k]);
        x->argv[k + 1] = x->text[i].value;
        x->lens[k + 1] = x->text[i].len;
    }
    if ((rc = pipe_argv(c, (int)k, x->argv, x->lens)) < 0) goto out;
    x->argv[0] = "XADD";
    x->argv[1] = keys[4];
    x->argv[2] = "*";
    x->argv[3] = "n";
    x->argv[4] = mtxt;
    k = 5;
    for (size_t i = 0; i < m; i++) {
        x->argv[k++] = x->ops[i]->u.decision->request_id;
        x->argv[k++] = x->text[i].t;
    }
    if ((rc = pipe_argv(c, (int)k, x->argv, NULL)) < 0) goto out;
    x->argv[0] = "ZADD";
    x->argv[1] = keys[2];
    k = 2;
    for (size_t i = 0; i < m; i++)
        if (x->ops[i]->u.decision->settle_at > 0) {
            x->argv[k++] = x->text[i].s;
            x->argv[k++] = x->ops[i]->u.decision->request_id;
        }
    if (k > 2 && (rc = pipe_argv(c, (int)k, x->argv, NULL)) < 0) goto out;
    replies = k > 2 ? 1 : 0;
    for (size_t i = 0; i < m; i++) {   /* decisions per variant */
        long v = x->ops[i]->u.decision->variant_id;
        size_t a = 0;
        while (a < narms && x->arm[a] != v) a++;
        if (a == narms) {
            x->arm[narms] = v;
            x->count[narms++] = 0;
        }
        x->count[a]++;
    }
    x->argv[0] = "EVAL";
    x->argv[1] = DEC_COUNT_LUA;
    x->argv[2] = "5";
    for (int i = 0; i < 5; i++) x->argv[3 + i] = keys[i];
    x->argv[8] = mtxt;
    x->argv[9] = x->text[newest].t;
    for (k = 10; k - 10 < 2 * narms; k += 2) {
        size_t a = (k - 10) / 2;
        snprintf(x->nums[2 * a], sizeof x->nums[0], "%ld", x->arm[a]);
        snprintf(x->nums[2 * a + 1], sizeof x->nums[0], "%ld", x->count[a]);
        x->argv[k] = x->nums[2 * a];
        x->argv[k + 1] = x->nums[2 * a + 1];
    }
    if ((rc = pipe_argv(c, (int)k, x->argv, NULL)) < 0 || (rc = pipe_argv(c, 1, exec, NULL)) < 0) goto out;
    replies += 5;   /* MULTI's OK; HSET's, XADD's and EVAL's QUEUED; EXEC's array */
out:
    for (size_t i = 0; i < m; i++) {
        if (x->text[i].value != x->text[i].head) free(x->text[i].value);
        if (replies || rc < 0) x->ops[i]->grouped = 1;   /* sent, or maybe: tried when the batch fails */
    }
    return rc < 0 ? -1 : replies;
}

/* Appends the command of one queued write to the pipeline; returns how many replies follow. */
static int append_aop(struct rs *s, redisContext *c, struct aop *op) {
    char key[128], num[40];
    switch (op->kind) {
    case AOP_DECISION:
        return op->grouped ? 0 : append_decisions(s, c, op);
    case AOP_STATS:
        snprintf(key, sizeof key, "scout:{%s}:meta", op->u.stats.test_id);
        redisAppendCommand(c, "EVALSHA %s 1 %s stats %s", s->sha[SCRIPT_HSET_EXISTING], key, op->u.stats.json);
        return 1;
    case AOP_TOUCH:
        snprintf(key, sizeof key, "scout:token:%s", op->u.touch.id);
        fmt_double(num, sizeof num, op->u.touch.when);
        redisAppendCommand(c, "EVALSHA %s 1 %s last_used %s", s->sha[SCRIPT_HSET_EXISTING], key, num);
        return 1;
    case AOP_FLUSH:
    case AOP_REWARDS:   /* append_rewards_call */
        return 0;
    }
    return 0;
}

/* Whether op is an update that can share first's script call: one of the same test, neither
 * joining decisions (a call that may answer WAIT carries one update). */
static int same_call(const struct aop *first, const struct aop *op) {
    return op == first || (op->kind == AOP_REWARDS && !op->grouped && !op->u.rewards.answered &&
                           !first->u.rewards.joins && !op->u.rewards.joins &&
                           !strcmp(op->u.rewards.test_id, first->u.rewards.test_id));
}

/* Answers a queued update: rc, and with SCOUT_OK once this replica's reader applied its events. */
static void answer_rewards(struct rs *s, struct aop *op, int rc, struct store_event_pos last, int have_last) {
    op->u.rewards.answered = 1;
    count_op(s, ROP_REWARDS, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, 0);
    if (rc == SCOUT_OK && have_last) answer_after_readback(s, op->u.rewards.test_id, last, op->u.rewards.then, op->u.rewards.arg);
    else op->u.rewards.then(op->u.rewards.arg, rc);
}

/* Answers every update of the batch not answered yet with rc (the link failed: whether their
 * scripts ran is unknown, and the client decides whether to send again). */
static void fail_rewards(struct rs *s, struct aop *batch, int rc) {
    struct store_event_pos none = {0, 0};
    for (struct aop *op = batch; op; op = op->next)
        if (op->kind == AOP_REWARDS && !op->u.rewards.answered) answer_rewards(s, op, rc, none, 0);
}

/* Whether op is an update of the script call whose reply is the batch's reply-th (append_rewards_call). */
static int in_call(const struct aop *op, int reply) {
    return op->kind == AOP_REWARDS && op->grouped && !op->u.rewards.answered && op->u.rewards.reply == reply;
}

/* Appends one APPEND script call for first's update and the later updates of the batch that can
 * share it (same_call), up to REWARDS_CALL_MAX events (first's own may be more): each is marked
 * grouped and learns its reply and the place of its events in it. The others of the test go in
 * another call: a bounded call lets Redis answer the first updates while scoutd sends the next,
 * and allocates nothing large. 1 when appended; 0 when out of memory (those updates are
 * answered so). */
static int append_rewards_call(struct rs *s, redisContext *c, struct aop *first, int reply, const char *now) {
    const char *test = first->u.rewards.test_id;
    int events = 0, offset = 0;
    size_t k = 0;
    char keys[3][128];
    for (struct aop *op = first; op; op = op->next)
        if (same_call(first, op) && (op == first || events + op->u.rewards.n <= REWARDS_CALL_MAX)) {
            events += op->u.rewards.n;
            op->grouped = 1;
            op->u.rewards.reply = reply;
        }
    const char **argv = calloc(8 + 5 * (size_t)events, sizeof *argv);
    char (*nums)[2][40] = calloc(events ? (size_t)events : 1, sizeof *nums);
    if (!argv || !nums) {
        struct store_event_pos none = {0, 0};
        free(argv);
        free(nums);
        for (struct aop *op = first; op; op = op->next)
            if (in_call(op, reply)) answer_rewards(s, op, SCOUT_ENOMEM, none, 0);
        return 0;
    }
    snprintf(keys[0], sizeof keys[0], "scout:{%s}:events", test);
    snprintf(keys[1], sizeof keys[1], "scout:{%s}:meta", test);
    snprintf(keys[2], sizeof keys[2], "scout:{%s}:d", test);
    argv[k++] = "EVALSHA";
    argv[k++] = s->sha[SCRIPT_APPEND];
    argv[k++] = "3";
    for (int i = 0; i < 3; i++) argv[k++] = keys[i];
    argv[k++] = now;
    argv[k++] = first->u.rewards.joins && util_monotonic() < first->u.rewards.join_deadline ? "1" : "0";
    for (struct aop *op = first; op; op = op->next) {
        if (!in_call(op, reply)) continue;
        op->u.rewards.offset = offset;
        for (int i = 0; i < op->u.rewards.n; i++, k += 5) reward_args(&op->u.rewards.ev[i], nums[offset + i], &argv[k]);
        offset += op->u.rewards.n;
    }
    pipe_argv(c, (int)k, argv, NULL);   /* copies the arguments; a broken link leaves c->err */
    free(argv);
    free(nums);
    return 1;
}

/* What the script's reply r says of one update of its call: answered (applied, refused), or
 * again (a decision it names is not in Redis yet), or nothing (NOSCRIPT: the batch is sent
 * again). */
static void finish_rewards(struct rs *s, struct aop *op, const redisReply *r, double t) {
    struct store_event_pos last = {0, 0};
    int have_last = 0;
    size_t from = (size_t)op->u.rewards.offset, n = (size_t)op->u.rewards.n;
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) return;
    if (r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "WAIT")) {
        op->u.rewards.again = 1;
        return;
    }
    if (r && r->type == REDIS_REPLY_ERROR)
        answer_rewards(s, op, strstr(r->str, "NOTFOUND") ? SCOUT_ENOTFOUND : SCOUT_ESTORE, last, 0);
    else if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= from + n &&
             take_results(r, from, op->u.rewards.ev, op->u.rewards.n, t, &last, &have_last) == 0)
        answer_rewards(s, op, SCOUT_OK, last, have_last);
    else
        answer_rewards(s, op, SCOUT_ESTORE, last, 0);
}

/* Writes a batch in one pipeline: decision records, counters, token touches, and updates (their
 * answers follow the replies). 0 when it must be retried: the connection broke, or Redis had
 * forgotten the scripts (they are loaded again first). An update is never sent twice: when the
 * link fails, the updates of the batch are answered SCOUT_ESTORE. */
/* Marks the decisions of a failed batch that were sent (grouped): they may be in Redis, so the
 * next try writes them with DEC_REPLAY_LUA, which skips those that are. */
static void mark_tried(struct aop *batch) {
    for (struct aop *op = batch; op; op = op->next)
        if (op->kind == AOP_DECISION && op->grouped) op->tried = 1;
}

/* Logs an error in a reply of the batch: an error, or one inside an EXEC's array. */
static void log_write_error(const redisReply *r) {
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == REDIS_REPLY_ERROR) {
                r = r->element[i];
                break;
            }
    if (r->type == REDIS_REPLY_ERROR && !strstr(r->str, "NOTFOUND"))
        log_msg(LOG_ERROR, "store: a queued write failed: %s", r->str);
}

static int write_batch(struct rs *s, struct redis_link *l, struct aop *batch) {
    redisContext *c = redis_link_get(l);
    int replies = 0, noscript = 0, ok = 1;
    double started = util_monotonic(), t = util_now();
    char now[40];
    redisReply **got;
    if (!c) {
        fail_rewards(s, batch, SCOUT_ESTORE);
        return 0;
    }
    fmt_double(now, sizeof now, t);
    for (struct aop *op = batch; op; op = op->next) op->grouped = 0;
    for (struct aop *op = batch; op && !c->err; op = op->next) {
        int n = op->kind != AOP_REWARDS ? append_aop(s, c, op)
                : op->grouped || op->u.rewards.answered ? 0 : append_rewards_call(s, c, op, replies, now);
        if (op->kind == AOP_DECISION && !op->grouped) ok = 0;   /* out of memory: retry the batch */
        if (n > 0) replies += n;
    }
    if (c->err) {   /* the link broke while the pipeline was sent */
        redis_link_fail(l, c->errstr);
        mark_tried(batch);
        fail_rewards(s, batch, SCOUT_ESTORE);
        return 0;
    }
    got = calloc(replies ? (size_t)replies : 1, sizeof *got);   /* NULL: the updates fail */
    for (int i = 0; i < replies; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            redis_link_fail(l, c->errstr);
            /* the updates whose replies came are answered by them; the others' fate is unknown */
            for (struct aop *op = batch; got && op; op = op->next)
                if (op->kind == AOP_REWARDS && !op->u.rewards.answered && op->grouped && op->u.rewards.reply < i)
                    finish_rewards(s, op, got[op->u.rewards.reply], t);
            mark_tried(batch);
            fail_rewards(s, batch, SCOUT_ESTORE);
            for (int j = 0; got && j < i; j++) freeReplyObject(got[j]);
            free(got);
            return 0;
        }
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) noscript = 1;
        else if (r) log_write_error(r);
        if (got) got[i] = r;
        else freeReplyObject(r);
    }
    for (struct aop *op = batch; op; op = op->next)
        if (op->kind == AOP_REWARDS && !op->u.rewards.answered)
            finish_rewards(s, op, got ? got[op->u.rewards.reply] : NULL, t);
    for (int i = 0; got && i < replies; i++) freeReplyObject(got[i]);
    free(got);
    if (noscript || !ok) mark_tried(batch);   /* the batch is sent again */
    if (noscript) {   /* a restarted Redis: every script call of the batch failed alike; load and retry */
        char err[160];
        if (load_scripts(s, c, err, sizeof err) != SCOUT_OK) log_msg(LOG_ERROR, "store: %s", err);
        return 0;
    }
    histogram_observe(&s->latency, util_monotonic() - started);
    return ok;
}

/* Takes the updates out of a written batch: those answered are freed, those told to wait for a
 * decision go to the writer's list of joins (tried again JOIN_STEP later). Returns the rest. */
static struct aop *sort_out_rewards(struct rs *s, struct aop *batch) {
    struct aop **p = &batch;
    while (*p) {
        struct aop *op = *p;
        if (op->kind != AOP_REWARDS || !(op->u.rewards.answered || op->u.rewards.again)) {
            p = &op->next;
            continue;
        }
        *p = op->next;
        if (op->u.rewards.answered) {
            free(op);
        } else {
            op->u.rewards.again = 0;
            op->u.rewards.not_before = util_monotonic() + JOIN_STEP;
            op->next = s->joins;
            s->joins = op;
        }
    }
    return batch;
}

/* Puts the joins whose next try is due (all of them, joining what is there, when stopping) in
 * front of the batch. */
static struct aop *take_due_joins(struct rs *s, struct aop *batch) {
    double now = util_monotonic();
    int all = atomic_load(&s->stopping);
    struct aop **p = &s->joins;
    while (*p) {
        struct aop *op = *p;
        if (all || op->u.rewards.not_before <= now) {
            *p = op->next;
            if (all) op->u.rewards.join_deadline = 0;
            op->next = batch;
            batch = op;
        } else {
            p = &op->next;
        }
    }
    return batch;
}

/* A copy of the followed tests (the caller frees it); NULL with *n 0 when there are none. */
static struct followed *copy_followed(struct rs *s, size_t *n) {
    struct followed *list;
    pthread_mutex_lock(&s->follow_lock);
    *n = s->nfollow;
    list = *n ? malloc(*n * sizeof *list) : NULL;
    if (list) memcpy(list, s->follow, *n * sizeof *list);
    else *n = 0;
    pthread_mutex_unlock(&s->follow_lock);
    return list;
}

/* Settles the decisions whose reward window ended, on one replica at a time. */
static void settle_step(struct rs *s, struct redis_link *l) {
    redisContext *c = redis_link_get(l);
    redisReply *lock, **due;
    char now[40];
    struct followed *list;
    size_t n;
    if (!c) return;
    /* The lock holds this replica's token and is released by compare-and-delete: a replica never
     * frees another's lock, and a crashed holder's lock expires after LOCK_TTL_MS. */
    lock = redisCommand(c, "SET scout:settle:lock %s NX PX %d", s->replica, LOCK_TTL_MS);
    if (!lock) {
        redis_link_fail(l, c->errstr);
        return;
    }
    int mine = lock->type == REDIS_REPLY_STATUS;
    freeReplyObject(lock);
    if (!mine) return;
    fmt_double(now, sizeof now, util_now());
    list = copy_followed(s, &n);
    /* Which tests have windows to settle: one pipeline for all (the writer's queue, updates
     * too, waits meanwhile), then a script call for each that has. */
    due = list ? calloc(n, sizeof *due) : NULL;
    for (size_t i = 0; due && i < n; i++)
        redisAppendCommand(c, "ZRANGEBYSCORE scout:{%s}:settle -inf %s LIMIT 0 %d", list[i].id, now, SETTLE_SLICE);
    for (size_t i = 0; due && i < n; i++)
        if (redisGetReply(c, (void **)&due[i]) != REDIS_OK) {
            due[i] = NULL;
            redis_link_fail(l, c->errstr);
            break;
        }
    for (size_t i = 0; due && i < n && l->c; i++) {
        const redisReply *ids = due[i];
        if (ids && ids->type == REDIS_REPLY_ARRAY && ids->elements > 0) {
            /* EVALSHA sha 3 events settle records now ids... */
            size_t argc = 7 + ids->elements, k = 0;
            const char **argv = calloc(argc, sizeof *argv);
            char ev[128], zs[128], recs[128];
            snprintf(ev, sizeof ev, "scout:{%s}:events", list[i].id);
            snprintf(zs, sizeof zs, "scout:{%s}:settle", list[i].id);
            snprintf(recs, sizeof recs, "scout:{%s}:d", list[i].id);
            if (argv) {
                redisReply *r;
                argv[k++] = "EVALSHA";
                argv[k++] = s->sha[SCRIPT_SETTLE];
                argv[k++] = "3";
                argv[k++] = ev;
                argv[k++] = zs;
                argv[k++] = recs;
                argv[k++] = now;
                for (size_t j = 0; j < ids->elements; j++) argv[k++] = ids->element[j]->str;
                r = evalsha(s, c, (int)k, argv, NULL);
                if (!r) redis_link_fail(l, c->errstr);
                else if (r->type == REDIS_REPLY_INTEGER) atomic_fetch_add(&s->settled, (uint64_t)r->integer);
                else if (r->type == REDIS_REPLY_ERROR) log_msg(LOG_ERROR, "store: settling failed: %s", r->str);
                if (r) freeReplyObject(r);
                free(argv);
            }
        }
    }
    for (size_t i = 0; due && i < n; i++)
        if (due[i]) freeReplyObject(due[i]);
    free(due);
    free(list);
    redisReply *unlock = l->c ? redisCommand(l->c, "EVAL %s 1 scout:settle:lock %s", UNLOCK_LUA, s->replica) : NULL;
    if (unlock) freeReplyObject(unlock);
}

/* Drops the decisions that expired (those still to be settled TRIM_GRACE later): records and
 * index entries, a slice per test per pass. */
static void trim_step(struct rs *s, struct redis_link *l) {
    redisContext *c = redis_link_get(l);
    char now[REDIS_RECORD_TIME_MAX], before[REDIS_RECORD_TIME_MAX], slice[16];
    struct followed *list;
    size_t n;
    int noscript = 0;
    if (!c) return;
    redis_record_time(now, util_now());
    redis_record_time(before, util_now() - TRIM_GRACE);
    snprintf(slice, sizeof slice, "%d", TRIM_SLICE);
    list = copy_followed(s, &n);
    for (size_t i = 0; list && i < n; i++) {   /* one pipeline for all tests */
        char keys[3][128];
        snprintf(keys[0], sizeof keys[0], "scout:{%s}:dlog", list[i].id);
        snprintf(keys[1], sizeof keys[1], "scout:{%s}:d", list[i].id);
        snprintf(keys[2], sizeof keys[2], "scout:{%s}:settle", list[i].id);
        const char *argv[] = {"EVALSHA", s->sha[SCRIPT_TRIM], "3", keys[0], keys[1], keys[2], now, before, slice};
        redisAppendCommandArgv(c, 9, argv, NULL);
    }
    for (size_t i = 0; list && i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            redis_link_fail(l, c->errstr);
            break;
        }
        if (r && r->type == REDIS_REPLY_INTEGER) atomic_fetch_add(&s->purged, (uint64_t)r->integer);
        else if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) noscript = 1;
        else if (r && r->type == REDIS_REPLY_ERROR) log_msg(LOG_ERROR, "store: trimming expired decisions failed: %s", r->str);
        if (r) freeReplyObject(r);
    }
    if (noscript && l->c) {   /* a restarted Redis: the scripts again, for the next pass */
        char err[160];
        if (load_scripts(s, c, err, sizeof err) != SCOUT_OK) log_msg(LOG_ERROR, "store: %s", err);
    }
    free(list);
}

#define COUNTS_SLICE 500   /* tests whose shared decision counts one pass reads */

/* Reads the decision counts every replica stored together, for a slice of the followed tests
 * (the next slice on the next pass), and hands them to the change handler: a replica shows the
 * decisions of all, not only its own. */
static void counts_step(struct rs *s, struct redis_link *l) {
    redisContext *c = redis_link_get(l);
    struct followed *list;
    size_t n, from, k;
    if (!c || !s->on_change) return;
    list = copy_followed(s, &n);
    if (!list) return;
    from = s->counts_next < n ? s->counts_next : 0;
    k = n - from < COUNTS_SLICE ? n - from : COUNTS_SLICE;
    s->counts_next = from + k;
    for (size_t i = from; i < from + k; i++) {
        redisAppendCommand(c, "HMGET scout:{%s}:meta predictions last_prediction", list[i].id);
        redisAppendCommand(c, "HGETALL scout:{%s}:armpred", list[i].id);
    }
    for (size_t i = from; i < from + k; i++) {
        redisReply *meta = NULL, *arms = NULL;
        if (redisGetReply(c, (void **)&meta) != REDIS_OK || redisGetReply(c, (void **)&arms) != REDIS_OK) {
            if (meta) freeReplyObject(meta);
            redis_link_fail(l, c->errstr);
            break;
        }
        struct store_change_event ev = {.kind = STORE_PREDICTIONS, .test_id = list[i].id, .variant_id = -1};
        if (meta->type == REDIS_REPLY_ARRAY && meta->elements == 2 && meta->element[0]->type == REDIS_REPLY_STRING) {
            ev.count = strtoull(meta->element[0]->str, NULL, 10);
            ev.last = meta->element[1]->type == REDIS_REPLY_STRING ? strtod(meta->element[1]->str, NULL) : 0;
            s->on_change(s->change_arg, &ev);
        }
        for (size_t j = 0; arms->type == REDIS_REPLY_ARRAY && j + 1 < arms->elements; j += 2) {
            ev.variant_id = strtol(arms->element[j]->str, NULL, 10);
            ev.count = strtoull(arms->element[j + 1]->str, NULL, 10);
            s->on_change(s->change_arg, &ev);
        }
        freeReplyObject(meta);
        freeReplyObject(arms);
    }
    free(list);
}

/* Tells the flush's caller how it ended (or frees the wait if the caller gave up). */
static void finish_flush(struct rs *s, struct aop *op, int state) {
    struct flush_wait *w = op->u.wait;
    pthread_mutex_lock(&s->qlock);
    if (w->abandoned) {
        free(w);
    } else {
        w->state = state;
        pthread_cond_broadcast(&s->qdone);
    }
    pthread_mutex_unlock(&s->qlock);
    free(op);
}

static void *writer_main(void *arg) {
    struct rs *s = arg;
    struct redis_link l;
    redis_link_init(&l, &s->cfg);
    for (;;) {
        struct aop *batch, *tail;
        int n = 0;
        struct timespec until;
        pthread_mutex_lock(&s->qlock);
        if (!s->qhead && !atomic_load(&s->stopping)) {   /* idle: 100 ms, or until the next join is due */
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += s->joins ? (long)(JOIN_STEP * 1e9) : 100 * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&s->qcond, &s->qlock, &until);
        }
        batch = s->qhead;
        for (tail = batch; tail && tail->next && n < BATCH_MAX - 1; tail = tail->next) n++;
        if (tail) {
            s->qhead = tail->next;
            if (!s->qhead) s->qtail = NULL;
            tail->next = NULL;
            s->qlen -= n + 1;
            pthread_cond_broadcast(&s->qspace);
        }
        pthread_mutex_unlock(&s->qlock);
        if (s->joins) batch = take_due_joins(s, batch);
        if (!batch) {
            if (atomic_load(&s->stopping) && !s->joins) break;
        } else if (!write_batch(s, &l, batch)) {
            /* Redis is away: keep the batch at the head of the queue and retry after backoff (its
             * updates were answered: only what was surely not written is sent again). */
            batch = sort_out_rewards(s, batch);
            if (atomic_load(&s->stopping) && !redis_link_get(&l)) {
                for (struct aop *op = batch, *next; op; op = next) {
                    next = op->next;
                    if (op->kind == AOP_DECISION) atomic_fetch_sub(&s->pending_decisions, 1);
                    if (op->kind != AOP_FLUSH) atomic_fetch_add(&s->writes_dropped, 1);
                    count_op(s, AOP_ROP[op->kind], 0, 0);
                    if (op->kind == AOP_FLUSH) finish_flush(s, op, -1);
                    else aop_free(op);
                }
                continue;
            }
            atomic_store(&s->writer_up, redis_link_get(&l) != NULL);
            if (batch) {
                long k = 1;
                for (tail = batch; tail->next; tail = tail->next) k++;
                pthread_mutex_lock(&s->qlock);
                tail->next = s->qhead;
                s->qhead = batch;
                if (!s->qtail) s->qtail = tail;
                s->qlen += k;
                pthread_cond_broadcast(&s->qspace);   /* writers waiting for room see Redis is away */
                pthread_mutex_unlock(&s->qlock);
            }
            util_sleep(0.05);
            continue;
        } else {
            batch = sort_out_rewards(s, batch);
            for (struct aop *op = batch, *next; op; op = next) {
                next = op->next;
                count_op(s, AOP_ROP[op->kind], 1, 0);
                if (op->kind == AOP_DECISION) atomic_fetch_sub(&s->pending_decisions, 1);
                if (op->kind == AOP_FLUSH) {
                    finish_flush(s, op, 1);
                    continue;
                }
                aop_free(op);
            }
        }
        atomic_store(&s->writer_up, redis_link_get(&l) != NULL);
        if (util_monotonic() - s->last_settle >= SETTLE_INTERVAL) {
            s->last_settle = util_monotonic();
            settle_step(s, &l);
        }
        if (util_monotonic() - s->last_trim >= TRIM_INTERVAL) {
            s->last_trim = util_monotonic();
            trim_step(s, &l);
            counts_step(s, &l);
            redis_pool_reconnect(&s->pool);   /* idle request links come back after an outage too */
        }
    }
    redis_link_close(&l);
    return NULL;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void rs_set_change_handler(struct store *base, store_change_fn fn, void *arg) {
    RS(base)->on_change = fn;
    RS(base)->change_arg = arg;
}

static void rs_set_event_handler(struct store *base, store_event_fn fn, void *arg) {
    RS(base)->on_event = fn;
    RS(base)->event_arg = arg;
}

static void rs_set_snapshots(struct store *base, const struct store_snapshots *snap) {
    RS(base)->snap = *snap;
}

static int rs_start(struct store *base) {
    struct rs *s = RS(base);
    s->last_settle = s->last_trim = util_monotonic();
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) return SCOUT_ERR;
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
        atomic_store(&s->stopping, 1);
        pthread_join(s->writer, NULL);
        return SCOUT_ERR;
    }
    s->started = 1;
    return SCOUT_OK;
}

/* Waits (at most FLUSH_WAIT) until everything queued before the call is written. SCOUT_ESTORE
 * when Redis is away for that long. Counted by the writer. */
static int rs_flush(struct store *base) {
    struct rs *s = RS(base);
    struct aop *op;
    struct flush_wait *w;
    struct timespec until;
    int state;
    if (!s->started || atomic_load(&s->stopping)) return SCOUT_ECLOSED;
    op = calloc(1, sizeof *op);
    w = calloc(1, sizeof *w);
    if (!op || !w) {
        free(op);
        free(w);
        return SCOUT_ENOMEM;
    }
    op->kind = AOP_FLUSH;
    op->u.wait = w;
    enqueue(s, op);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)FLUSH_WAIT;
    pthread_mutex_lock(&s->qlock);
    while (w->state == 0)
        if (pthread_cond_timedwait(&s->qdone, &s->qlock, &until) == ETIMEDOUT) break;
    state = w->state;
    if (state == 0) w->abandoned = 1;   /* the writer frees it when it gets there */
    else free(w);
    pthread_mutex_unlock(&s->qlock);
    return state > 0 ? SCOUT_OK : SCOUT_ESTORE;
}

static void rs_close(struct store *base) {
    struct rs *s = RS(base);
    if (!s) return;
    if (s->started) {   /* the writer writes what is queued (or gives it up if Redis is away), then ends */
        atomic_store(&s->stopping, 1);
        pthread_mutex_lock(&s->qlock);
        pthread_cond_broadcast(&s->qcond);
        pthread_cond_broadcast(&s->qspace);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->writer, NULL);
        pthread_join(s->reader, NULL);
        finish_readbacks(s, 1);
    }
    while (s->qhead) {   /* only when start never ran: the writer drains the queue itself */
        struct aop *op = s->qhead;
        s->qhead = op->next;
        aop_free(op);
    }
    redis_pool_destroy(&s->pool);
    free(s->follow);
    pthread_mutex_destroy(&s->follow_lock);
    pthread_cond_destroy(&s->applied);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_cond_destroy(&s->qspace);
    pthread_cond_destroy(&s->qdone);
    if (s->password) sodium_memzero(s->password, strlen(s->password));
    free(s->host);
    free(s->user);
    free(s->password);
    free(s);
}

static int rs_ping(struct store *base) {
    struct rs *s = RS(base);
    redisReply *r;
    int ok;
    struct redis_link *l = redis_pool_take(&s->pool);
    r = redis_link_command(l, "PING");
    ok = reply_ok(r);
    redis_pool_give(&s->pool, l);
    if (r) freeReplyObject(r);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

/* ---- settings, tests ------------------------------------------------------------------- */


/* Announces a change to the other replicas, on the caller's link. 0 when Redis did not take it. */
static int announce(struct redis_link *l, const char *op, const char *field, const char *value) {
    redisReply *r = field ? redis_link_command(l, "XADD scout:catalog MAXLEN ~ %d * op %s %s %s", CATALOG_MAXLEN, op, field, value)
                          : redis_link_command(l, "XADD scout:catalog MAXLEN ~ %d * op %s", CATALOG_MAXLEN, op);
    int ok = reply_ok(r);
    if (r) freeReplyObject(r);
    return ok;
}

static int rs_put_setting(struct store *base, const char *key, const char *json) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *r = redis_link_command(l, "HSET scout:settings %s %s", key, json);
    int ok = reply_ok(r) && announce(l, "setting", "key", key);
    redis_pool_give(&s->pool, l);
    if (r) freeReplyObject(r);
    count_op(s, ROP_SETTING, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_get_setting(struct store *base, const char *key, char **out) {
    struct rs *s = RS(base);
    int rc = SCOUT_ESTORE;
    *out = NULL;
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *r = redis_link_command(l, "HGET scout:settings %s", key);
    if (r && r->type == REDIS_REPLY_STRING) rc = (*out = strdup(r->str)) ? SCOUT_OK : SCOUT_ENOMEM;
    else if (r && r->type == REDIS_REPLY_NIL) rc = SCOUT_OK;
    redis_pool_give(&s->pool, l);
    if (r) freeReplyObject(r);
    return rc;
}

static int rs_put_test(struct store *base, const char *id, const char *definition, double created) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    char num[40];
    int ok = 1;
    fmt_double(num, sizeof num, created);
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *a = redis_link_command(l, "HSET scout:{%s}:meta created %s rollout -1 predictions 0 last_prediction 0", id, num);
    redisReply *b = a ? redis_link_command(l, "HSET scout:tests %s %s", id, definition) : NULL;
    ok = reply_ok(a) && reply_ok(b) && announce(l, "put", "id", id);
    redis_pool_give(&s->pool, l);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (ok) follow(s, id, "0-0");
    count_op(s, ROP_PUT_TEST, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_delete_test(struct store *base, const char *id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *r = redis_link_command(l, "HDEL scout:tests %s", id);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        rc = r->integer ? SCOUT_OK : SCOUT_ENOTFOUND;
        /* UNLINK: the records of a large test are freed in the background, not while Redis
         * holds every client up. */
        redisReply *d = redis_link_command(l, "UNLINK scout:{%s}:meta scout:{%s}:events scout:{%s}:armpred scout:{%s}:dlog "
                                    "scout:{%s}:settle scout:{%s}:sticky scout:{%s}:snap scout:{%s}:snaplock "
                                    "scout:{%s}:d",
                                 id, id, id, id, id, id, id, id, id);
        if (!reply_ok(d) || (rc == SCOUT_OK && !announce(l, "delete", "id", id))) rc = SCOUT_ESTORE;
        if (d) freeReplyObject(d);
    }
    redis_pool_give(&s->pool, l);
    if (r) freeReplyObject(r);
    if (rc == SCOUT_OK) unfollow(s, id);
    count_op(s, ROP_DELETE_TEST, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

static int rs_set_rollout(struct store *base, const char *id, long variant_id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *e = redis_link_command(l, "HEXISTS scout:tests %s", id);
    if (e && e->type == REDIS_REPLY_INTEGER && e->integer == 0) {
        rc = SCOUT_ENOTFOUND;
    } else if (reply_ok(e)) {
        redisReply *r = redis_link_command(l, "HSET scout:{%s}:meta rollout %ld", id, variant_id);
        rc = reply_ok(r) && announce(l, "rollout", "id", id) ? SCOUT_OK : SCOUT_ESTORE;
        if (r) freeReplyObject(r);
    }
    redis_pool_give(&s->pool, l);
    if (e) freeReplyObject(e);
    count_op(s, ROP_ROLLOUT, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

/* ---- rewards, decisions ---------------------------------------------------------------- */

/* What became of the n events of an update, from the APPEND script's answer (r, an array) from
 * element `from` on; *last is the stream position of the last event applied, when *have_last.
 * -1 when the answer is malformed. */
static int take_results(const redisReply *r, size_t from, struct store_reward *ev, int n, double t,
                        struct store_event_pos *last, int *have_last) {
    for (int i = 0; i < n; i++) {
        const redisReply *e = r->element[from + (size_t)i];
        struct store_event_pos pos;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 5) return -1;
        ev[i].found = e->element[0]->integer == 1;
        ev[i].variant_id = (long)e->element[1]->integer;
        ev[i].outcome = (int)e->element[2]->integer;
        ev[i].ts = t;
        if (!ev[i].context && e->element[3]->len > 0) ev[i].context = strdup(e->element[3]->str);
        ev[i].applied = e->element[4]->len > 0;
        if (ev[i].applied && parse_pos(e->element[4]->str, &pos) && (!*have_last || pos_le(*last, pos))) {
            *last = pos;
            *have_last = 1;
        }
    }
    return 0;
}

/* The APPEND script's arguments for one event (5, as it documents); nums holds the numbers'
 * text. */
static void reward_args(const struct store_reward *ev, char nums[2][40], const char **argv) {
    snprintf(nums[0], 40, "%ld", ev->variant_id);
    fmt_double(nums[1], 40, ev->reward);
    argv[0] = ev->request_id ? ev->request_id : "";
    argv[1] = nums[0];
    argv[2] = nums[1];
    argv[3] = ev->context ? ev->context : "";
    argv[4] = ev->skip_stored_context ? "1" : "0";
}

/* The script's part of an update: every event joined and written (acknowledged by Redis). *last
 * is the stream position of the last event applied, when *have_last. */
static int append_rewards(struct rs *s, const char *test_id, struct store_reward *ev, int n,
                          struct store_event_pos *last_out, int *have_last_out) {
    struct store *base = &s->base;
    double t0 = util_monotonic();
    char evkey[128], metakey[128], recs[128], now[40];
    const char **argv = calloc((size_t)(8 + 5 * n), sizeof *argv);
    char (*nums)[2][40] = calloc((size_t)n, sizeof *nums);
    struct store_event_pos last = {0, 0};
    int argc = 0, rc = SCOUT_ESTORE, have_last = 0, wait = 0, wait_arg;
    double t = util_now(), join_deadline = util_monotonic() + JOIN_WAIT;
    redisReply *r = NULL;
    struct redis_link *l;
    if (!argv || !nums) {
        rc = SCOUT_ENOMEM;
        goto out;
    }
    /* A reward joins its decision by request id: the decisions this replica answered before
     * must be in Redis first (they are queued, not written on the request path). */
    l = redis_pool_take(&s->pool);
    int up = redis_link_get(l) != NULL;   /* Redis away: answer at once, not after waits */
    redis_pool_give(&s->pool, l);
    if (!up) goto out;
    for (int i = 0; i < n; i++)
        if (ev[i].request_id) {   /* (queued or in the writer's hands: the flush waits for both) */
            if (rs_flush(base) != SCOUT_OK) goto out;
            wait = 1;
            break;
        }
    snprintf(evkey, sizeof evkey, "scout:{%s}:events", test_id);
    snprintf(metakey, sizeof metakey, "scout:{%s}:meta", test_id);
    snprintf(recs, sizeof recs, "scout:{%s}:d", test_id);
    fmt_double(now, sizeof now, t);
    argv[argc++] = "EVALSHA";
    argv[argc++] = s->sha[SCRIPT_APPEND];
    argv[argc++] = "3";
    argv[argc++] = evkey;
    argv[argc++] = metakey;
    argv[argc++] = recs;
    argv[argc++] = now;
    wait_arg = argc++;
    for (int i = 0; i < n; i++, argc += 5) reward_args(&ev[i], nums[i], &argv[argc]);
    /* A decision answered by another replica reaches Redis from its queue within milliseconds:
     * a reward naming it that arrives first waits for it (at most JOIN_WAIT), instead of being
     * learned without its context or refused for want of a variant. */
    for (;;) {
        argv[wait_arg] = wait ? "1" : "0";
        l = redis_pool_take(&s->pool);
        redisContext *c = redis_link_get(l);
        if (c && !(r = evalsha(s, c, argc, argv, NULL))) redis_link_fail(l, c->errstr);
        redis_pool_give(&s->pool, l);
        if (!r || r->type != REDIS_REPLY_STATUS || strcmp(r->str, "WAIT")) break;
        freeReplyObject(r);
        r = NULL;
        if (util_monotonic() >= join_deadline) wait = 0;   /* last try: join what is there */
        else util_sleep(JOIN_STEP);
    }
    if (!r) goto out;
    if (r->type == REDIS_REPLY_ERROR) {
        rc = strstr(r->str, "NOTFOUND") ? SCOUT_ENOTFOUND : SCOUT_ESTORE;
        if (rc == SCOUT_ESTORE) log_msg(LOG_ERROR, "store: appending rewards failed: %s", r->str);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n || take_results(r, 0, ev, n, t, &last, &have_last) < 0)
        goto out;
    rc = SCOUT_OK;
    *last_out = last;
    *have_last_out = have_last;
out:
    if (r) freeReplyObject(r);
    free(argv);
    free(nums);
    count_op(s, ROP_REWARDS, rc == SCOUT_OK || rc == SCOUT_ENOTFOUND, t0);
    return rc;
}

static int rs_append_rewards(struct store *base, const char *test_id, struct store_reward *ev, int n) {
    struct rs *s = RS(base);
    struct store_event_pos last;
    int have_last = 0, rc = append_rewards(s, test_id, ev, n, &last, &have_last);
    /* Read-your-writes: the answer goes out once this replica learned its own events. */
    if (rc == SCOUT_OK && have_last) wait_applied(s, test_id, last);
    return rc;
}

/* Answers an update whose events are written up to `last` once this replica's reader applied
 * them (finish_readbacks), without holding a thread; at once when they were applied already. */
static void answer_after_readback(struct rs *s, const char *test_id, struct store_event_pos last, store_done_fn then,
                                  void *arg) {
    struct readback *rb = calloc(1, sizeof *rb);
    if (!rb) {
        wait_applied(s, test_id, last);
        then(arg, SCOUT_OK);
        return;
    }
    snprintf(rb->test_id, sizeof rb->test_id, "%s", test_id);
    rb->pos = last;
    rb->deadline = util_monotonic() + READBACK_WAIT;
    rb->then = then;
    rb->arg = arg;
    pthread_mutex_lock(&s->follow_lock);
    struct followed *f = find_followed(s, test_id);
    if (!f || pos_le(last, f->pos) || atomic_load(&s->stopping) || !s->started) {
        pthread_mutex_unlock(&s->follow_lock);
        free(rb);
        then(arg, SCOUT_OK);   /* learned already (or nobody will learn it here) */
        return;
    }
    rb->next = s->readbacks;
    s->readbacks = rb;
    pthread_mutex_unlock(&s->follow_lock);
}

/* Neither the script nor the wait for the reader holds the caller's thread: the update is
 * queued for the writer, which runs it in its next pipeline — the updates of one test there
 * in one script call — and the answer follows the read-back. While Redis is away (or before
 * the writer runs) the script runs here, and fails at once. */
static void rs_append_rewards_async(struct store *base, const char *test_id, struct store_reward *ev, int n,
                                    store_done_fn then, void *arg) {
    struct rs *s = RS(base);
    struct store_event_pos last;
    struct aop *op;
    int have_last = 0, rc;
    if (s->started && atomic_load(&s->writer_up) && !atomic_load(&s->stopping) && (op = calloc(1, sizeof *op))) {
        op->kind = AOP_REWARDS;
        snprintf(op->u.rewards.test_id, sizeof op->u.rewards.test_id, "%s", test_id);
        op->u.rewards.ev = ev;
        op->u.rewards.n = n;
        op->u.rewards.then = then;
        op->u.rewards.arg = arg;
        for (int i = 0; i < n; i++)
            if (ev[i].request_id) op->u.rewards.joins = 1;
        op->u.rewards.join_deadline = util_monotonic() + JOIN_WAIT;
        enqueue(s, op);   /* answers SCOUT_ESTORE itself when it cannot queue */
        return;
    }
    rc = append_rewards(s, test_id, ev, n, &last, &have_last);
    if (rc == SCOUT_OK && have_last) answer_after_readback(s, test_id, last, then, arg);
    else then(arg, rc);
}

static void rs_put_decision(struct store *base, struct store_decision *d) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) {
        free(d->context);
        free(d);
        return;
    }
    op->kind = AOP_DECISION;
    op->u.decision = d;
    enqueue(RS(base), op);
}

/* HSETNX then, if another replica was first, its assignment: one round trip in a script. */
static const char CLAIM_LUA[] =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return {0, ARGV[2]} end\n"
    "return {1, redis.call('HGET', KEYS[1], ARGV[1])}\n";

static int rs_claim_assignment(struct store *base, struct store_assignment *a) {
    struct rs *s = RS(base);
    char value[80], p[40];
    long v;
    double prop;
    double t0 = util_monotonic();
    int rc = SCOUT_ESTORE;
    fmt_double(p, sizeof p, a->propensity);
    snprintf(value, sizeof value, "%ld %s", a->variant_id, p);
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *r = redis_link_command(l, "EVAL %s 1 scout:{%s}:sticky %s %s", CLAIM_LUA, a->test_id, a->user, value);
    redis_pool_give(&s->pool, l);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        sscanf(r->element[1]->str, "%ld %lf", &v, &prop) == 2) {
        a->existing = r->element[0]->integer == 1;
        a->variant_id = v;
        a->propensity = prop;
        rc = SCOUT_OK;
    }
    if (r) freeReplyObject(r);
    count_op(s, ROP_ASSIGN, rc == SCOUT_OK, t0);
    return rc;
}

static void rs_put_test_stats(struct store *base, const char *test_id, char *stats) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) {
        free(stats);
        return;
    }
    op->kind = AOP_STATS;
    snprintf(op->u.stats.test_id, sizeof op->u.stats.test_id, "%s", test_id);
    op->u.stats.json = stats;
    enqueue(RS(base), op);
}

/* ---- loading (before start, on the synchronous link) --------------------------------- */

struct test_entry {
    char *id, *definition;
    double created;
};

static int cmp_test_entry(const void *a, const void *b) {
    const struct test_entry *x = a, *y = b;
    if (x->created != y->created) return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int rs_load_tests(struct store *base, int (*cb)(void *ud, const struct store_test_row *row), void *ud) {
    struct rs *s = RS(base);
    struct redis_link *l = redis_pool_take(&s->pool);   /* loading: before start, alone */
    redisReply *all = redis_link_command(l, "HGETALL scout:tests");
    struct test_entry *list = NULL;
    size_t n = 0;
    int rc = SCOUT_ESTORE;
    if (!all || all->type != REDIS_REPLY_ARRAY) goto out;
    list = calloc(all->elements / 2 + 1, sizeof *list);
    if (!list) goto out;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        redisReply *meta = redis_link_command(l, "HGETALL scout:{%s}:meta", all->element[i]->str);
        if (!meta) goto out;
        list[n].id = all->element[i]->str;
        list[n].definition = all->element[i + 1]->str;
        list[n].created = num_field(meta, "created", 0);
        freeReplyObject(meta);
        n++;
    }
    if (n) qsort(list, n, sizeof *list, cmp_test_entry);   /* the embedded store's order: created, id */
    rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *meta = redis_link_command(l, "HGETALL scout:{%s}:meta", list[i].id);
        struct store_test_row row = {
            .id = list[i].id,
            .definition = list[i].definition,
            .created = list[i].created,
            .rollout_variant = (long)num_field(meta, "rollout", -1),
            .predictions = (uint64_t)num_field(meta, "predictions", 0),
            .last_prediction = num_field(meta, "last_prediction", 0),
            .stats = hash_field(meta, "stats"),
        };
        if (!meta) {
            rc = SCOUT_ESTORE;
            break;
        }
        follow(s, list[i].id, "0-0");
        if (cb(ud, &row)) rc = SCOUT_ERR;
        freeReplyObject(meta);
    }
out:
    redis_pool_give(&s->pool, l);
    free(list);
    if (all) freeReplyObject(all);
    return rc;
}

static int rs_load_arm_predictions(struct store *base,
                                   int (*cb)(void *ud, const char *test_id, long variant_id, uint64_t n), void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    struct redis_link *l = redis_pool_take(&s->pool);   /* loading: before start, alone */
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *h = redis_link_command(l, "HGETALL scout:{%s}:armpred", ids[i].id);
        if (!h || h->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
        for (size_t k = 0; rc == SCOUT_OK && k + 1 < h->elements; k += 2)
            if (cb(ud, ids[i].id, strtol(h->element[k]->str, NULL, 10), strtoull(h->element[k + 1]->str, NULL, 10)))
                rc = SCOUT_ERR;
        if (h) freeReplyObject(h);
    }
    redis_pool_give(&s->pool, l);
    free(ids);
    return rc;
}

/* Loads each test's snapshot and replays the events after it; the reader then continues after
 * the last one. */
static int rs_load_rewards(struct store *base,
                           int (*cb)(void *ud, const char *test_id, long variant_id, double reward,
                                     const char *context, double ts),
                           void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    struct redis_link *l = redis_pool_take(&s->pool);   /* loading: before start, alone */
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        char from[50] = "-", snap[48];
        int gone;
        /* The snapshot, then the events after it; without one (or with one this build cannot
         * read, while every event is still there), every event. */
        switch (restore_snapshot(s, l, ids[i].id, snap, sizeof snap, &gone)) {
        case SCOUT_OK:
            if (snap[0]) {
                snprintf(from, sizeof from, "(%s", snap);
                set_position(s, ids[i].id, snap);
            }
            break;
        case SCOUT_EINVAL:
            if (!gone) break;
            log_fields(LOG_ERROR, "a test's snapshot cannot be read and the events it covers were trimmed: "
                                  "refusing to start with part of its learned state (run the release that wrote it)",
                       json_pack("{s:s, s:s}", "event", "snapshot_unreadable", "model_id", ids[i].id));
            rc = SCOUT_ESTORE;
            continue;
        default:
            rc = SCOUT_ESTORE;
            continue;
        }
        for (;;) {
            redisReply *r = redis_link_command(l, "XRANGE scout:{%s}:events %s + COUNT %d", ids[i].id, from, READ_COUNT);
            size_t got;
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r) freeReplyObject(r);
                rc = SCOUT_ESTORE;
                break;
            }
            got = r->elements;
            for (size_t e = 0; e < got && rc == SCOUT_OK; e++) {
                redisReply *entry = r->element[e], *f = entry->element[1];
                const char *v = hash_field(f, "v"), *rw = hash_field(f, "r"), *c = hash_field(f, "c");
                if (v && rw && cb(ud, ids[i].id, strtol(v, NULL, 10), strtod(rw, NULL), c && *c ? c : NULL,
                                  num_field(f, "t", 0)))
                    rc = SCOUT_ERR;
                snprintf(from, sizeof from, "(%s", entry->element[0]->str);   /* exclusive: after this one */
                pthread_mutex_lock(&s->follow_lock);
                struct followed *fl = find_followed(s, ids[i].id);
                if (fl) {
                    snprintf(fl->last, sizeof fl->last, "%s", entry->element[0]->str);
                    parse_pos(fl->last, &fl->pos);
                }
                pthread_mutex_unlock(&s->follow_lock);
            }
            freeReplyObject(r);
            if (got < READ_COUNT || rc != SCOUT_OK) break;
        }
    }
    redis_pool_give(&s->pool, l);
    free(ids);
    return rc;
}

static int rs_load_assignments(struct store *base,
                               int (*cb)(void *ud, const char *test_id, const char *user, long variant_id,
                                         double propensity),
                               void *ud) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    struct redis_link *l = redis_pool_take(&s->pool);   /* loading: before start, alone */
    int rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *h = redis_link_command(l, "HGETALL scout:{%s}:sticky", ids[i].id);
        if (!h || h->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
        for (size_t k = 0; rc == SCOUT_OK && k + 1 < h->elements; k += 2) {
            long v;
            double p;
            if (sscanf(h->element[k + 1]->str, "%ld %lf", &v, &p) == 2 && cb(ud, ids[i].id, h->element[k]->str, v, p))
                rc = SCOUT_ERR;
        }
        if (h) freeReplyObject(h);
    }
    redis_pool_give(&s->pool, l);
    free(ids);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------------ */

/* The records Redis holds: the trim drops expired ones within a second (TRIM_INTERVAL), so the
 * count is of the live ones as of then, not of `now`. */
static int rs_count_decisions(struct store *base, double now, long *out) {
    struct rs *s = RS(base);
    size_t n;
    struct followed *ids = copy_followed(s, &n);
    int rc = SCOUT_OK;
    (void)now;
    *out = 0;
    struct redis_link *l = redis_pool_take(&s->pool);
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) {
        redisReply *r = redis_link_command(l, "HLEN scout:{%s}:d", ids[i].id);
        if (r && r->type == REDIS_REPLY_INTEGER) *out += (long)r->integer;
        else rc = SCOUT_ESTORE;
        if (r) freeReplyObject(r);
    }
    redis_pool_give(&s->pool, l);
    free(ids);
    return rc;
}

/* The decisions a dlog entry ([id, [field, value, ...]]) lists: [n, count, request id, creation
 * time, ...], or the first shape, [r, request id]. Fills rid[] and t[] (the creation time of the
 * record the entry was written with; NULL in the first shape), last first when reverse, and
 * returns how many. A record whose time differs was written again since (a client sent its
 * request id twice), and a later entry lists it. */
static size_t dlog_entry(const redisReply *e, int reverse, const char **rid, const char **t) {
    const redisReply *f;
    size_t n = 0;
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) return 0;
    f = e->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type != REDIS_REPLY_STRING || f->element[i + 1]->type != REDIS_REPLY_STRING) return 0;
    if (f->elements == 2 && !strcmp(f->element[0]->str, "r")) {
        rid[0] = f->element[1]->str;
        t[0] = NULL;
        return 1;
    }
    if (f->elements < 2 || strcmp(f->element[0]->str, "n")) return 0;
    for (size_t i = 2; i + 1 < f->elements; i += 2, n++) {
        size_t j = reverse ? (f->elements - 2 - i) / 2 : n;
        rid[j] = f->element[i]->str;
        t[j] = f->element[i + 1]->str;
    }
    return n;
}

/* Walks a test's decisions created in [since, +inf) in the order they were written (newest first
 * when `reverse`), in slices of about 1000, at most limit; visit returns non-zero to stop (then
 * SCOUT_ERR). dlog's ids carry Redis's clock and the records the replica's: the walk reaches
 * CLOCK_SLACK seconds before `since` and filters on the record's own time. A decision past its
 * expiry that the trim has not dropped yet is skipped, and so is an entry's request id whose
 * record was written again since (a later entry lists it). */
static int walk_decisions(struct rs *s, const char *test_id, double since, long limit, int reverse,
                          int (*visit)(void *ud, const char *rid, const struct redis_record *d), void *ud) {
    char lo[32], cursor[64], recs[128], dlog[128];
    long seen = 0, per = 1;   /* per: decisions per entry so far, rounded up */
    int rc = SCOUT_OK;
    double now = util_now();
    snprintf(lo, sizeof lo, "%lld", since > CLOCK_SLACK ? (long long)((since - CLOCK_SLACK) * 1000.0) : 0LL);
    snprintf(cursor, sizeof cursor, "%s", reverse ? "+" : lo);
    snprintf(recs, sizeof recs, "scout:{%s}:d", test_id);
    snprintf(dlog, sizeof dlog, "scout:{%s}:dlog", test_id);
    while (seen < limit && rc == SCOUT_OK) {
        long want = limit - seen < 1000 ? limit - seen : 1000, count = want / per > 0 ? want / per : 1;
        redisReply *ids, *vals = NULL;
        const char **argv = NULL, **ts = NULL;
        size_t got = 0, listed = 0;
        struct redis_link *l = redis_pool_take(&s->pool);
        ids = reverse ? redis_link_command(l, "XREVRANGE %s %s %s COUNT %ld", dlog, cursor, lo, count)
                      : redis_link_command(l, "XRANGE %s %s + COUNT %ld", dlog, cursor, count);
        got = ids && ids->type == REDIS_REPLY_ARRAY ? ids->elements : 0;
        for (size_t i = 0; i < got; i++) {
            const redisReply *e = ids->element[i];
            if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[1]->type == REDIS_REPLY_ARRAY)
                listed += e->element[1]->elements / 2;
        }
        if (listed) {   /* HMGET records id... */
            argv = calloc(listed + 2, sizeof *argv);
            ts = calloc(listed, sizeof *ts);
            if (argv && ts) {
                size_t n = 0;
                argv[0] = "HMGET";
                argv[1] = recs;
                for (size_t i = 0; i < got; i++) n += dlog_entry(ids->element[i], reverse, argv + 2 + n, ts + n);
                listed = n;
                redisContext *c = redis_link_get(l);
                if (listed && c && !(vals = redisCommandArgv(c, (int)listed + 2, argv, NULL)))
                    redis_link_fail(l, c->errstr);
            }
        }
        redis_pool_give(&s->pool, l);
        if (!ids || ids->type != REDIS_REPLY_ARRAY || (listed && (!argv || !ts)) ||
            (listed && (!vals || vals->type != REDIS_REPLY_ARRAY || vals->elements != listed)))
            rc = SCOUT_ESTORE;
        /* The visits run without the link: a slow callback never holds other requests up. */
        for (size_t i = 0; rc == SCOUT_OK && i < listed && seen < limit; i++) {
            const redisReply *v = vals->element[i];
            struct redis_record d;
            if (v->type != REDIS_REPLY_STRING || redis_record_parse(v->str, v->len, &d) < 0 || d.created < since ||
                (ts[i] && !redis_record_created_at(v->str, v->len, ts[i])))   /* written again: a later entry */
                continue;
            seen++;
            if (d.expires > now && visit(ud, argv[2 + i], &d)) rc = SCOUT_ERR;
        }
        if (vals) freeReplyObject(vals);
        free(argv);
        free(ts);
        if (got) per = ((long)listed + (long)got - 1) / (long)got > 0 ? ((long)listed + (long)got - 1) / (long)got : 1;
        /* Next slice: strictly past the last entry read. */
        if (got && ids->element[got - 1]->type == REDIS_REPLY_ARRAY)
            snprintf(cursor, sizeof cursor, "(%s", ids->element[got - 1]->element[0]->str);
        if (ids) freeReplyObject(ids);
        if ((long)got < count) break;
    }
    return rc;
}

struct scan_ctx {
    void (*cb)(void *ud, double created, long variant_id, int explored, const char *context);
    void *ud;
};

static int visit_scan(void *ud, const char *rid, const struct redis_record *d) {
    struct scan_ctx *x = ud;
    (void)rid;
    x->cb(x->ud, d->created, d->variant, d->explored, d->context);
    return 0;
}

static int rs_scan_decisions(struct store *base, const char *test_id, double since, int limit,
                             void (*cb)(void *ud, double created, long variant_id, int explored, const char *context),
                             void *ud) {
    struct scan_ctx x = {cb, ud};
    return walk_decisions(RS(base), test_id, since, limit, 1, visit_scan, &x);
}

struct outcome_ctx {
    int (*cb)(void *ud, const struct store_outcome *o);
    void *ud;
};

static int visit_outcome(void *ud, const char *rid, const struct redis_record *d) {
    struct outcome_ctx *x = ud;
    struct store_outcome o = {rid, d->created, d->variant, d->propensity, d->context, d->rewards, d->sum,
                              d->settled, d->has_default, d->default_reward};
    return x->cb(x->ud, &o);
}

static int rs_scan_outcomes(struct store *base, const char *test_id, double since, long limit,
                            int (*cb)(void *ud, const struct store_outcome *o), void *ud) {
    struct outcome_ctx x = {cb, ud};
    return walk_decisions(RS(base), test_id, since, limit, 0, visit_outcome, &x);
}

struct count_ctx {
    double since, granularity;
    void (*cb)(void *ud, long bucket, long variant_id, long count, long explored);
    void *ud;
    struct {
        long bucket, variant, count, explored;
    } *rows;
    size_t n, cap;
};

static int visit_count(void *ud, const char *rid, const struct redis_record *d) {
    struct count_ctx *x = ud;
    long b = (long)((d->created - x->since) / x->granularity);
    (void)rid;
    for (size_t i = 0; i < x->n; i++)
        if (x->rows[i].bucket == b && x->rows[i].variant == d->variant) {
            x->rows[i].count++;
            x->rows[i].explored += d->explored;
            return 0;
        }
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        void *grown = realloc(x->rows, cap * sizeof *x->rows);
        if (!grown) return 1;
        x->rows = grown;
        x->cap = cap;
    }
    x->rows[x->n].bucket = b;
    x->rows[x->n].variant = d->variant;
    x->rows[x->n].count = 1;
    x->rows[x->n].explored = d->explored;
    x->n++;
    return 0;
}

#define COUNT_SCAN_MAX 1000000   /* decisions a bucketed count reads at most */

static int rs_decision_counts(struct store *base, const char *test_id, double since, double granularity,
                              void (*cb)(void *ud, long bucket, long variant_id, long count, long explored),
                              void *ud) {
    struct count_ctx x = {since, granularity > 0 ? granularity : 1, cb, ud, NULL, 0, 0};
    int rc = walk_decisions(RS(base), test_id, since, COUNT_SCAN_MAX, 0, visit_count, &x);
    for (size_t i = 0; rc == SCOUT_OK && i < x.n; i++)
        cb(ud, x.rows[i].bucket, x.rows[i].variant, x.rows[i].count, x.rows[i].explored);
    free(x.rows);
    return rc;
}

/* Reward events per time bucket and variant, read from the test's stream from `since` on.
 * Stream ids carry Redis's clock and the 't' field the replica's: the walk starts CLOCK_SLACK
 * seconds early and filters on 't'. Rows stay in time order, so the matching row is found by
 * looking back from the newest. */

struct reward_row {
    long bucket, variant, count;
    double sum;
};

static int rs_reward_counts(struct store *base, const char *test_id, double since, double granularity,
                            void (*cb)(void *ud, long bucket, long variant_id, long count, double sum), void *ud) {
    struct rs *s = RS(base);
    struct reward_row *rows = NULL;
    size_t n = 0, cap = 0;
    long seen = 0;
    int rc = SCOUT_OK;
    char from[48];
    if (granularity <= 0) granularity = 1;
    snprintf(from, sizeof from, "%lld", since > CLOCK_SLACK ? (long long)((since - CLOCK_SLACK) * 1000.0) : 0LL);
    while (rc == SCOUT_OK && seen < COUNT_SCAN_MAX) {
        struct redis_link *l = redis_pool_take(&s->pool);
        redisReply *r = redis_link_command(l, "XRANGE scout:{%s}:events %s + COUNT %d", test_id, from, READ_COUNT);
        redis_pool_give(&s->pool, l);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r) freeReplyObject(r);
            rc = SCOUT_ESTORE;
            break;
        }
        size_t got = r->elements;
        for (size_t e = 0; e < got && rc == SCOUT_OK; e++) {
            const redisReply *entry = r->element[e], *f;
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) continue;
            f = entry->element[1];
            const char *v = hash_field(f, "v"), *rw = hash_field(f, "r");
            double ts = num_field(f, "t", 0), reward = rw ? strtod(rw, NULL) : NAN;
            if (!v || !isfinite(reward) || ts < since) continue;
            long b = (long)((ts - since) / granularity), variant = strtol(v, NULL, 10);
            size_t i = n;
            while (i > 0 && !(rows[i - 1].bucket == b && rows[i - 1].variant == variant) && rows[i - 1].bucket >= b) i--;
            if (i > 0 && rows[i - 1].bucket == b && rows[i - 1].variant == variant) {
                rows[i - 1].count++;
                rows[i - 1].sum += reward;
                continue;
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                void *grown = realloc(rows, ncap * sizeof *rows);
                if (!grown) {
                    rc = SCOUT_ENOMEM;
                    break;
                }
                rows = grown;
                cap = ncap;
            }
            rows[n++] = (struct reward_row){b, variant, 1, reward};
        }
        if (got) snprintf(from, sizeof from, "(%s", r->element[got - 1]->element[0]->str);
        seen += (long)got;
        freeReplyObject(r);
        if (got < READ_COUNT) break;
    }
    for (size_t i = 0; rc == SCOUT_OK && i < n; i++) cb(ud, rows[i].bucket, rows[i].variant, rows[i].count, rows[i].sum);
    free(rows);
    return rc;
}

/* ---- tokens ----------------------------------------------------------------------------- */

static int rs_put_token(struct store *base, const struct store_token *tk) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    char hex[65], f[5][40];
    int ok;
    sodium_bin2hex(hex, sizeof hex, tk->hash, sizeof tk->hash);
    fmt_double(f[0], sizeof f[0], tk->created);
    fmt_double(f[1], sizeof f[1], tk->expires);
    fmt_double(f[2], sizeof f[2], tk->last_used);
    fmt_double(f[3], sizeof f[3], tk->revoked);
    fmt_double(f[4], sizeof f[4], tk->rotated);
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *a = redis_link_command(l, "HSET scout:token:%s name %s scope %d hash %s created %s expires %s last_used %s "
                                "revoked %s rotated %s",
                             tk->id, tk->name, tk->scope, hex, f[0], f[1], f[2], f[3], f[4]);
    redisReply *b = a ? redis_link_command(l, "SADD scout:tokens %s", tk->id) : NULL;
    redisReply *c = b ? redis_link_command(l, "INCR scout:tokens:version") : NULL;
    ok = reply_ok(a) && reply_ok(b) && reply_ok(c);
    redis_pool_give(&s->pool, l);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (c) freeReplyObject(c);
    sodium_memzero(hex, sizeof hex);
    count_op(s, ROP_TOKEN, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static int rs_delete_token(struct store *base, const char *id) {
    struct rs *s = RS(base);
    double t0 = util_monotonic();
    int ok;
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *a = redis_link_command(l, "DEL scout:token:%s", id);
    redisReply *b = a ? redis_link_command(l, "SREM scout:tokens %s", id) : NULL;
    redisReply *c = b ? redis_link_command(l, "INCR scout:tokens:version") : NULL;
    ok = reply_ok(a) && reply_ok(b) && reply_ok(c);
    redis_pool_give(&s->pool, l);
    if (a) freeReplyObject(a);
    if (b) freeReplyObject(b);
    if (c) freeReplyObject(c);
    count_op(s, ROP_TOKEN_DELETE, ok, t0);
    return ok ? SCOUT_OK : SCOUT_ESTORE;
}

static void rs_touch_token(struct store *base, const char *id, double last_used) {
    struct aop *op = calloc(1, sizeof *op);
    if (!op) return;
    op->kind = AOP_TOUCH;
    snprintf(op->u.touch.id, sizeof op->u.touch.id, "%s", id);
    op->u.touch.when = last_used;
    enqueue(RS(base), op);
}

static int rs_load_tokens(struct store *base, int (*cb)(void *ud, const struct store_token *tk), void *ud) {
    struct rs *s = RS(base);
    redisReply *ids;
    int rc = SCOUT_OK;
    struct redis_link *l = redis_pool_take(&s->pool);
    ids = redis_link_command(l, "SMEMBERS scout:tokens");
    if (!ids || ids->type != REDIS_REPLY_ARRAY) rc = SCOUT_ESTORE;
    for (size_t i = 0; rc == SCOUT_OK && i < ids->elements; i++) {
        redisReply *h = redis_link_command(l, "HGETALL scout:token:%s", ids->element[i]->str);
        const char *hex = hash_field(h, "hash"), *name = hash_field(h, "name");
        struct store_token tk;
        size_t got = 0;
        memset(&tk, 0, sizeof tk);
        if (!h) rc = SCOUT_ESTORE;
        else if (hex && name &&
                 sodium_hex2bin(tk.hash, sizeof tk.hash, hex, strlen(hex), NULL, &got, NULL) == 0 && got == sizeof tk.hash) {
            snprintf(tk.id, sizeof tk.id, "%s", ids->element[i]->str);
            snprintf(tk.name, sizeof tk.name, "%s", name);
            tk.scope = (int)num_field(h, "scope", 0);
            tk.created = num_field(h, "created", 0);
            tk.expires = num_field(h, "expires", 0);
            tk.last_used = num_field(h, "last_used", 0);
            tk.revoked = num_field(h, "revoked", 0);
            tk.rotated = num_field(h, "rotated", 0);
            if (cb(ud, &tk)) rc = SCOUT_ERR;
        }
        sodium_memzero(tk.hash, sizeof tk.hash);
        if (h) freeReplyObject(h);
    }
    redis_pool_give(&s->pool, l);
    if (ids) freeReplyObject(ids);
    return rc;
}

static int rs_tokens_version(struct store *base, long *out) {
    struct rs *s = RS(base);
    int rc = SCOUT_ESTORE;
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *r = redis_link_command(l, "GET scout:tokens:version");
    if (r && r->type == REDIS_REPLY_NIL) {
        *out = 0;
        rc = SCOUT_OK;
    } else if (r && r->type == REDIS_REPLY_STRING) {
        *out = strtol(r->str, NULL, 10);
        rc = SCOUT_OK;
    }
    redis_pool_give(&s->pool, l);
    if (r) freeReplyObject(r);
    return rc;
}

/* ---- backup and restore ----------------------------------------------------------------- */

/* A dump reads each test in one script call (DUMP_LUA): its meta, decision counts, sticky
 * assignments, snapshot, every event still in its stream and every live decision record, at
 * one instant — so a decision settled, a reward joined to its decision and the event it made
 * are all in or all out, and the snapshot matches the events beside it. The call holds Redis
 * for the time it takes to read one test (its stream is bounded by the snapshot retention);
 * tests, settings and tokens are read one after another. */

struct dump_test {
    char *id, *definition;
};

static int cmp_dump_test(const void *a, const void *b) {
    return strcmp(((const struct dump_test *)a)->id, ((const struct dump_test *)b)->id);
}

/* The string value of field `name` of a flat HGETALL-style array, or NULL. */
static const char *pair_field(const redisReply *h, const char *name) {
    return hash_field(h, name);
}

static int dump_one_test(struct rs *s, struct redis_link *l, const struct dump_test *t,
                         int (*emit)(void *ud, const struct store_record *r), void *ud, char *err, size_t errlen) {
    char keys[7][128];
    const char *argv[10];
    double now = util_now();
    redisContext *c = redis_link_get(l);
    redisReply *r = NULL, *meta, *arms, *sticky, *snap, *events, *decs;
    struct store_record rec;
    int rc = SCOUT_ESTORE;
    if (!c) {
        snprintf(err, errlen, "Redis went away during the backup");
        return SCOUT_ESTORE;
    }
    snprintf(keys[0], sizeof keys[0], "scout:{%s}:meta", t->id);
    snprintf(keys[1], sizeof keys[1], "scout:{%s}:armpred", t->id);
    snprintf(keys[2], sizeof keys[2], "scout:{%s}:sticky", t->id);
    snprintf(keys[3], sizeof keys[3], "scout:{%s}:snap", t->id);
    snprintf(keys[4], sizeof keys[4], "scout:{%s}:events", t->id);
    snprintf(keys[5], sizeof keys[5], "scout:{%s}:dlog", t->id);
    snprintf(keys[6], sizeof keys[6], "scout:{%s}:d", t->id);
    argv[0] = "EVALSHA";
    argv[1] = s->sha[SCRIPT_DUMP];
    argv[2] = "7";
    for (int i = 0; i < 7; i++) argv[3 + i] = keys[i];
    if (!(r = evalsha(s, c, 10, argv, NULL))) {
        redis_link_fail(l, c->errstr);
        snprintf(err, errlen, "Redis went away during the backup");
        return SCOUT_ESTORE;
    }
    if (r->type == REDIS_REPLY_NIL) {   /* deleted since the list of tests was read */
        rc = SCOUT_OK;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) {
        snprintf(err, errlen, "reading test %s failed: %s", t->id, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        goto out;
    }
    meta = r->element[0];
    arms = r->element[1];
    sticky = r->element[2];
    snap = r->element[3];
    events = r->element[4];
    decs = r->element[5];
    memset(&rec, 0, sizeof rec);
    rec.kind = STORE_REC_TEST;
    rec.test_id = t->id;
    rec.u.test.definition = t->definition;
    rec.u.test.created = num_field(meta, "created", 0);
    rec.u.test.rollout_variant = (long)num_field(meta, "rollout", -1);
    rec.u.test.predictions = (uint64_t)num_field(meta, "predictions", 0);
    rec.u.test.last_prediction = num_field(meta, "last_prediction", 0);
    rec.u.test.stats = pair_field(meta, "stats");
    rc = SCOUT_ERR;
    if (emit(ud, &rec)) goto out;
    for (size_t i = 0; arms->type == REDIS_REPLY_ARRAY && i + 1 < arms->elements; i += 2) {
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_ARM;
        rec.test_id = t->id;
        rec.u.arm.variant_id = strtol(arms->element[i]->str, NULL, 10);
        rec.u.arm.predictions = strtoull(arms->element[i + 1]->str, NULL, 10);
        if (emit(ud, &rec)) goto out;
    }
    {
        const redisReply *state = NULL;
        for (size_t i = 0; snap->type == REDIS_REPLY_ARRAY && i + 1 < snap->elements; i += 2)
            if (snap->element[i]->str && !strcmp(snap->element[i]->str, "state")) state = snap->element[i + 1];
        if (state && pair_field(snap, "id")) {
            memset(&rec, 0, sizeof rec);
            rec.kind = STORE_REC_SNAPSHOT;
            rec.test_id = t->id;
            rec.u.snapshot.id = pair_field(snap, "id");
            rec.u.snapshot.state = (const unsigned char *)state->str;
            rec.u.snapshot.len = state->len;
            rec.u.snapshot.t = num_field(snap, "t", 0);
            rec.u.snapshot.format = (long)num_field(snap, "format", 0);
            rec.u.snapshot.trimmed = pair_field(snap, "trimmed");
            if (emit(ud, &rec)) goto out;
        }
    }
    for (size_t i = 0; events->type == REDIS_REPLY_ARRAY && i < events->elements; i++) {
        const redisReply *e = events->element[i], *f;
        const char *v, *rw, *ctx, *q;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
        f = e->element[1];
        v = pair_field(f, "v");
        rw = pair_field(f, "r");
        if (!v || !rw) continue;   /* not an event the server would learn (apply_entry skips it too) */
        ctx = pair_field(f, "c");
        q = pair_field(f, "q");
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_REWARD;
        rec.test_id = t->id;
        rec.u.reward.variant_id = strtol(v, NULL, 10);
        rec.u.reward.reward = strtod(rw, NULL);
        rec.u.reward.ts = num_field(f, "t", 0);
        rec.u.reward.context = ctx && *ctx ? ctx : NULL;
        rec.u.reward.request_id = q && *q ? q : NULL;
        rec.u.reward.id = e->element[0]->str;
        if (!isfinite(rec.u.reward.reward) || rec.u.reward.variant_id < 0) continue;
        if (emit(ud, &rec)) goto out;
    }
    for (size_t i = 0; decs->type == REDIS_REPLY_ARRAY && i + 1 < decs->elements; i += 2) {
        const redisReply *v = decs->element[i + 1];
        struct redis_record d;
        if (!decs->element[i]->str || v->type != REDIS_REPLY_STRING || redis_record_parse(v->str, v->len, &d) < 0 ||
            d.expires <= now)
            continue;   /* expired, not trimmed yet: gone for every reader */
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_DECISION;
        rec.test_id = t->id;
        rec.u.decision.request_id = decs->element[i]->str;
        rec.u.decision.context = d.context;
        rec.u.decision.variant_id = d.variant;
        rec.u.decision.propensity = d.propensity;
        rec.u.decision.explored = d.explored;
        rec.u.decision.created = d.created;
        rec.u.decision.expires = d.expires;
        rec.u.decision.settle_at = d.settle_at;
        rec.u.decision.aggregate = d.aggregate;
        rec.u.decision.has_default = d.has_default;
        rec.u.decision.default_reward = d.default_reward;
        rec.u.decision.rewards = d.rewards;
        rec.u.decision.reward_sum = d.sum;
        rec.u.decision.settled = d.settled;
        rec.u.decision.model_version = d.model_version;
        if (emit(ud, &rec)) goto out;
    }
    for (size_t i = 0; sticky->type == REDIS_REPLY_ARRAY && i + 1 < sticky->elements; i += 2) {
        long v;
        double p;
        if (!sticky->element[i + 1]->str || sscanf(sticky->element[i + 1]->str, "%ld %lf", &v, &p) != 2) continue;
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_ASSIGNMENT;
        rec.test_id = t->id;
        rec.u.assignment.user = sticky->element[i]->str;
        rec.u.assignment.variant_id = v;
        rec.u.assignment.propensity = p;
        if (emit(ud, &rec)) goto out;
    }
    rc = SCOUT_OK;
out:
    freeReplyObject(r);
    return rc;
}

struct token_emit {
    int (*emit)(void *ud, const struct store_record *r);
    void *ud;
};

static int emit_token(void *ud, const struct store_token *tk) {
    struct token_emit *x = ud;
    struct store_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = STORE_REC_TOKEN;
    rec.u.token = *tk;
    int stop = x->emit(x->ud, &rec);
    sodium_memzero(&rec.u.token.hash, sizeof rec.u.token.hash);
    return stop;
}

static int rs_dump(struct store *base, int (*emit)(void *ud, const struct store_record *r), void *ud, char *err,
                   size_t errlen) {
    struct rs *s = RS(base);
    struct redis_link *l = redis_pool_take(&s->pool);
    redisReply *settings = NULL, *tests = NULL;
    struct dump_test *list = NULL;
    size_t n = 0;
    int rc = SCOUT_ESTORE;
    struct token_emit te = {emit, ud};
    settings = redis_link_command(l, "HGETALL scout:settings");
    if (!settings || settings->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "reading the settings from Redis failed");
        goto out;
    }
    for (size_t i = 0; i + 1 < settings->elements; i += 2) {
        struct store_record rec;
        memset(&rec, 0, sizeof rec);
        rec.kind = STORE_REC_SETTING;
        rec.u.setting.key = settings->element[i]->str;
        rec.u.setting.json = settings->element[i + 1]->str;
        if (emit(ud, &rec)) {
            rc = SCOUT_ERR;
            goto out;
        }
    }
    redis_pool_give(&s->pool, l);
    l = NULL;
    if ((rc = rs_load_tokens(base, emit_token, &te)) != SCOUT_OK) {
        if (rc != SCOUT_ERR) snprintf(err, errlen, "reading the tokens from Redis failed");
        goto out;
    }
    rc = SCOUT_ESTORE;
    l = redis_pool_take(&s->pool);
    tests = redis_link_command(l, "HGETALL scout:tests");
    if (!tests || tests->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "reading the list of tests from Redis failed");
        goto out;
    }
    if (tests->elements && !(list = calloc(tests->elements / 2, sizeof *list))) {
        rc = SCOUT_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i + 1 < tests->elements; i += 2) {
        list[n].id = tests->element[i]->str;
        list[n].definition = tests->element[i + 1]->str;
        if (list[n].id && list[n].definition && strlen(list[n].id) <= SCOUT_ID_LEN) n++;
    }
    if (n) qsort(list, n, sizeof *list, cmp_dump_test);   /* (list is NULL for an empty store) */
    rc = SCOUT_OK;
    for (size_t i = 0; i < n && rc == SCOUT_OK; i++) rc = dump_one_test(s, l, &list[i], emit, ud, err, errlen);
out:
    if (l) redis_pool_give(&s->pool, l);
    if (settings) freeReplyObject(settings);
    if (tests) freeReplyObject(tests);
    free(list);
    return rc;
}

/* Writes go out pipelined, PIPE_DEPTH commands at a time; the first error reply fails the
 * restore. */
#define PIPE_DEPTH 512

struct pipe {
    struct redis_link *l;
    redisContext *c;
    int pending;
    int failed;
    char why[200];
};

static int pipe_drain(struct pipe *p) {
    for (; p->pending > 0; p->pending--) {
        redisReply *r = NULL;
        if (redisGetReply(p->c, (void **)&r) != REDIS_OK) {
            if (!p->failed) snprintf(p->why, sizeof p->why, "the connection to Redis broke: %s", p->c->errstr);
            p->failed = 1;
            redis_link_fail(p->l, p->c->errstr);
            p->c = NULL;
            p->pending = 0;
            return SCOUT_ESTORE;
        }
        if (r->type == REDIS_REPLY_ERROR && !p->failed) {
            snprintf(p->why, sizeof p->why, "Redis refused a write: %s", r->str);
            p->failed = 1;
        }
        freeReplyObject(r);
    }
    return p->failed ? SCOUT_ESTORE : SCOUT_OK;
}

static void pipe_cmd(struct pipe *p, const char *fmt, ...) {
    va_list ap;
    if (!p->c || p->failed) return;
    va_start(ap, fmt);
    if (redisvAppendCommand(p->c, fmt, ap) == REDIS_OK) p->pending++;
    else p->failed = 1;
    va_end(ap);
    if (p->pending >= PIPE_DEPTH) pipe_drain(p);
}

/* Deletes every key of Scout's (SCAN, UNLINK in batches). */
static int clear_scout_keys(struct redis_link *l) {
    char cursor[32] = "0";
    do {
        redisReply *r = redis_link_command(l, "SCAN %s MATCH scout:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            return SCOUT_ESTORE;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        if (keys->elements) {
            const char **argv = calloc(keys->elements + 1, sizeof *argv);
            redisReply *u = NULL;
            if (argv) {
                argv[0] = "UNLINK";
                for (size_t i = 0; i < keys->elements; i++) argv[i + 1] = keys->element[i]->str;
                if (l->c) u = redisCommandArgv(l->c, (int)keys->elements + 1, argv, NULL);
                free(argv);
            }
            int ok = u && u->type == REDIS_REPLY_INTEGER;
            if (u) freeReplyObject(u);
            if (!ok) {
                freeReplyObject(r);
                return SCOUT_ESTORE;
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0"));
    return SCOUT_OK;
}

/* Whether Redis holds data of Scout's: tests, settings, tokens or any per-test key (the
 * catalog of changes, the settle lock and the format, which running servers make, aside). */
static int holds_scout_keys(struct redis_link *l, int *out) {
    char cursor[32] = "0";
    *out = 0;
    do {
        redisReply *r = redis_link_command(l, "SCAN %s MATCH scout:* COUNT 1000", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) freeReplyObject(r);
            return SCOUT_ESTORE;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements && !*out; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (strcmp(k, "scout:catalog") && strcmp(k, "scout:settle:lock") && strcmp(k, "scout:format")) *out = 1;
        }
        freeReplyObject(r);
    } while (!*out && strcmp(cursor, "0"));
    return SCOUT_OK;
}

/* Queues the writes of one record. *last and *dlast are the last ids given in the test's event
 * stream and dlog. */
static int restore_record(struct pipe *p, const struct store_record *r, struct store_event_pos *last,
                          struct store_event_pos *dlast, double now, char *err, size_t errlen) {
    char a[5][40];
    const char *t = r->test_id;
    switch (r->kind) {
    case STORE_REC_SETTING:
        pipe_cmd(p, "HSET scout:settings %s %s", r->u.setting.key, r->u.setting.json);
        break;
    case STORE_REC_TOKEN: {
        const struct store_token *tk = &r->u.token;
        char hex[65];
        sodium_bin2hex(hex, sizeof hex, tk->hash, sizeof tk->hash);
        fmt_double(a[0], sizeof a[0], tk->created);
        fmt_double(a[1], sizeof a[1], tk->expires);
        fmt_double(a[2], sizeof a[2], tk->last_used);
        fmt_double(a[3], sizeof a[3], tk->revoked);
        fmt_double(a[4], sizeof a[4], tk->rotated);
        pipe_cmd(p, "HSET scout:token:%s name %s scope %d hash %s created %s expires %s last_used %s revoked %s rotated %s",
                 tk->id, tk->name, tk->scope, hex, a[0], a[1], a[2], a[3], a[4]);
        pipe_cmd(p, "SADD scout:tokens %s", tk->id);
        sodium_memzero(hex, sizeof hex);
        break;
    }
    case STORE_REC_TEST:
        *last = *dlast = (struct store_event_pos){0, 0};
        fmt_double(a[0], sizeof a[0], r->u.test.created);
        fmt_double(a[1], sizeof a[1], r->u.test.last_prediction);
        pipe_cmd(p, "HSET scout:{%s}:meta created %s rollout %ld predictions %" PRIu64 " last_prediction %s", t, a[0],
                 r->u.test.rollout_variant, r->u.test.predictions, a[1]);
        if (r->u.test.stats) pipe_cmd(p, "HSET scout:{%s}:meta stats %s", t, r->u.test.stats);
        pipe_cmd(p, "HSET scout:tests %s %s", t, r->u.test.definition);
        break;
    case STORE_REC_ARM:
        pipe_cmd(p, "HSET scout:{%s}:armpred %ld %" PRIu64, t, r->u.arm.variant_id, r->u.arm.predictions);
        break;
    case STORE_REC_SNAPSHOT:
        fmt_double(a[0], sizeof a[0], r->u.snapshot.t);
        pipe_cmd(p, "HSET scout:{%s}:snap id %s state %b t %s format %ld", t, r->u.snapshot.id, r->u.snapshot.state,
                 r->u.snapshot.len, a[0], r->u.snapshot.format);
        if (r->u.snapshot.trimmed) pipe_cmd(p, "HSET scout:{%s}:snap trimmed %s", t, r->u.snapshot.trimmed);
        break;
    case STORE_REC_REWARD: {
        char id[48];
        struct store_event_pos pos;
        if (r->u.reward.id) {
            if (!parse_pos(r->u.reward.id, &pos) || pos_le(pos, *last)) {
                snprintf(err, errlen, "test %s: event ids out of order (%s)", t, r->u.reward.id);
                return SCOUT_EINVAL;
            }
            *last = pos;
            snprintf(id, sizeof id, "%" PRIu64 "-%" PRIu64, pos.ms, pos.seq);
        } else {
            store_next_event_id(last, r->u.reward.ts, id, sizeof id);
        }
        fmt_double(a[0], sizeof a[0], r->u.reward.reward);
        fmt_double(a[1], sizeof a[1], r->u.reward.ts);
        pipe_cmd(p, "XADD scout:{%s}:events %s v %ld r %s c %s q %s t %s", t, id, r->u.reward.variant_id, a[0],
                 r->u.reward.context ? r->u.reward.context : "", r->u.reward.request_id ? r->u.reward.request_id : "",
                 a[1]);
        break;
    }
    case STORE_REC_DECISION: {
        const char *rid = r->u.decision.request_id;
        struct redis_record rr = {r->u.decision.variant_id, r->u.decision.propensity, r->u.decision.explored,
                                  r->u.decision.created, r->u.decision.expires, r->u.decision.settle_at,
                                  r->u.decision.aggregate, r->u.decision.has_default, r->u.decision.default_reward,
                                  r->u.decision.model_version, r->u.decision.rewards, r->u.decision.reward_sum,
                                  r->u.decision.settled, r->u.decision.context};
        char tm[REDIS_RECORD_TIME_MAX], id[48];
        size_t len;
        char *value;
        if (rr.expires <= now) break;   /* would expire at once: the server forgets it anyway */
        if (!(value = redis_record_value(&rr, &len))) {
            snprintf(err, errlen, "out of memory");
            return SCOUT_ENOMEM;
        }
        store_next_event_id(dlast, rr.created, id, sizeof id);   /* in the dump's order, always increasing */
        pipe_cmd(p, "HSET scout:{%s}:d %s %b", t, rid, value, len);
        free(value);
        redis_record_time(tm, rr.created);
        pipe_cmd(p, "XADD scout:{%s}:dlog %s n 1 %s %s", t, id, rid, tm);
        redis_record_time(tm, rr.settle_at);
        if (rr.settle_at > 0 && !rr.settled) pipe_cmd(p, "ZADD scout:{%s}:settle %s %s", t, tm, rid);
        break;
    }
    case STORE_REC_ASSIGNMENT:
        fmt_double(a[0], sizeof a[0], r->u.assignment.propensity);
    {
        char value[80];
        snprintf(value, sizeof value, "%ld %s", r->u.assignment.variant_id, a[0]);   /* one value: "variant propensity" */
        pipe_cmd(p, "HSET scout:{%s}:sticky %s %s", t, r->u.assignment.user, value);
    }
        break;
    default:
        snprintf(err, errlen, "a record of an unknown kind");
        return SCOUT_EINVAL;
    }
    return SCOUT_OK;
}

static int rs_restore(struct store *base, bool force, int (*next)(void *ud, struct store_record *r), void *ud,
                      char *err, size_t errlen) {
    struct rs *s = RS(base);
    struct pipe p = {0};
    struct store_record rec;
    struct store_event_pos last = {0, 0}, dlast = {0, 0};
    double now = util_now();
    int rc = SCOUT_ESTORE, holds = 0, got, wrote = 0;
    p.l = redis_pool_take(&s->pool);
    if (holds_scout_keys(p.l, &holds) != SCOUT_OK) {
        snprintf(err, errlen, "cannot read Redis to see whether it is empty");
        goto out;
    }
    if (holds && !force) {
        snprintf(err, errlen, "Redis already holds Scout data; restore into an empty one, or pass --force to "
                              "replace what it holds");
        rc = SCOUT_ECONFLICT;
        goto out;
    }
    wrote = 1;   /* from here on, a failure deletes what was written */
    if (holds && clear_scout_keys(p.l) != SCOUT_OK) {
        snprintf(err, errlen, "clearing Scout's data in Redis failed");
        goto out;
    }
    if (!(p.c = redis_link_get(p.l))) {
        snprintf(err, errlen, "Redis went away");
        goto out;
    }
    memset(&rec, 0, sizeof rec);
    while ((got = next(ud, &rec)) > 0) {
        if ((rc = restore_record(&p, &rec, &last, &dlast, now, err, errlen)) != SCOUT_OK) goto out;
        rc = SCOUT_ESTORE;
        if (p.failed) break;
        memset(&rec, 0, sizeof rec);
    }
    if (got < 0) {
        rc = SCOUT_ERR;   /* the source said why */
        goto out;
    }
    pipe_cmd(&p, "INCR scout:tokens:version");   /* running token caches reload on a change */
    pipe_cmd(&p, "SET scout:format %d", STORE_FORMAT);
    if (pipe_drain(&p) != SCOUT_OK) {
        snprintf(err, errlen, "%s", p.why[0] ? p.why : "writing to Redis failed");
        goto out;
    }
    rc = SCOUT_OK;
out:
    if (p.c && p.pending) pipe_drain(&p);
    if (rc != SCOUT_OK && wrote) {
        size_t len = strlen(err);
        int cleared = clear_scout_keys(p.l) == SCOUT_OK;
        snprintf(err + len, errlen - len, cleared ? " (what was written is deleted: Redis holds no Scout data now)"
                                                  : " (and deleting what was written failed: clear scout:* by hand)");
    }
    redis_pool_give(&s->pool, p.l);
    return rc;
}

/* ---- one test moved in, one test's events read ------------------------------------------- */

/* Claims the id (HSETNX on the list of tests, so two imports of one id cannot both win), then
 * writes the test's meta, counters, events and snapshot pipelined, and only then tells the
 * replicas (catalog "put"): they load the snapshot and follow the events after it. The events
 * get ids from their times (never later than now, so the test's next events come after them);
 * the snapshot is filed under the last one's id with "trimmed" there, so an unreadable
 * snapshot stops a start instead of a replay of history it was not folded from. A failure
 * deletes what was written. */
static int rs_import_test(struct store *base, const struct store_record *recs, size_t n, char *err, size_t errlen) {
    struct rs *s = RS(base);
    double t0 = util_monotonic(), now = util_now();
    const char *t = recs[0].test_id;
    const struct store_record *snap = NULL;
    struct store_event_pos last = {0, 0};
    struct pipe p = {0};
    char snap_id[48] = "", evid[48], a[3][40];
    redisReply *r = NULL;
    int rc = SCOUT_ESTORE, claimed = 0;
    for (size_t i = 0; i < n; i++) {
        enum store_record_kind k = recs[i].kind;
        if ((k == STORE_REC_TEST) != (i == 0) || !recs[i].test_id || strcmp(recs[i].test_id, t) ||
            (k != STORE_REC_TEST && k != STORE_REC_ARM && k != STORE_REC_SNAPSHOT && k != STORE_REC_REWARD) ||
            (k == STORE_REC_SNAPSHOT && snap)) {
            snprintf(err, errlen, "an import holds one test, its counters, one snapshot and its events");
            return SCOUT_EINVAL;
        }
        if (k == STORE_REC_SNAPSHOT) snap = &recs[i];
    }
    if (!snap) {
        snprintf(err, errlen, "an import needs the test's learned state");
        return SCOUT_EINVAL;
    }
    p.l = redis_pool_take(&s->pool);
    r = redis_link_command(p.l, "HSETNX scout:tests %s %s", t, recs[0].u.test.definition);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "Redis failed: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
        goto out;
    }
    if (r->integer == 0) {
        snprintf(err, errlen, "a test with id %s exists", t);
        rc = SCOUT_ECONFLICT;
        goto out;
    }
    claimed = 1;
    if (!(p.c = redis_link_get(p.l))) {
        snprintf(err, errlen, "Redis went away");
        goto out;
    }
    fmt_double(a[0], sizeof a[0], recs[0].u.test.created);
    fmt_double(a[1], sizeof a[1], recs[0].u.test.last_prediction);
    pipe_cmd(&p, "HSET scout:{%s}:meta created %s rollout %ld predictions %" PRIu64 " last_prediction %s", t, a[0],
             recs[0].u.test.rollout_variant, recs[0].u.test.predictions, a[1]);
    for (size_t i = 1; i < n; i++) {
        const struct store_record *x = &recs[i];
        if (x->kind == STORE_REC_ARM) {
            pipe_cmd(&p, "HSET scout:{%s}:armpred %ld %" PRIu64, t, x->u.arm.variant_id, x->u.arm.predictions);
        } else if (x->kind == STORE_REC_REWARD) {
            store_next_event_id(&last, x->u.reward.ts < now ? x->u.reward.ts : now, evid, sizeof evid);
            snprintf(snap_id, sizeof snap_id, "%s", evid);
            fmt_double(a[0], sizeof a[0], x->u.reward.reward);
            fmt_double(a[1], sizeof a[1], x->u.reward.ts);
            pipe_cmd(&p, "XADD scout:{%s}:events %s v %ld r %s c %s q %s t %s", t, evid, x->u.reward.variant_id, a[0],
                     x->u.reward.context ? x->u.reward.context : "",
                     x->u.reward.request_id ? x->u.reward.request_id : "", a[1]);
        }
    }
    if (!snap_id[0]) store_next_event_id(&last, 0, snap_id, sizeof snap_id);
    snprintf(a[2], sizeof a[2], "%lld", (long long)(now * 1000.0));
    pipe_cmd(&p, "HSET scout:{%s}:snap id %s state %b t %s format %ld trimmed %s", t, snap_id, snap->u.snapshot.state,
             snap->u.snapshot.len, a[2], snap->u.snapshot.format, snap_id);
    if (pipe_drain(&p) != SCOUT_OK) {
        snprintf(err, errlen, "%s", p.why[0] ? p.why : "writing to Redis failed");
        goto out;
    }
    follow(s, t, snap_id);
    if (!announce(p.l, "put", "id", t)) {
        unfollow(s, t);
        snprintf(err, errlen, "Redis failed while announcing the test");
        goto out;
    }
    rc = SCOUT_OK;
    /* A rollout travels as its own change, after the test it belongs to; the test stands
     * without it (the replicas that missed it read it from the meta at their next start). */
    if (recs[0].u.test.rollout_variant >= 0 && !announce(p.l, "rollout", "id", t))
        log_msg(LOG_WARN, "store: test %s was imported, but its rollout was not announced to the other replicas", t);
out:
    if (p.c && p.pending) pipe_drain(&p);
    if (rc == SCOUT_ESTORE && claimed) {   /* nobody was told of the test: take it back */
        redisReply *d = redis_link_command(p.l, "DEL scout:{%s}:meta scout:{%s}:events scout:{%s}:armpred "
                                                "scout:{%s}:snap", t, t, t, t);
        redisReply *h = redis_link_command(p.l, "HDEL scout:tests %s", t);
        if (d) freeReplyObject(d);
        if (h) freeReplyObject(h);
    }
    redis_pool_give(&s->pool, p.l);
    if (r) freeReplyObject(r);
    count_op(s, ROP_IMPORT, rc == SCOUT_OK || rc == SCOUT_ECONFLICT, t0);
    return rc;
}

static int rs_scan_rewards(struct store *base, const char *test_id, int (*cb)(void *ud, const struct store_record *r),
                           void *ud) {
    struct rs *s = RS(base);
    char from[50] = "-";
    int rc = SCOUT_OK;
    for (;;) {
        struct redis_link *l = redis_pool_take(&s->pool);
        redisReply *r = redis_link_command(l, "XRANGE scout:{%s}:events %s + COUNT %d", test_id, from, READ_COUNT);
        size_t got;
        redis_pool_give(&s->pool, l);   /* the callback runs without holding a link */
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            if (r) freeReplyObject(r);
            return SCOUT_ESTORE;
        }
        got = r->elements;
        for (size_t e = 0; e < got && rc == SCOUT_OK; e++) {
            const redisReply *entry = r->element[e], *f;
            const char *v, *rw, *c, *q;
            struct store_record rec;
            if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) continue;
            f = entry->element[1];
            snprintf(from, sizeof from, "(%s", entry->element[0]->str);
            v = hash_field(f, "v");
            rw = hash_field(f, "r");
            c = hash_field(f, "c");
            q = hash_field(f, "q");
            if (!v || !rw) continue;   /* not an event the server learns (apply_entry skips it too) */
            memset(&rec, 0, sizeof rec);
            rec.kind = STORE_REC_REWARD;
            rec.test_id = test_id;
            rec.u.reward.variant_id = strtol(v, NULL, 10);
            rec.u.reward.reward = strtod(rw, NULL);
            rec.u.reward.ts = num_field(f, "t", 0);
            rec.u.reward.context = c && *c ? c : NULL;
            rec.u.reward.request_id = q && *q ? q : NULL;
            rec.u.reward.id = entry->element[0]->str;
            if (!isfinite(rec.u.reward.reward) || rec.u.reward.variant_id < 0) continue;
            if (cb(ud, &rec) != 0) rc = SCOUT_ERR;
        }
        freeReplyObject(r);
        if (got < READ_COUNT || rc != SCOUT_OK) break;
    }
    return rc;
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void rs_render_metrics(struct store *base, struct metrics_text *t) {
    struct rs *s = RS(base);
    long qlen;
    int up;
    pthread_mutex_lock(&s->qlock);
    qlen = s->qlen;
    pthread_mutex_unlock(&s->qlock);
    up = redis_pool_up(&s->pool) + atomic_load(&s->reader_up) + atomic_load(&s->writer_up);
    store_render_operations(t, ROP_NAMES, s->ops_ok, s->ops_err, ROP_COUNT);
    metrics_printf(t, "# HELP scout_store_commit_seconds Time of one synchronous Redis operation or one pipelined "
                      "batch of queued writes.\n# TYPE scout_store_commit_seconds histogram\n");
    metrics_histogram(t, "scout_store_commit_seconds", "", &s->latency);
    metrics_scalar(t, "gauge", "scout_store_pending_decisions",
                   "Decision records queued and not yet written.",
                   (long long)atomic_load(&s->pending_decisions));
    metrics_scalar(t, "counter", "scout_store_purged_decisions_total",
                   "Expired decision records dropped (records and index entries).",
                   (long long)atomic_load(&s->purged));
    metrics_scalar(t, "gauge", "scout_redis_connections",
                   "Live connections to Redis (the request pool's, the writer's, the reader's).",
                   (long long)up);
    metrics_scalar(t, "gauge", "scout_store_pending_writes",
                   "Writes queued for Redis and not yet written.",
                   (long long)qlen);
    metrics_scalar(t, "counter", "scout_store_dropped_writes_total",
                   "Queued writes given up (queue full, or Redis away at shutdown).",
                   (long long)atomic_load(&s->writes_dropped));
    metrics_scalar(t, "counter", "scout_store_events_read_total",
                   "Reward events read back from the streams and learned.",
                   (long long)atomic_load(&s->events_read));
    metrics_scalar(t, "counter", "scout_store_snapshots_total",
                   "Snapshots of learned state filed by this replica.",
                   (long long)atomic_load(&s->snapshots_taken));
    metrics_scalar(t, "counter", "scout_store_snapshot_restores_total",
                   "Snapshots this replica loaded (at start-up, or after falling behind trimmed events).",
                   (long long)atomic_load(&s->snapshots_restored));
    metrics_scalar(t, "counter", "scout_store_snapshot_errors_total",
                   "Snapshots that could not be filed or read.",
                   (long long)atomic_load(&s->snapshot_errors));
    metrics_scalar(t, "counter", "scout_store_events_trimmed_total",
                   "Reward events trimmed from the streams by this replica's snapshots (covered by a snapshot "
                   "and older than the retention).",
                   (long long)atomic_load(&s->events_trimmed));
    metrics_scalar(t, "counter", "scout_store_settled_rewards_total",
                   "Reward events made when a decision's reward window ended (summed rewards or the default "
                   "reward).",
                   (long long)atomic_load(&s->settled));
}

static const struct store_ops redis_ops = {
    .name = "redis",
    .set_event_handler = rs_set_event_handler,
    .set_change_handler = rs_set_change_handler,
    .set_snapshots = rs_set_snapshots,
    .import_test = rs_import_test,
    .scan_rewards = rs_scan_rewards,
    .start = rs_start,
    .close = rs_close,
    .put_setting = rs_put_setting,
    .put_test = rs_put_test,
    .delete_test = rs_delete_test,
    .set_rollout = rs_set_rollout,
    .put_token = rs_put_token,
    .delete_token = rs_delete_token,
    .touch_token = rs_touch_token,
    .flush = rs_flush,
    .put_decision = rs_put_decision,
    .append_rewards_async = rs_append_rewards_async,
    .put_test_stats = rs_put_test_stats,
    .claim_assignment = rs_claim_assignment,
    .append_rewards = rs_append_rewards,
    .load_tests = rs_load_tests,
    .load_arm_predictions = rs_load_arm_predictions,
    .load_rewards = rs_load_rewards,
    .load_assignments = rs_load_assignments,
    .get_setting = rs_get_setting,
    .count_decisions = rs_count_decisions,
    .scan_decisions = rs_scan_decisions,
    .scan_outcomes = rs_scan_outcomes,
    .decision_counts = rs_decision_counts,
    .reward_counts = rs_reward_counts,
    .load_tokens = rs_load_tokens,
    .tokens_version = rs_tokens_version,
    .render_metrics = rs_render_metrics,
    .ping = rs_ping,
    .dump = rs_dump,
    .restore = rs_restore,
};
