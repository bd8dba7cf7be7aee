-- Courier over Redis: every state change of the data model, run atomically inside Redis.
-- See keys.rs for the layout. ARGV[1] names the operation; KEYS[1] is the slot root R of the
-- destination (all of a destination's keys share R's hash tag).
--
-- R:seq          counter of arrivals (and of the ids of messages stored by the script)
-- R:m:<id>       hash: p = priority, x = expiration (ms, 0 = never), c = deliveries so far,
--                s = ready score, v:<name> = the values selectors see; small, so Redis
--                keeps it as one listpack. (A message stored by an earlier build also has
--                e = the encoded message and no R:b:<id>: see body.)
-- R:b:<id>       string: the encoded message (its body), apart from the hash: a value over
--                64 bytes would make the hash a hashtable. A queue send's body is written
--                by the client (MSET, id chosen by the client, never all digits) in the
--                same MULTI as its 'commit', so it never passes through Lua; other
--                messages (topic copies, dead letters) get the next R:seq as id
-- R:t            ids a 'take_ids' just took, read (SORT R:t BY nosort GET R:b:*) and deleted
--                in the same MULTI: it never outlives that transaction
-- B:r            ready index (zset, score = (9 - priority) * 1e13 + id), B = R or R:s:<sub>
-- B:d            delayed index (zset, score = due time in ms)
-- B:h:<conn>     ids held (in flight) by a connection;  B:hs  connections holding any
-- R:l:<conn>     a connection's lease (expires unless renewed while the connection lives)
-- R:subs         topic subscriptions: sub id -> "owner\tnolocal" (owner "" durable, "*" shared)
-- B:a            consumer tokens "conn|consumer" open on a queue (B = R) or a subscription
-- B:rc           set for 100 ms after recover_dead looked at B's holders
-- B:ix, B:xk     equality indexes: property names indexed, and the index keys B:x:<name>:<v>
-- B:ixp          names whose index is still being filled: name -> score filled up to
-- R:w            set while a consumer waits for a publish (see notify_waiting)
-- R:owner        the connection owning a temporary destination
--
-- A plain destination exists (for the 'delete' operation) while it has any of R:seq (made by
-- the first message stored, consumer attached or subscription made), a subscription, an
-- indexed or held message, or a consumer token; 'delete' removes them all.

local op = ARGV[1]
-- K, the selector runtime, is built (selector_runtime) only by the operations that evaluate
-- selectors: building it costs more than a plain take.
local STEP = 10000000000000

local function num(v)
  if not v then return 0 end
  return tonumber(v) or 0
end

-- Equality indexes: for each property name a selector consumer registered (B:ix), one sorted
-- set per value (B:x:<name>:<typed value>, scored like B:r) of the ready messages having it.
local function ix_key(base, name, raw)
  if raw == 'd-0e0' then raw = 'd0e0' end
  return base .. ':x:' .. name .. ':' .. raw
end

-- The indexed property names of a base, read once per script run (only the separate
-- 'index' operation adds names).
local ix_names_of = {}
local function ix_names(base)
  local names = ix_names_of[base]
  if not names then
    names = redis.call('SMEMBERS', base .. ':ix')
    ix_names_of[base] = names
  end
  return names
end

local function ix_add(root, base, id, s)
  local names = ix_names(base)
  if #names == 0 then return end
  local m = root .. ':m:' .. id
  for _, name in ipairs(names) do
    local raw = redis.call('HGET', m, 'v:' .. name)
    if raw then
      local key = ix_key(base, name, raw)
      redis.call('ZADD', key, s, id)
      redis.call('SADD', base .. ':xk', key)
    end
  end
end

local function ix_del(root, base, id)
  local names = ix_names(base)
  if #names == 0 then return end
  local m = root .. ':m:' .. id
  for _, name in ipairs(names) do
    local raw = redis.call('HGET', m, 'v:' .. name)
    if raw then redis.call('ZREM', ix_key(base, name, raw), id) end
  end
end

-- A whole number as text. Numbers handed to redis.call as numbers are formatted as '%.17g',
-- which costs the server more than the command itself; '%d' is the cheap integer path.
local function int_text(n)
  return string.format('%d', n)
end

-- Stores one message's hash, and its body unless `enc` is false (the client wrote it);
-- `exp` is its expiration as text.
local function store(root, id, enc, prio, exp, s, fields)
  local m = root .. ':m:' .. id
  if enc then redis.call('SET', root .. ':b:' .. id, enc) end
  if fields and #fields > 0 then
    redis.call('HSET', m, 'p', int_text(prio), 'x', exp, 'c', '0', 's', s, unpack(fields))
  else
    redis.call('HSET', m, 'p', int_text(prio), 'x', exp, 'c', '0', 's', s)
  end
