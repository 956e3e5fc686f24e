-- Leaky bucket (as a meter): mirrors algorithms/leaky-bucket.ts. State: {level, updatedAt}.

local function lb_level_at(state, now, p)
  if state == nil then return 0 end
  -- min(): an update time in the future means the clock went back; drain nothing.
  local elapsed = now - min(state[2], now)
  return max(0, state[1] - (elapsed * p.limit) / p.window)
end

local function lb_admits(state, now, p, cost)
  return fits(lb_level_at(state, now, p) + cost, p.burst)
end

STEP.lb = function(state, now, p, cost)
  local limit, window, burst = p.limit, p.window, p.burst
  local rewound = state ~= nil and state[2] > now
  local ms_per_unit = window / limit
  local level = lb_level_at(state, now, p)
  if fits(level + cost, burst) then
    -- Clamped both ways: a refund stops at empty; the slack in fits() may go a hair over the capacity.
    local filled = min(burst, max(0, level + cost))
    local reset = ceil_ms(filled * ms_per_unit)
    return { filled, now }, true, floor_units(burst - filled), reset, 0, max(1, reset), rewound
  end
  local reset = ceil_ms(level * ms_per_unit)
  -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
  local standing = { level, now }
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    retry = exact_wait((level + cost - burst) * ms_per_unit, function(wait) return lb_admits(standing, now + wait, p, cost) end)
  end
  return standing, false, floor_units(burst - level), reset, retry, max(1, reset), rewound
end
