-- Shared prelude of the floodgate script: the helpers of algorithms/shared.ts, line for line, plus
-- the state codec. Every number goes through the same IEEE doubles as in JavaScript, in the same
-- order of operations, so Lua and TypeScript reach the same decisions.

-- Algorithm steps by tag ('fw', 'sw', ...); each algorithm file registers its own.
local STEP = {}

-- Whole milliseconds, rounded up, never negative: used for resetMs.
local function ceil_ms(ms)
  if ms > 0 then return math.ceil(ms - 1e-9) end
  return 0
end

-- Whole units left, rounded down, never negative.
local function floor_units(units)
  if units > 0 then return math.floor(units + 1e-9) end
  return 0
end

-- The exact wait in whole ms before admits_after(wait) holds, starting from an analytic guess.
local function exact_wait(guess, admits_after)
  local wait = math.max(1, math.ceil(guess))
  local i = 0
  while i < 4 and not admits_after(wait) do
    wait = wait + 1
    i = i + 1
  end
  i = 0
  while i < 4 and wait > 1 and admits_after(wait - 1) do
    wait = wait - 1
    i = i + 1
  end
  return wait
end

-- Whether `amount` fits in `capacity`, forgiving float noise of a billionth of the capacity.
local function fits(amount, capacity)
  local scale = 1
  if capacity > 1 then scale = capacity end
  return amount - capacity <= 1e-9 * scale
end

-- A stored value is "expiresAt n1 n2 ...": the store clock's expiry time, then the algorithm state.
-- %.17g round-trips a double exactly (tostring would keep only 14 digits).
local function encode(expires_at, state)
  local parts = { string.format('%.17g', expires_at) }
  for i = 1, #state do parts[i + 1] = string.format('%.17g', state[i]) end
  return table.concat(parts, ' ')
end

-- The live state of `key` as of `now`, or nil for a key never seen or expired by the store clock.
local function read_state(key, now)
  local value = redis.call('GET', key)
  if not value then return nil end
  local state = {}
  local expires_at = nil
  for word in string.gmatch(value, '%S+') do
    if expires_at == nil then expires_at = tonumber(word) else state[#state + 1] = tonumber(word) end
  end
  if expires_at == nil or expires_at <= now then
    -- Gone by the store clock: forget it now (as the memory store does), so a clock that later goes
    -- back cannot bring it back.
    redis.call('DEL', key)
    return nil
  end
  return state
end

-- Write the state with its TTL in the same command: no window where a key could live forever.
-- `floor_ttl` keeps keys alive in real time when the caller drives its own (test) clock.
local function write_state(key, state, now, ttl, floor_ttl)
  redis.call('SET', key, encode(now + ttl, state), 'PX', string.format('%d', math.max(ttl, floor_ttl)))
end