end

-- Deletes a message: its hash and its body.
local function forget(root, id)
  redis.call('DEL', root .. ':m:' .. id, root .. ':b:' .. id)
end

-- A message's encoded form: its body key, or, for a message stored by a build before the
-- bodies left the hashes (no body key), its hash's field e.
local function body(root, id)
  return redis.call('GET', root .. ':b:' .. id) or redis.call('HGET', root .. ':m:' .. id, 'e')
end

-- `exp` and `due` are text (as the client sent them, or as stored).
local function enqueue(root, base, enc, prio, exp, due, now, fields)
  local id = redis.call('INCR', root .. ':seq')
  local s = int_text((9 - prio) * STEP + id)
  id = int_text(id)
  store(root, id, enc, prio, exp, s, fields)
  if num(due) > now then
    redis.call('ZADD', base .. ':d', due, id)
  else
    redis.call('ZADD', base .. ':r', s, id)
    ix_add(root, base, id, s)
  end
  return id
end

-- Sends to one queue, in order: their arrival numbers reserved with one INCRBY, the ready
-- ones indexed with one ZADD. Each send is {enc, prio, exp, due, fields, stored} (exp and
-- due as text); a `stored` send's body is already written (by the client, in the same
-- MULTI) and its first element is its id.
local function enqueue_all(root, sends, now)
  local last = redis.call('INCRBY', root .. ':seq', #sends)
  local first = last - #sends
  local ready = {}
  for k, send in ipairs(sends) do
    local n = first + k
    local s = int_text((9 - send[2]) * STEP + n)
    local id
    if send[6] then
      id = send[1]
      store(root, id, false, send[2], send[3], s, send[5])
    else
      id = int_text(n)
      store(root, id, send[1], send[2], send[3], s, send[5])
    end
    if num(send[4]) > now then
      redis.call('ZADD', root .. ':d', send[4], id)
    else
      ready[#ready + 1] = s
      ready[#ready + 1] = id
      ix_add(root, root, id, s)
    end
    -- In chunks: unpack has a limit.
    if #ready >= 1000 or (k == #sends and #ready > 0) then
      redis.call('ZADD', root .. ':r', unpack(ready))
      ready = {}
    end
  end
end

local function notify(root)
  redis.call('PUBLISH', root .. ':n', '1')
end

-- A consumer that found nothing sets R:w before it waits (in the same script, so no publish
-- can come between); a publish notifies only when the flag is set, and clears it: a busy
-- queue costs no pub/sub message per send.
local function notify_waiting(root)
  if redis.call('DEL', root .. ':w') == 1 then notify(root) end
end

-- Gives a message back to its index, or to the dead-letter queue after too many attempts.
local function requeue(root, base, id, max, dlq)
  local m = root .. ':m:' .. id
  local f = redis.call('HMGET', m, 'p', 'x', 'c', 's')
  if not f[2] then return end
  if max > 0 and num(f[3]) >= max and dlq ~= '' then
    local enc = body(root, id)
    local all = redis.call('HGETALL', m)
    local fields = {}
    for k = 1, #all, 2 do
      if string.sub(all[k], 1, 2) == 'v:' then
        fields[#fields + 1] = all[k]
        fields[#fields + 1] = all[k + 1]
      end
    end
    forget(root, id)
    enqueue(dlq, dlq, enc or '', num(f[1]), f[2], '0', 0, fields)
    notify(dlq)
  else
    redis.call('ZADD', base .. ':r', f[4], id)
    ix_add(root, base, id, f[4])
  end
end

-- Returns what connections that are gone (lease expired) held. Looked at most every 100 ms
-- per index (B:rc): leases last seconds, and a take should not pay for it each time.
local function recover_dead(root, base, max, dlq)
  local back = false
  if not redis.call('SET', base .. ':rc', '1', 'PX', 100, 'NX') then return back end
  for _, c in ipairs(redis.call('SMEMBERS', base .. ':hs')) do
    if redis.call('EXISTS', root .. ':l:' .. c) == 0 then
      for _, id in ipairs(redis.call('SMEMBERS', base .. ':h:' .. c)) do
        requeue(root, base, id, max, dlq)
        back = true
      end
      redis.call('DEL', base .. ':h:' .. c)
      redis.call('SREM', base .. ':hs', c)
    end
  end
  return back
end

local function move_due(root, base, now)
  local due = redis.call('ZRANGEBYSCORE', base .. ':d', '-inf', now)
  for _, id in ipairs(due) do
    local s = redis.call('HGET', root .. ':m:' .. id, 's')
    if s then
      redis.call('ZADD', base .. ':r', s, id)
      ix_add(root, base, id, s)
    end
    redis.call('ZREM', base .. ':d', id)
  end
end

local function next_due(base)
  local d = redis.call('ZRANGE', base .. ':d', 0, 0, 'WITHSCORES')
  if #d == 0 then return '-1' end
  return d[2]
end

-- The reply of a take that found nothing: the consumer will wait, so publishes notify.
local function nothing(root, base)
  redis.call('SET', root .. ':w', '1')
  return {0, next_due(base)}
end

local function delete_ids(root, ids)
  for _, id in ipairs(ids) do forget(root, id) end
end

local function destroy_sub(root, sub)
  local base = root .. ':s:' .. sub
  delete_ids(root, redis.call('ZRANGE', base .. ':r', 0, -1))
  delete_ids(root, redis.call('ZRANGE', base .. ':d', 0, -1))
  for _, c in ipairs(redis.call('SMEMBERS', base .. ':hs')) do
    delete_ids(root, redis.call('SMEMBERS', base .. ':h:' .. c))
    redis.call('DEL', base .. ':h:' .. c)
  end
  for _, key in ipairs(redis.call('SMEMBERS', base .. ':xk')) do redis.call('DEL', key) end
  redis.call('DEL', base .. ':r', base .. ':d', base .. ':hs', base .. ':a', base .. ':ix',
    base .. ':ixp',
    base .. ':xk', base .. ':rc')
  redis.call('HDEL', root .. ':subs', sub)
end

local function live_tokens(root, base)
  local live = 0
  for _, t in ipairs(redis.call('SMEMBERS', base .. ':a')) do
    local c = string.match(t, '^([^|]*)')
    if redis.call('EXISTS', root .. ':l:' .. c) == 1 then
      live = live + 1
    else
      redis.call('SREM', base .. ':a', t)
    end
  end
  return live
end

-- Whether a live connection (its lease not lapsed) holds messages of B in flight: delivered
-- and not acknowledged yet.
local function live_holders(root, base)
  for _, c in ipairs(redis.call('SMEMBERS', base .. ':hs')) do
    if redis.call('EXISTS', root .. ':l:' .. c) == 1 and redis.call('SCARD', base .. ':h:' .. c) > 0 then
      return true
    end
  end
  return false
end

-- Deletes every key of a destination: its subscriptions, its messages wherever they are
-- (ready, delayed, held), its indexes, counters and flags, and the leases of the connections
-- it names (holders, consumers, owners). A connection still listing the destination renews
-- its own lease (no data, only its liveness) until it closes.
local function destroy_root(root, conn)
  local leases = {}
  if conn then leases[conn] = true end
  local function lease_of_tokens(base)
    for _, t in ipairs(redis.call('SMEMBERS', base .. ':a')) do
      leases[string.match(t, '^([^|]*)')] = true
    end
  end
  local subs = redis.call('HGETALL', root .. ':subs')
  for i = 1, #subs, 2 do
    local sub, owner = subs[i], string.match(subs[i + 1], '^([^\t]*)')
    local base = root .. ':s:' .. sub
    if owner and owner ~= '' and owner ~= '*' then leases[owner] = true end
    for _, c in ipairs(redis.call('SMEMBERS', base .. ':hs')) do leases[c] = true end
    lease_of_tokens(base)
    destroy_sub(root, sub)
  end
  lease_of_tokens(root)
  delete_ids(root, redis.call('ZRANGE', root .. ':r', 0, -1))
  delete_ids(root, redis.call('ZRANGE', root .. ':d', 0, -1))
  for _, c in ipairs(redis.call('SMEMBERS', root .. ':hs')) do
    delete_ids(root, redis.call('SMEMBERS', root .. ':h:' .. c))
    redis.call('DEL', root .. ':h:' .. c)
    leases[c] = true
  end
  for _, key in ipairs(redis.call('SMEMBERS', root .. ':xk')) do redis.call('DEL', key) end
  for c in pairs(leases) do redis.call('DEL', root .. ':l:' .. c) end
  redis.call('DEL', root .. ':r', root .. ':d', root .. ':hs', root .. ':a', root .. ':ix',
    root .. ':ixp',
    root .. ':xk', root .. ':rc', root .. ':subs', root .. ':seq', root .. ':owner',
    root .. ':w', root .. ':t')
end

-- Adds one message to a queue, or to every live subscription of a topic.
local function publish(root, kind, enc, prio, exp, due, now, tag, fields)
  if kind == 'q' then
    enqueue(root, root, enc, prio, exp, due, now, fields)
  else
    local subs = redis.call('HGETALL', root .. ':subs')
    for i = 1, #subs, 2 do
      local sub, v = subs[i], subs[i + 1]
      local owner, nolocal = string.match(v, '^([^\t]*)\t(.*)$')
      local base = root .. ':s:' .. sub
      local alive = true
      if owner == '*' then
        alive = live_tokens(root, base) > 0
      elseif owner ~= '' then
        alive = redis.call('EXISTS', root .. ':l:' .. owner) == 1
      end
      if not alive then
        destroy_sub(root, sub)
      elseif nolocal == '' or nolocal ~= tag then
        enqueue(root, base, enc, prio, exp, due, now, fields)
      end
    end
  end
end

-- Records ids (taken by `conn`) as held: one SADD for all of them, and `conn` among B's
-- holders; joining sets the lease, which its heartbeat then renews.
local function hold(root, base, conn, lease, ids)
  for from = 1, #ids, 1000 do
    redis.call('SADD', base .. ':h:' .. conn, unpack(ids, from, math.min(from + 999, #ids)))
  end
  if redis.call('SADD', base .. ':hs', conn) == 1 then
    redis.call('SET', root .. ':l:' .. conn, '1', 'PX', lease)
  end
end

-- Marks a ready message in flight for a connection and returns it.
local function claim(root, base, conn, lease, id, m, enc)
  redis.call('ZREM', base .. ':r', id)
  ix_del(root, base, id)
  local c = redis.call('HINCRBY', m, 'c', 1)
  hold(root, base, conn, lease, {id})
  return {1, id, enc, c}
end

-- The values a selector sees: message hash fields v:<name>, typed by a first letter, read
-- through `lookup(field)`; the priority is field p, the delivery count is passed.
local function values_from(lookup, count)
  local memo = {}
  return function(name)
    if name == 'JMSXDeliveryCount' then
      if count > 0 then return K.long(tostring(count)) end
      return nil
    end
    local field = 'v:' .. name
    if name == 'JMSPriority' then field = 'p' end
    local raw = memo[name]
    if raw == nil then
      raw = lookup(field) or false
      memo[name] = raw
    end
    if not raw then return nil end
    if name == 'JMSPriority' then return K.long(raw) end
    local t, rest = string.sub(raw, 1, 1), string.sub(raw, 2)
    if t == 'b' then return {'b', rest == '1'}
    elseif t == 's' then return {'s', rest}
    elseif t == 'l' then return K.long(rest)
    elseif t == 'd' then return K.dbl(rest) end
    return nil
  end
end

-- Takes the first ready message after score `after` that the compiled selector matches.
-- A message the selector cannot decide in Lua goes back to the client as {2, id, score, e}.
local function take_matching(root, base, conn, now, lease, max, dlq, source, after, drop, keys)
  recover_dead(root, base, max, dlq)
  move_due(root, base, now)
  local pred = assert(loadstring(source))
  local function values_of(m, count)
    return values_from(function(field) return redis.call('HGET', m, field) end, count)
  end
  -- One candidate: its verdict, or a reply to return.
  local function consider(id, score)
    local m = root .. ':m:' .. id
    local f = redis.call('HMGET', m, 'x', 'c')
    local exp = num(f[1])
    if not f[2] then
      redis.call('ZREM', base .. ':r', id)
      ix_del(root, base, id)
    elseif exp > 0 and exp <= now then
      redis.call('ZREM', base .. ':r', id)
      ix_del(root, base, id)
      forget(root, id)
    else
      local ok, res = pcall(pred, K, values_of(m, num(f[2])))
      if not ok then
        if res == K.UNDECIDED then
          return {2, id, score, body(root, id)}
        end
        return redis.error_reply('courier: selector failed: ' .. tostring(res))
      end
      if res == true then
        return claim(root, base, conn, lease, id, m, body(root, id))
      elseif drop then
        redis.call('ZREM', base .. ':r', id)
        ix_del(root, base, id)
        forget(root, id)
      end
    end
    return nil
  end
  if #keys > 0 then
    -- Only messages in one of the equality indexes can match: merge them in score order.
    local heads = {}
    local function advance(i, from)
      local h = redis.call('ZRANGEBYSCORE', keys[i], '(' .. from, '+inf', 'WITHSCORES',
        'LIMIT', 0, 1)
      if #h == 0 then heads[i] = false else heads[i] = {h[1], h[2]} end
    end
    for i = 1, #keys do advance(i, after) end
    while true do
      local best = nil
      for i = 1, #keys do
        if heads[i] and (best == nil or tonumber(heads[i][2]) < tonumber(heads[best][2])) then
          best = i
        end
      end
      if best == nil then return nothing(root, base) end
      local id, score = heads[best][1], heads[best][2]
      advance(best, score)
      if redis.call('ZSCORE', base .. ':r', id) then
        local reply = consider(id, score)
        if reply then return reply end
      else
        redis.call('ZREM', keys[best], id)
      end
    end
  end
  local cursor = after
  while true do
    local page = redis.call('ZRANGEBYSCORE', base .. ':r', '(' .. cursor, '+inf', 'WITHSCORES',
      'LIMIT', 0, 100)
    if #page == 0 then return nothing(root, base) end
    for k = 1, #page, 2 do
      local id, score = page[k], page[k + 1]
      cursor = score
      local reply = consider(id, score)
      if reply then return reply end
    end
  end
end

-- Acknowledges a message this connection holds: deleted (skipped when no longer held).
local function ack(root, base, conn, id)
  if redis.call('SREM', base .. ':h:' .. conn, id) == 1 then forget(root, id) end
end

-- Acknowledges {root, base, id} triples this connection holds (skipping those no longer
-- held): one membership check, removal and delete per base instead of per message.
local function ack_all(conn, acks)
  local groups, order = {}, {}
  for _, a in ipairs(acks) do
    local key = a[1] .. '\0' .. a[2]
    local g = groups[key]
    if not g then
      g = {a[1], a[2], {}}
      groups[key] = g
      order[#order + 1] = g
    end
    g[3][#g[3] + 1] = a[3]
  end
  for _, g in ipairs(order) do
    local root, held, ids = g[1], g[2] .. ':h:' .. conn, g[3]
    -- In chunks: unpack has a limit.
    for from = 1, #ids, 500 do
      local chunk = {unpack(ids, from, math.min(from + 499, #ids))}
      if #chunk == 1 then
        ack(root, g[2], conn, chunk[1])
      else
        local here = redis.call('SMISMEMBER', held, unpack(chunk))
        local gone, msgs = {}, {}
        for k = 1, #chunk do
          if here[k] == 1 then
            gone[#gone + 1] = chunk[k]
            msgs[#msgs + 1] = root .. ':m:' .. chunk[k]
            msgs[#msgs + 1] = root .. ':b:' .. chunk[k]
          end
        end
        if #gone > 0 then
          redis.call('SREM', held, unpack(gone))
          redis.call('DEL', unpack(msgs))
        end
      end
    end
  end
end

-- Takes the first ready message (or the one `want` names); with `want` empty, up to `n`
-- of them: {1, id, enc, count, id, enc, count, ...}, or nothing(). Without `bodies`, the
-- encoded messages are not read (a body read into Lua is copied and hashed): the reply is
-- {1, id, count, ...} and the ids, in order, are left in R:t for the caller's SORT.
local function take(root, base, conn, now, lease, max, dlq, want, n, bodies)
  recover_dead(root, base, max, dlq)
  move_due(root, base, now)
  local out = {1}
  local held = {}
  while #held < n do
    local ids = {}
    if want ~= '' then
      if redis.call('ZREM', base .. ':r', want) == 0 then break end
      ids[1] = want
    else
      local top = redis.call('ZPOPMIN', base .. ':r', n - #held)
      if #top == 0 then break end
      for k = 1, #top, 2 do ids[#ids + 1] = top[k] end
    end
    for _, id in ipairs(ids) do
      local m = root .. ':m:' .. id
      -- x (the expiration) is always there: none means the message is gone.
      local x = redis.call('HGET', m, 'x')
      if x then
        ix_del(root, base, id)
        local exp = num(x)
        if exp > 0 and exp <= now then
          forget(root, id)
        else
          out[#out + 1] = id
          if bodies then out[#out + 1] = body(root, id) end
          out[#out + 1] = redis.call('HINCRBY', m, 'c', 1)
          held[#held + 1] = id
        end
      end
    end
    if want ~= '' then break end
  end
  if #held == 0 then return nothing(root, base) end
  hold(root, base, conn, lease, held)
  if not bodies then
    redis.call('DEL', root .. ':t')
    for from = 1, #held, 1000 do
      redis.call('RPUSH', root .. ':t', unpack(held, from, math.min(from + 999, #held)))
    end
  end
  return out
end

local R = KEYS[1]

if op == 'commit' then
  -- now, conn, tag, strict, -, nsends, [root kind enc prio exp due nfields field*]*,
  -- nacks, [root base id]*. Strict: all or nothing when an ack's message is no longer held;
  -- otherwise the acks of messages still held are done and the others skipped. Kind 'q' a
  -- queue, 't' a topic, 'p' a queue message whose body (R:b:<id>) the same MULTI wrote
  -- before this call (enc is then its id): the script stores the rest, or deletes the body
  -- when the commit is refused.
  local now, conn, tag, strict = tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5] == '1'

  local i = 8
  local nsends = tonumber(ARGV[7])
  local sends = {}
  for k = 1, nsends do
    local nf = tonumber(ARGV[i + 6])
    local fields = {}
    for x = 1, nf do fields[x] = ARGV[i + 6 + x] end
    sends[k] = {i, fields}
    i = i + 7 + nf
  end
  local nacks = tonumber(ARGV[i])
  i = i + 1
  for k = 0, nacks - 1 do
    local j = i + k * 3
    if strict and redis.call('SISMEMBER', ARGV[j + 1] .. ':h:' .. conn, ARGV[j + 2]) == 0 then
      for s = 1, nsends do
        local js = sends[s][1]
        if ARGV[js + 1] == 'p' then redis.call('DEL', ARGV[js] .. ':b:' .. ARGV[js + 2]) end
      end
      return {0, ARGV[j + 2]}
    end
  end
  local notified = {}
  -- Consecutive sends to one queue are stored together (enqueue_all), in send order.
  local run, run_root = {}, nil
  for k = 1, nsends do
    local j, fields = sends[k][1], sends[k][2]
    local root, kind = ARGV[j], ARGV[j + 1]
    local queue = kind == 'q' or kind == 'p'
    if run_root and (not queue or root ~= run_root) then
      enqueue_all(run_root, run, now)
      run, run_root = {}, nil
    end
    if queue then
      run_root = root
      run[#run + 1] = {ARGV[j + 2], tonumber(ARGV[j + 3]), ARGV[j + 4], ARGV[j + 5], fields,
        kind == 'p'}
    else
      publish(root, kind, ARGV[j + 2], tonumber(ARGV[j + 3]), ARGV[j + 4], ARGV[j + 5], now, tag,
        fields)
    end
    notified[root] = true
  end
  if run_root then enqueue_all(run_root, run, now) end
  -- Waiting consumers are woken once per destination, after all its sends.
  for root in pairs(notified) do notify_waiting(root) end
  local acks = {}
  for k = 0, nacks - 1 do
    local j = i + k * 3
    acks[#acks + 1] = {ARGV[j], ARGV[j + 1], ARGV[j + 2]}
  end
  ack_all(conn, acks)
  return {1}
elseif op == 'take' or op == 'take_ids' then
  -- base, conn, now, lease, max, dlq, want, n, [ack base, ack id]*: first acknowledges the
  -- session's auto-acknowledged messages of this destination not acknowledged yet, then
  -- takes up to n (a consumer's prefetch). 'take_ids' leaves out the bodies (see take).
  local acks = {}
  for k = 10, #ARGV - 1, 2 do acks[#acks + 1] = {R, ARGV[k], ARGV[k + 1]} end
  ack_all(ARGV[3], acks)
  return take(R, ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8],
    tonumber(ARGV[9]), op == 'take')
elseif op == 'take_matching' then
  K = selector_runtime()
  -- base, conn, now, lease, max, dlq, source, after, drop, name, typed values...: the
  -- selector's required equality on `name` (if any) picks candidates from its indexes
  local base = ARGV[2]
  local keys = {}
  -- An index still being filled lacks older messages: the scan reads them all.
  if ARGV[11] and ARGV[11] ~= '' and redis.call('HEXISTS', base .. ':ixp', ARGV[11]) == 0 then
    for k = 12, #ARGV do keys[#keys + 1] = ix_key(base, ARGV[11], ARGV[k]) end
  end
  return take_matching(R, base, ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]),
    ARGV[7], ARGV[8], ARGV[9], ARGV[10] == '1', keys)
elseif op == 'index' then
  -- base, name, limit: indexes the ready messages by this property from now on; the messages
  -- already there are indexed `limit` at a time (a deep queue's would hold Redis for seconds
  -- in one call): 0 while some are left (call again), 1 once the index is complete
  local base, name, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
  if redis.call('SADD', base .. ':ix', name) == 1 then
    redis.call('HSET', base .. ':ixp', name, '-inf')
  end
  local from = redis.call('HGET', base .. ':ixp', name)
  if not from then return 1 end
  local ready = redis.call('ZRANGEBYSCORE', base .. ':r', '(' .. from, '+inf', 'WITHSCORES',
    'LIMIT', 0, limit)
  for k = 1, #ready, 2 do
    local raw = redis.call('HGET', R .. ':m:' .. ready[k], 'v:' .. name)
    if raw then
      local key = ix_key(base, name, raw)
      redis.call('ZADD', key, ready[k + 1], ready[k])
      redis.call('SADD', base .. ':xk', key)
    end
  end
  if #ready < 2 * limit then
    redis.call('HDEL', base .. ':ixp', name)
    return 1
  end
  redis.call('HSET', base .. ':ixp', name, ready[#ready])
  return 0
elseif op == 'evaluate' then
  K = selector_runtime()
  -- source, count, [field value]*: a compiled selector on these values, nothing stored:
  -- 1 true, 0 false, -1 unknown, 2 undecided in Lua
  local pred = assert(loadstring(ARGV[2]))
  local values = {}
  for k = 4, #ARGV, 2 do values[ARGV[k]] = ARGV[k + 1] end
  local get = values_from(function(field) return values[field] end, tonumber(ARGV[3]))
  local ok, res = pcall(pred, K, get)
  if not ok then
    if res == K.UNDECIDED then return 2 end
    return redis.error_reply('courier: selector failed: ' .. tostring(res))
  end
  if res == true then return 1 elseif res == false then return 0 end
  return -1
elseif op == 'release' then
  -- base, conn, max, dlq, undelivered, ids...: undelivered '1' gives back messages a consumer
  -- took ahead (prefetched) and never handed over: their delivery is not counted
  local base, conn, max, dlq = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
  local undelivered = ARGV[6] == '1'
  for k = 7, #ARGV do
    if redis.call('SREM', base .. ':h:' .. conn, ARGV[k]) == 1 then
      local m = R .. ':m:' .. ARGV[k]
      if undelivered and redis.call('HEXISTS', m, 'c') == 1 then
        redis.call('HINCRBY', m, 'c', -1)
      end
      requeue(R, base, ARGV[k], max, dlq)
    end
  end
  if redis.call('SCARD', base .. ':h:' .. conn) == 0 then
    redis.call('SREM', base .. ':hs', conn)
  end
  notify(R)
  return 1
elseif op == 'browse' then
  -- base, now, after (exclusive score), limit: {score, id, enc}* of ready, unexpired messages
  local base, now = ARGV[2], tonumber(ARGV[3])
  move_due(R, base, now)
  local page = redis.call('ZRANGEBYSCORE', base .. ':r', '(' .. ARGV[4], '+inf', 'WITHSCORES',
    'LIMIT', 0, tonumber(ARGV[5]))
  local out = {}
  for k = 1, #page, 2 do
    local x = redis.call('HGET', R .. ':m:' .. page[k], 'x')
    local enc = x and body(R, page[k])
    local exp = num(x)
    table.insert(out, page[k + 1])
    table.insert(out, page[k])
    if enc and not (exp > 0 and exp <= now) then
      table.insert(out, enc)
    else
      table.insert(out, '')
    end
  end
  return out
elseif op == 'prepare' then
  -- base, now, max, dlq: recovers and moves due messages; answers the next due time
  local base = ARGV[2]
  recover_dead(R, base, tonumber(ARGV[4]), ARGV[5])
  move_due(R, base, tonumber(ARGV[3]))
  return next_due(base)
elseif op == 'drop' then
  -- base, id: deletes a ready message a subscription's selector does not match
  if redis.call('ZREM', ARGV[2] .. ':r', ARGV[3]) == 1 then
    ix_del(R, ARGV[2], ARGV[3])
    forget(R, ARGV[3])
  end
  return 1
elseif op == 'subscribe' then
  -- sub, owner, nolocal, token, conn, lease, exclusive: creates the subscription if new, joins
  -- it; the topic exists from now on (R:seq)
  local sub = ARGV[2]
  if ARGV[8] == '1' and live_tokens(R, R .. ':s:' .. sub) > 0 then return 0 end
  if redis.call('HEXISTS', R .. ':subs', sub) == 0 then
    redis.call('HSET', R .. ':subs', sub, ARGV[3] .. '\t' .. ARGV[4])
  end
  redis.call('SET', R .. ':seq', 0, 'NX')
  redis.call('SET', R .. ':l:' .. ARGV[6], '1', 'PX', ARGV[7])
  redis.call('SADD', R .. ':s:' .. sub .. ':a', ARGV[5])
  return 1
elseif op == 'attach' then
  -- token, conn, lease: a consumer opens on a queue (its token in R:a, as a subscription's
  -- consumers are in B:a, so a deletion sees it); the queue exists from now on (R:seq)
  redis.call('SET', R .. ':seq', 0, 'NX')
  redis.call('SET', R .. ':l:' .. ARGV[3], '1', 'PX', ARGV[4])
  redis.call('SADD', R .. ':a', ARGV[2])
  return 1
elseif op == 'leave' then
  -- sub ('' = the queue's own consumers), token, destroy ('1' = non-durable: destroy when no
  -- live consumer is left)
  local sub = ARGV[2]
  local base = R .. ':s:' .. sub
  if sub == '' then base = R end
  redis.call('SREM', base .. ':a', ARGV[3])
  if sub ~= '' and ARGV[4] == '1' and live_tokens(R, base) == 0 then destroy_sub(R, sub) end
  return 1
elseif op == 'unsubscribe' then
  -- sub: 0 refused while a live consumer is open or a live connection holds its messages,
  -- 2 when there is no such subscription (its topic was deleted), 1 done
  local sub = ARGV[2]
  local base = R .. ':s:' .. sub
  if redis.call('HEXISTS', R .. ':subs', sub) == 0 then return 2 end
  if live_tokens(R, base) > 0 or live_holders(R, base) then return 0 end
  destroy_sub(R, sub)
  return 1
elseif op == 'subscribed' then
  -- sub: 1 when the subscription exists
  return redis.call('HEXISTS', R .. ':subs', ARGV[2])
elseif op == 'delete' then
  -- conn: deletes a plain queue or topic with everything it stores, atomically (and the
  -- lease there of conn, the deleting connection):
  -- {0} when it does not exist, {-1, why} while in use (a live consumer on the queue or on
  -- one of the topic's subscriptions, or messages a live connection holds unacknowledged),
  -- else {1, durable subscription*}: the durable subscriptions that went with it
  local subs = redis.call('HGETALL', R .. ':subs')
  local exists = #subs > 0 or redis.call('EXISTS', R .. ':seq', R .. ':r', R .. ':d', R .. ':hs',
    R .. ':a') > 0
  if not exists then return {0} end
  local bases, out = {R}, {1}
  for i = 1, #subs, 2 do
    bases[#bases + 1] = R .. ':s:' .. subs[i]
    if string.sub(subs[i + 1], 1, 1) == '\t' then out[#out + 1] = subs[i] end
  end
  for _, base in ipairs(bases) do
    if live_tokens(R, base) > 0 then return {-1, 'consumer'} end
  end
  for _, base in ipairs(bases) do
    if live_holders(R, base) then return {-1, 'held'} end
  end
  destroy_root(R, ARGV[2])
  return out
elseif op == 'abandon' then
  -- conn, max, dlq: a lost connection's holdings go back now (the queue and every
  -- subscription under this root), and its lease goes
  local conn, max, dlq = ARGV[2], tonumber(ARGV[3]), ARGV[4]
  local bases = {R}
  for _, sub in ipairs(redis.call('HKEYS', R .. ':subs')) do
    bases[#bases + 1] = R .. ':s:' .. sub
  end
  for _, base in ipairs(bases) do
    for _, id in ipairs(redis.call('SMEMBERS', base .. ':h:' .. conn)) do
      requeue(R, base, id, max, dlq)
    end
    redis.call('DEL', base .. ':h:' .. conn)
    redis.call('SREM', base .. ':hs', conn)
  end
  redis.call('DEL', R .. ':l:' .. conn)
  notify(R)
  return 1
elseif op == 'destroy' then
  -- (no arguments) deletes every key of a temporary destination whose connection is gone:
  -- its messages wherever they are, its indexes, subscriptions and owner
  destroy_root(R)
  return 1
elseif op == 'depth' then
  return redis.call('ZCARD', R .. ':r')
end
return redis.error_reply('courier: unknown operation ' .. tostring(op))
