-- Shared prelude of the floodgate script: the helpers of algorithms/shared.ts, line for line (the
-- state codec and key access are in state.lua). Every number goes through the same IEEE doubles as in JavaScript, in the same
-- order of operations, so Lua and TypeScript reach the same decisions.

-- Algorithm steps by tag ('fw', 'sw', ...); each algorithm file registers its own when its loader
-- (LOAD[tag], see lua.ts) runs. STEP[tag](state, now, p, cost) takes the state as a table (nil: none)
-- and returns the new state, allowed, remaining, resetMs, retryAfterMs, ttlMs, rewound.
-- The algorithms whose state is at most three numbers (all but the sliding log) are written as
-- VSTEP[tag](now, p, cost, s1, s2, s3): the state's numbers as values (s1 nil: none), returning
-- allowed, remaining, resetMs, retryAfterMs, ttlMs, rewound, then the new state's numbers. A
-- one-policy check then reads, steps and writes its key with no Lua table made: tables (the decoded
-- state, the new state) cost Redis a third of a check. Their STEP is made from it by tabled().
local STEP = {}
local VSTEP = {}
local LOAD = {}

-- Locals, not globals: a global is two table lookups per use, and these run several times per check.
-- Bound by bind_libs() at the start of a call, not here: as a Redis Function this prelude runs once,
-- when the library is loaded, where `math` and `struct` cannot be reached yet.
local floor, ceil, max, min
local pack, unpack_struct, spread, format
local redis_call, to_number
local bound = false

local function bind_libs()
  floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
  pack, unpack_struct, spread, format = struct.pack, struct.unpack, unpack, string.format
  -- Measured: a lone check's two tonumber() calls cost Redis ~0.6 µs less through a local.
  redis_call, to_number = redis.call, tonumber
  bound = true
end

-- Whole milliseconds, rounded up, never negative: used for resetMs.
local function ceil_ms(ms)
  -- max(): ceil(-1e-10) is -0, which is not the 0 callers compare with.
  if ms > 0 then return max(0, ceil(ms - 1e-9)) end
  return 0
end

-- Whole units left, rounded down, never negative.
local function floor_units(units)
  if units > 0 then return floor(units + 1e-9) end
  return 0
end

-- The exact wait in whole ms before admits_after(wait) holds, starting from an analytic guess.
local function exact_wait(guess, admits_after)
  local wait = max(1, ceil(guess))
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

-- STEP from VSTEP: the same step, with the state as a table.
local function tabled(vstep)
  return function(state, now, p, cost)
    local allowed, remaining, reset, retry, ttl, rewound, a, b, c
    if state == nil then
      allowed, remaining, reset, retry, ttl, rewound, a, b, c = vstep(now, p, cost)
    else
      allowed, remaining, reset, retry, ttl, rewound, a, b, c = vstep(now, p, cost, state[1], state[2], state[3])
    end
    return { a, b, c }, allowed, remaining, reset, retry, ttl, rewound
  end
end
