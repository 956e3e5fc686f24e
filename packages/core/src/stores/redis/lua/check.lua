-- The batch driver: mirrors evaluate.ts (all-or-nothing over a route's policies) and peekPolicy(),
-- for a batch of checks in one call. Checks run in order, so a later check sees an earlier one's write.
--
-- ARGV: floorTtl, nSets, then per set: n, then n x (tag, limit, windowMs, burst),
--       then nRuns, then per run of consecutive checks alike: count, setIndex,
--       op (a cost, or 'p' for peek), now ('' = Redis TIME).
-- KEYS: per check, one key per policy of its set, in policy order.
-- Returns per check, per policy: allowed (1/0), remaining, resetMs, retryAfterMs.

-- Per-call values the helpers below share. As a Redis Function this file's functions are made once,
-- when the library loads, so they read these instead of closing over a call's locals.
local floor_ttl
local out
local o -- entries in out (a counter: #out is a search per append)

local function report(allowed, remaining, reset, retry)
  out[o + 1] = allowed and 1 or 0
  out[o + 2] = remaining
  out[o + 3] = reset
  out[o + 4] = retry
  o = o + 4
end

-- peek: remaining and resetMs as they stand (cost 0), allowed and retryAfterMs for a cost of 1.
local function peek(set, k, now)
  for i = 1, #set do
    local p = set[i]
    local state = read_state(k + i, now)
    local _, _, remaining, reset = p.step(state, now, p, 0)
    local _, allowed, _, _, retry = p.step(state, now, p, 1)
    report(allowed, remaining, reset, retry)
  end
end

-- One policy (the usual route): consume() below without its tables. "All admit" is this policy
-- admitting, and a denial has nothing to report again.
local function consume_one(p, i, now, cost)
  local state, allowed, remaining, reset, retry, ttl, rewound = p.step(read_state(i, now), now, p, cost)
  -- A denial writes only a state the clock went back past, re-dated to now (nothing consumed).
  if allowed or rewound then write_state(i, state, now, ttl, floor_ttl) end
  report(allowed, remaining, reset, retry)
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
    report(r[2], r[3], r[4], r[5])
  end
end

-- One call: KEYS and ARGV as above. Returns the flat reply.
local function check(KEYS, ARGV)
  if not bound then bind_libs() end
  floor_ttl = tonumber(ARGV[1])
  out = {}
  o = 0
  local sets = {}
  local nsets = tonumber(ARGV[2])
  local a = 3
  for s = 1, nsets do
    local n = tonumber(ARGV[a])
    a = a + 1
    local set = {}
    for i = 1, n do
      local tag = ARGV[a]
      if STEP[tag] == nil then LOAD[tag]() end
      set[i] = { step = STEP[tag], limit = tonumber(ARGV[a + 1]), window = tonumber(ARGV[a + 2]), burst = tonumber(ARGV[a + 3]) }
      a = a + 4
    end
    sets[s] = set
  end

  load_keys(KEYS)
  local server_now = nil
  local k = 0 -- keys used so far
  local runs = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, runs do
    local count, set, op, now = tonumber(ARGV[a]), sets[tonumber(ARGV[a + 1])], ARGV[a + 2], ARGV[a + 3]
    a = a + 4
    if now == '' then
      if server_now == nil then
        local t = redis.call('TIME')
        server_now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
      end
      now = server_now
    else
      now = tonumber(now)
    end
    local n = #set
    if op == 'p' then
      for _ = 1, count do
        peek(set, k, now)
        k = k + n
      end
    elseif n == 1 then
      local cost, p = tonumber(op), set[1]
      for i = 1, count do consume_one(p, k + i, now, cost) end
      k = k + count
    else
      local cost = tonumber(op)
      for _ = 1, count do
        consume(set, k, now, cost)
        k = k + n
      end
    end
  end
  return out
end
