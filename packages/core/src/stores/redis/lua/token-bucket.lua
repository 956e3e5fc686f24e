-- Token bucket: mirrors algorithms/token-bucket.ts. State: tokens, updatedAt (as values, see VSTEP).

local function tb_tokens_at(tokens, updated_at, now, p)
  if tokens == nil then return p.burst end
  -- min(): an update time in the future means the clock went back; refill nothing.
  local elapsed = now - min(updated_at, now)
  return min(p.burst, tokens + (elapsed * p.limit) / p.window)
end

local function tb_admits(tokens, updated_at, now, p, cost)
  return fits(cost, tb_tokens_at(tokens, updated_at, now, p))
end

VSTEP.tb = function(now, p, cost, s1, s2)
  local limit, window, burst = p.limit, p.window, p.burst
  local rewound = s1 ~= nil and s2 > now
  local ms_per_token = window / limit
  local tokens = tb_tokens_at(s1, s2, now, p)
  if fits(cost, tokens) then
    -- Clamped both ways: the slack in fits() may take a hair below zero; a refund stops at the capacity.
    local left = min(burst, max(0, tokens - cost))
    local reset = ceil_ms((burst - left) * ms_per_token)
    return true, floor_units(left), reset, 0, max(1, reset), rewound, left, now
  end
  local reset = ceil_ms((burst - tokens) * ms_per_token)
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
    retry = exact_wait((cost - tokens) * ms_per_token, function(wait) return tb_admits(tokens, now, now + wait, p, cost) end)
  end
  return false, floor_units(tokens), reset, retry, max(1, reset), rewound, tokens, now
end
STEP.tb = tabled(VSTEP.tb)
