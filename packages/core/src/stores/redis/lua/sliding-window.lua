-- Sliding window (weighted counter): mirrors algorithms/sliding-window.ts.
-- State: windowStart, previousCount, currentCount (as values, see VSTEP).

local function sw_current(s1, s2, s3, now, window)
  local start = floor(now / window) * window
  if s1 == nil then return start, 0, 0 end
  if s1 == start then return start, s2, s3 end
  if s1 == start - window then return start, s3, 0 end
  -- A window in the future means the clock went back: keep the counts, relabelled to this window.
  if s1 > start then return start, s2, s3 end
  return start, 0, 0
end

local function sw_estimate(now, window, start, previous, count)
  return (previous * (window - (now - start))) / window + count
end

local function sw_admits(s1, s2, s3, now, p, cost)
  local start, previous, count = sw_current(s1, s2, s3, now, p.window)
  return sw_estimate(now, p.window, start, previous, count) + cost <= p.limit
end

local function sw_until_empty(now, window, start, previous, count)
  if count > 0 then return ceil_ms(start + 2 * window - now) end
  if previous > 0 then return ceil_ms(start + window - now) end
  return 0
end

VSTEP.sw = function(now, p, cost, s1, s2, s3)
  local limit, window = p.limit, p.window
  -- sw_current() and sw_estimate(), inline: this runs once per check, and a Lua call costs about as
  -- much as the arithmetic. The same operations in the same order.
  local start = floor(now / window) * window
  local previous, count = 0, 0
  local rewound = false
  if s1 ~= nil then
    if s1 == start then
      previous, count = s2, s3
    elseif s1 == start - window then
      previous = s3
    elseif s1 > start then
      previous, count = s2, s3
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
    return true, units, reset, 0, reset > 1 and reset or 1, rewound, start, previous, counted
  end
  local reset = sw_until_empty(now, window, start, previous, count)
  local guess
  if count + cost <= limit then
    guess = start + window * (1 - (limit - count - cost) / previous) - now
  else
    guess = start + window + window * (1 - (limit - cost) / count) - now
  end
  local retry
  if cost > limit then
    retry = max(1, reset)
  else
    -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
    retry = exact_wait(guess, function(wait) return sw_admits(start, previous, count, now + wait, p, cost) end)
  end
  return false, floor_units(limit - used), reset, retry, max(1, reset), rewound, start, previous, count
end
STEP.sw = tabled(VSTEP.sw)
