-- Shared prelude of the floodgate script: the helpers of algorithms/shared.ts, line for line (the
-- state codec and key access are in state.lua). Every number goes through the same IEEE doubles as in JavaScript, in the same
-- order of operations, so Lua and TypeScript reach the same decisions.

-- Algorithm steps by tag ('fw', 'sw', ...); each algorithm file registers its own when its loader
-- (LOAD[tag], see lua.ts) runs.
local STEP = {}
local LOAD = {}

-- Locals, not globals: a global is two table lookups per use, and these run several times per check.
-- Bound by bind_libs() at the start of a call, not here: as a Redis Function this prelude runs once,
-- when the library is loaded, where `math` and `struct` cannot be reached yet.
local floor, ceil, max, min
local pack, unpack_struct, spread, format
local bound = false

local function bind_libs()
  floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
  pack, unpack_struct, spread, format = struct.pack, struct.unpack, unpack, string.format
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
