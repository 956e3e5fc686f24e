-- The batch driver: mirrors evaluate.ts (all-or-nothing over a route's policies) and peekPolicy(),
-- for a batch of checks in one call. Checks run in order, so a later check sees an earlier one's write.
--
-- ARGV: the header "floorTtl|set|set…", a set being its policies "tag,limit,windowMs,burst" joined
--       by ';'; then per run of consecutive checks alike: "count,setIndex,op" (op: a cost, or 'p'
--       for peek) and now ('' = Redis TIME); last, when a key appears more than once, the
--       repeated positions "position:first,…". A lone check is three arguments.
-- KEYS: per check, one key per policy of its set, in policy order.
-- Returns per check, per policy: remaining, resetMs, retryAfterMs. Whether it was admitted is not
-- sent: it is retryAfterMs = 0, as every denial waits at least 1 ms (a number less to convert costs
-- Redis ~0.1 µs per check).

-- Per-call values the helpers below share. As a Redis Function this file's functions are made once,
-- when the library loads, so they read these instead of closing over a call's locals.
local floor_ttl
local out
local replies = {} -- the reply table, reused
local o -- entries in out (a counter: #out is a search per append)
local lone_keys -- no key appears twice in this call: a key is read and written once (see consume_one)

local function report(remaining, reset, retry)
  out[o + 1] = remaining
  out[o + 2] = reset
  out[o + 3] = retry
  o = o + 3
end

-- peek: remaining and resetMs as they stand (cost 0), retryAfterMs for a cost of 1.
local function peek(set, k, now)
  for i = 1, #set do
    local p = set[i]
    local state = read_state(k + i, now)
    local _, _, remaining, reset = p.step(state, now, p, 0)
    local _, _, _, _, retry = p.step(state, now, p, 1)
    report(remaining, reset, retry)
  end
end

-- One policy (the usual route): consume() below without its tables. "All admit" is this policy
-- admitting, and a denial has nothing to report again. An algorithm written with values (VSTEP) on a
-- key that appears once in the call goes with no table at all, and its usual case (a live state of
-- two or three numbers kept with Redis time, overwritten in place) has read_values() and put()
-- inline: the two calls cost Redis ~0.9 µs of a check's ~7.5 in a batch.
local function consume_one(p, i, now, cost)
  local allowed, remaining, reset, retry, ttl, rewound
  local vstep = p.vstep
  local read, s1, s2, s3 = false, nil, nil, nil
  if vstep ~= nil and lone_keys then
    local value = raw[i]
    if value then
      local length = #value
      local format, offset, expires_at
      if length == 35 then
        format, offset, expires_at, s1, s2, s3 = unpack_struct('<Bhdddd', value)
      elseif length == 27 then
        format, offset, expires_at, s1, s2 = unpack_struct('<Bhddd', value)
      end
      read = format == REDIS_TIME and expires_at > now
      if read then
        kept[i] = ceil(expires_at) + offset
        size[i] = length
      end
    end
    if not read then read, s1, s2, s3 = read_values(i, now) end
  end
  -- A denial writes only a state the clock went back past, re-dated to now (nothing consumed).
  if read then
    local a, b, c
    allowed, remaining, reset, retry, ttl, rewound, a, b, c = vstep(now, p, cost, s1, s2, s3)
    if allowed or rewound then
      local expires_at = now + ttl
      local keep = kept[i]
      if floor_ttl == 0 and keep ~= nil and keep + 1 > expires_at and size[i] == (c == nil and 27 or 35) then
        local offset = keep - ceil(expires_at)
        if offset > MAX_OFFSET then offset = MAX_OFFSET end
        local value
        if c == nil then
          value = pack('<Bhddd', REDIS_TIME, offset, expires_at, a, b)
        else
          value = pack('<Bhdddd', REDIS_TIME, offset, expires_at, a, b, c)
        end
        redis_call('SETRANGE', call_keys[i], '0', value)
      else
        put(i, now, ttl, floor_ttl, nil, a, b, c)
      end
    end
  else
    local state
    state, allowed, remaining, reset, retry, ttl, rewound = p.step(read_state(i, now), now, p, cost)
    if allowed or rewound then write_state(i, state, now, ttl, floor_ttl) end
  end
  -- report(), inline: this runs once per check.
  out[o + 1] = remaining
  out[o + 2] = reset
  out[o + 3] = retry
  o = o + 3
end

local function consume(set, k, now, cost)
  local n = #set
  local states = {}
  local steps = {}
  local all = true
  for i = 1, n do
    local p = set[i]
    states[i] = read_state(k + i, now)
    steps[i] = { p.step(states[i], now, p, cost) }
    if not steps[i][2] then all = false end
  end
  for i = 1, n do
    local r = steps[i]
    if all then
      write_state(k + i, r[1], now, r[6], floor_ttl)
    elseif r[2] then
      -- A denial consumes nothing: a policy that would have admitted reports what it has now.
      local p = set[i]
      r = { p.step(states[i], now, p, 0) }
    end
    -- A denial writes only states the clock went back past, re-dated to now (nothing consumed).
    if not all and r[7] then write_state(k + i, r[1], now, r[6], floor_ttl) end
    report(r[3], r[4], r[5])
  end
end

-- What the call arguments mean, parsed once per distinct text: as a Redis Function these tables
-- outlive a call, so a route's policies and the usual runs ("1,1,1") are parsed on their first call
-- only (tonumber() is strtod, which costs Redis more than a check's arithmetic). A parse depends on
-- the text alone, so a cached one is exactly what parsing again would give. Each cache is emptied
-- when it reaches CACHE_MAX entries, so odd arguments cannot make it grow without bound.
local CACHE_MAX = 256
local headers, nheaders = {}, 0
local runs_parsed, nruns = {}, 0

-- "floorTtl|set|set…", a set being "tag,limit,windowMs,burst[;tag,…]" -> { floor_ttl, sets }.
local function parse_header(text)
  local parts = {}
  for part in string.gmatch(text, '[^|]+') do parts[#parts + 1] = part end
  local sets = {}
  for s = 2, #parts do
    local set = {}
    for tag, limit, window, burst in string.gmatch(parts[s], '([^,;]+),([^,;]+),([^,;]+),([^,;]+)') do
      if STEP[tag] == nil then LOAD[tag]() end
      set[#set + 1] = { step = STEP[tag], vstep = VSTEP[tag], limit = to_number(limit), window = to_number(window), burst = to_number(burst) }
    end
    sets[s - 1] = set
  end
  return { floor_ttl = to_number(parts[1]), sets = sets }
end

-- "count,setIndex,op" -> { count, setIndex, cost (nil for a peek) }.
local function parse_run(text)
  local count, set, op = string.match(text, '^([^,]+),([^,]+),([^,]+)$')
  return { to_number(count), to_number(set), op ~= 'p' and to_number(op) or nil }
end

-- Redis TIME in ms. The seconds change once a second: their text is converted only then.
local second_text, second_ms
local function redis_now()
  local t = redis_call('TIME')
  local s = t[1]
  if s ~= second_text then
    second_ms = to_number(s) * 1000
    second_text = s
  end
  return second_ms + to_number(t[2]) / 1000
end

-- One call: KEYS and ARGV as above. Returns the flat reply.
local function check(KEYS, ARGV)
  if not bound then bind_libs() end
  local header = headers[ARGV[1]]
  if header == nil then
    if nheaders >= CACHE_MAX then headers, nheaders = {}, 0 end
    header = parse_header(ARGV[1])
    headers[ARGV[1]] = header
    nheaders = nheaders + 1
  end
  floor_ttl = header.floor_ttl
  local sets = header.sets
  -- The reply table is kept from call to call (as a Redis Function; made anew for EVALSHA): growing
  -- a new one to a batch's size took a reallocation at every power of two. What an earlier call
  -- left past this call's end is cleared before returning, below.
  out = replies
  o = 0

  -- Runs come in pairs after the header; one more argument at the end lists repeated keys.
  local last = #ARGV
  local dups = nil
  if last % 2 == 0 then
    dups = ARGV[last]
    last = last - 1
  end
  load_keys(KEYS, dups)
  lone_keys = dups == nil
  local server_now = nil
  local k = 0 -- keys used so far
  for a = 2, last, 2 do
    local text = ARGV[a]
    local run = runs_parsed[text]
    if run == nil then
      if nruns >= CACHE_MAX then runs_parsed, nruns = {}, 0 end
      run = parse_run(text)
      runs_parsed[text] = run
      nruns = nruns + 1
    end
    local count, set, cost = run[1], sets[run[2]], run[3]
    local now = ARGV[a + 1]
    if now == '' then
      if server_now == nil then server_now = redis_now() end
      now = server_now
    else
      now = to_number(now)
    end
    local n = #set
    if cost == nil then
      for _ = 1, count do
        peek(set, k, now)
        k = k + n
      end
    elseif n == 1 then
      local p = set[1]
      for i = 1, count do consume_one(p, k + i, now, cost) end
      k = k + count
    else
      for _ = 1, count do
        consume(set, k, now, cost)
        k = k + n
      end
    end
  end
  -- #out, not a count kept from the last call: a call that failed half way left its entries too.
  -- The entries are always 1..n without holes, so #out is their end.
  for j = o + 1, #out do out[j] = nil end
  return out
end
