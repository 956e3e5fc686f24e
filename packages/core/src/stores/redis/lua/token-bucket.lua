-- Token bucket: mirrors algorithms/token-bucket.ts. State: {tokens, updatedAt}.

local function tb_tokens_at(state, now, p)
  if state == nil then return p.burst end
  -- min(): an update time in the future means the clock went back; refill nothing.
  local elapsed = now - min(state[2], now)
  return min(p.burst, state[1] + (elapsed * p.limit) / p.window)
end

local function tb_admits(state, now, p, cost)
  return fits(cost, tb_tokens_at(state, now, p))
end

STEP.tb = function(state, now, p, cost)
  local limit, window, burst = p.limit, p.window, p.burst
  local rewound = state ~= nil and state[2] > now
  local ms_per_token = window / limit
  local tokens = tb_tokens_at(state, now, p)
  if fits(cost, tokens) then
    -- Clamped both ways: the slack in fits() may take a hair below zero; a refund stops at the capacity.
    local left = min(burst, max(0, tokens - cost))
    local reset = ceil_ms((burst - left) * ms_per_token)
    return { left, now }, true, floor_units(left), reset, 0, max(1, reset), rewound
  end
  local reset = ceil_ms((burst - tokens) * ms_per_token)
  -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
  local standing = { tokens, now }
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    retry = exact_wait((cost - tokens) * ms_per_token, function(wait) return tb_admits(standing, now + wait, p, cost) end)
  end
  return standing, false, floor_units(tokens), reset, retry, max(1, reset), rewound
end
