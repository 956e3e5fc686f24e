-- Sliding window (weighted counter): mirrors algorithms/sliding-window.ts.
-- State: {windowStart, previousCount, currentCount}.

local function sw_current(state, now, window)
  local start = floor(now / window) * window
  if state == nil then return start, 0, 0 end
  if state[1] == start then return start, state[2], state[3] end
  if state[1] == start - window then return start, state[3], 0 end
  -- A window in the future means the clock went back: keep the counts, relabelled to this window.
  if state[1] > start then return start, state[2], state[3] end
  return start, 0, 0
end

local function sw_estimate(now, window, start, previous, count)
  return (previous * (window - (now - start))) / window + count
end

local function sw_admits(state, now, p, cost)
  local start, previous, count = sw_current(state, now, p.window)
  return sw_estimate(now, p.window, start, previous, count) + cost <= p.limit
end

local function sw_until_empty(now, window, start, previous, count)
  if count > 0 then return ceil_ms(start + 2 * window - now) end
  if previous > 0 then return ceil_ms(start + window - now) end
  return 0
end

STEP.sw = function(state, now, p, cost)
  local limit, window = p.limit, p.window
  -- sw_current() and sw_estimate(), inline: this runs once per check, and a Lua call costs about as
  -- much as the arithmetic. The same operations in the same order.
  local start = floor(now / window) * window
  local previous, count = 0, 0
  local rewound = false
  if state ~= nil then
    local at = state[1]
    if at == start then
      previous, count = state[2], state[3]
    elseif at == start - window then
      previous = state[3]
    elseif at > start then
      previous, count = state[2], state[3]
      rewound = true
    end
  end
  local used = (previous * (window - (now - start))) / window + count
  if used + cost <= limit then
    -- A negative cost is a refund: it comes off this window's count, never below zero.
    local counted = count + cost
    if not (counted > 0) then counted = 0 end -- max(0, …)
    -- sw_until_empty(), ceil_ms() and floor_units(), inline.
    local reset = 0
    if counted > 0 then
      reset = start + 2 * window - now
    elseif previous > 0 then
      reset = start + window - now
    end
    if reset > 0 then
      reset = ceil(reset - 1e-9)
      if not (reset > 0) then reset = 0 end
    else
      reset = 0
    end
    local units = limit - used - (counted - count)
    if units > 0 then units = floor(units + 1e-9) else units = 0 end
    return { start, previous, counted }, true, units, reset, 0, reset > 1 and reset or 1, rewound
  end
  local reset = sw_until_empty(now, window, start, previous, count)
  local guess
  if count + cost <= limit then
    guess = start + window * (1 - (limit - count - cost) / previous) - now
  else
    guess = start + window + window * (1 - (limit - cost) / count) - now
  end
  -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
  local standing = { start, previous, count }
  local retry
  if cost > limit then
    retry = max(1, reset)
  else
    retry = exact_wait(guess, function(wait) return sw_admits(standing, now + wait, p, cost) end)
  end
  return standing, false, floor_units(limit - used), reset, retry, max(1, reset), rewound
end
