-- Fixed window: mirrors algorithms/fixed-window.ts. State: {windowStart, count}.

local function fw_current(state, now, window)
  -- A start in the future means the clock went back: restart the window at now.
  if state == nil or now >= state[1] + window then return now, 0 end
  return min(state[1], now), state[2]
end

local function fw_admits(state, now, p, cost)
  local _, count = fw_current(state, now, p.window)
  return count + cost <= p.limit
end

-- Returns state, allowed, remaining, resetMs, retryAfterMs, ttlMs (like StepResult).
-- rewound: the stored state lay in the future (the clock went back); the store then writes the
-- state as it stands now even on a denial (nothing consumed), as the TypeScript steps say.
STEP.fw = function(state, now, p, cost)
  local rewound = state ~= nil and state[1] > now
  local limit, window = p.limit, p.window
  local start, count = fw_current(state, now, window)
  local until_end = start + window - now
  if count + cost <= limit then
    local used = max(0, count + cost)
    local reset = 0
    if used > 0 then reset = ceil_ms(until_end) end
    return { start, used }, true, limit - used, reset, 0, max(1, ceil_ms(until_end)), rewound
  end
  local reset = ceil_ms(until_end)
  -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
  local standing = { start, count }
  local retry
  if cost > limit then
    retry = max(1, reset)
  else
    retry = exact_wait(until_end, function(wait) return fw_admits(standing, now + wait, p, cost) end)
  end
  return standing, false, limit - count, reset, retry, max(1, reset), rewound
end
