-- The batch driver: mirrors evaluate.ts (all-or-nothing over a route's policies) and peekPolicy(),
-- for a batch of checks in one call. Checks run in order, so a later check sees an earlier one's write.
--
-- ARGV: floorTtl, nSets, then per set: n, then n x (tag, limit, windowMs, burst),
--       then nChecks, then per check: setIndex, op (a cost, or 'p' for peek), now ('' = Redis TIME).
-- KEYS: per check, one key per policy of its set, in policy order.
-- Returns per check, per policy: allowed (1/0), remaining, resetMs, retryAfterMs.

local floor_ttl = tonumber(ARGV[1])
local sets = {}
local nsets = tonumber(ARGV[2])
local a = 3
for s = 1, nsets do
  local n = tonumber(ARGV[a])
  a = a + 1
  local set = {}
  for i = 1, n do
    set[i] = { step = STEP[ARGV[a]], limit = tonumber(ARGV[a + 1]), window = tonumber(ARGV[a + 2]), burst = tonumber(ARGV[a + 3]) }
    a = a + 4
  end
  sets[s] = set
end

local server_now = nil
local out = {}
local k = 0
local checks = tonumber(ARGV[a])
a = a + 1
for _ = 1, checks do
  local set = sets[tonumber(ARGV[a])]
  local op = ARGV[a + 1]
  local now = ARGV[a + 2]
  a = a + 3
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
  local states = {}
  for i = 1, n do states[i] = read_state(KEYS[k + i], now) end
  if op == 'p' then
    -- peek: remaining and resetMs as they stand (cost 0), allowed and retryAfterMs for a cost of 1.
    for i = 1, n do
      local p = set[i]
      local _, _, remaining, reset = p.step(states[i], now, p, 0)
      local _, allowed, _, _, retry = p.step(states[i], now, p, 1)
      out[#out + 1] = allowed and 1 or 0
      out[#out + 1] = remaining
      out[#out + 1] = reset
      out[#out + 1] = retry
    end
  else
    local cost = tonumber(op)
    local steps = {}
    local all = true
    for i = 1, n do
      local p = set[i]
      steps[i] = { p.step(states[i], now, p, cost) }
      if not steps[i][2] then all = false end
    end
    for i = 1, n do
      local r = steps[i]
      if all then
        write_state(KEYS[k + i], r[1], now, r[6], floor_ttl)
      elseif r[2] then
        -- A denial consumes nothing: a policy that would have admitted reports what it has now.
        local p = set[i]
        r = { p.step(states[i], now, p, 0) }
      end
      out[#out + 1] = r[2] and 1 or 0
      out[#out + 1] = r[3]
      out[#out + 1] = r[4]
      out[#out + 1] = r[5]
    end
  end
  k = k + n
end
return out
