-- Leaky bucket (as a meter): mirrors algorithms/leaky-bucket.ts. State: level, updatedAt (as values,
-- see VSTEP).

local function lb_level_at(level, updated_at, now, p)
  if level == nil then return 0 end
  -- min(): an update time in the future means the clock went back; drain nothing.
  local elapsed = now - min(updated_at, now)
  return max(0, level - (elapsed * p.limit) / p.window)
end

local function lb_admits(level, updated_at, now, p, cost)
  return fits(lb_level_at(level, updated_at, now, p) + cost, p.burst)
end

VSTEP.lb = function(now, p, cost, s1, s2)
  local limit, window, burst = p.limit, p.window, p.burst
  local rewound = s1 ~= nil and s2 > now
  local ms_per_unit = window / limit
  local level = lb_level_at(s1, s2, now, p)
  if fits(level + cost, burst) then
    -- Clamped both ways: a refund stops at empty; the slack in fits() may go a hair over the capacity.
    local filled = min(burst, max(0, level + cost))
    local reset = ceil_ms(filled * ms_per_unit)
    return true, floor_units(burst - filled), reset, 0, max(1, reset), rewound, filled, now
  end
  local reset = ceil_ms(level * ms_per_unit)
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
    retry = exact_wait((level + cost - burst) * ms_per_unit, function(wait) return lb_admits(level, now, now + wait, p, cost) end)
  end
  return false, floor_units(burst - level), reset, retry, max(1, reset), rewound, level, now
end
STEP.lb = tabled(VSTEP.lb)
