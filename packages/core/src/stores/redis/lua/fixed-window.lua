-- Fixed window: mirrors algorithms/fixed-window.ts. State: windowStart, count (as values, see VSTEP).

-- The window as of now. A start in the future means the clock went back: restart the window at now.
local function fw_current(start, count, now, window)
  if start == nil or now >= start + window then return now, 0 end
  return min(start, now), count
end

local function fw_admits(start, count, now, p, cost)
  local _, counted = fw_current(start, count, now, p.window)
  return counted + cost <= p.limit
end

-- Returns allowed, remaining, resetMs, retryAfterMs, ttlMs (like StepResult), rewound, then the new
-- state. rewound: the stored state lay in the future (the clock went back); the store then writes the
-- state as it stands now even on a denial (nothing consumed), as the TypeScript steps say.
VSTEP.fw = function(now, p, cost, s1, s2)
  local rewound = s1 ~= nil and s1 > now
  local limit, window = p.limit, p.window
  local start, count = fw_current(s1, s2, now, window)
  local until_end = start + window - now
  if count + cost <= limit then
    local used = max(0, count + cost)
    local reset = 0
    if used > 0 then reset = ceil_ms(until_end) end
    return true, limit - used, reset, 0, max(1, ceil_ms(until_end)), rewound, start, used
  end
  local reset = ceil_ms(until_end)
  local retry
  if cost > limit then
    retry = max(1, reset)
  else
    -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
    retry = exact_wait(until_end, function(wait) return fw_admits(start, count, now + wait, p, cost) end)
  end
  return false, limit - count, reset, retry, max(1, reset), rewound, start, count
end
STEP.fw = tabled(VSTEP.fw)
