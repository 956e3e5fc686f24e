-- GCRA: mirrors algorithms/gcra.ts. State: {anchor, units}, with TAT = anchor + units x windowMs / limit.

-- {anchor, units} as of now: a TAT in the past restarts at now with nothing outstanding.
local function gcra_current(state, now, p)
  if state == nil then return now, 0 end
  local anchor, units = state[1], state[2]
  if anchor > now then
    -- The clock went back: restart from now, with no more outstanding than the burst.
    anchor = now
    units = min(units, p.burst)
  end
  if anchor + (units * p.window) / p.limit <= now then return now, 0 end
  return anchor, units
end

-- How far the TAT would be ahead of now after spending `cost`, in ms x limit (exact for whole numbers).
local function gcra_scaled_ahead(anchor, units, now, p, cost)
  return (units + cost) * p.window - (now - anchor) * p.limit
end

local function gcra_admits(state, now, p, cost)
  local anchor, units = gcra_current(state, now, p)
  return gcra_scaled_ahead(anchor, units, now, p, cost) <= p.burst * p.window
end

STEP.gcra = function(state, now, p, cost)
  local limit, window, burst = p.limit, p.window, p.burst
  local tolerance = burst * window
  local rewound = state ~= nil and state[1] > now
  local anchor, units = gcra_current(state, now, p)
  local after = gcra_scaled_ahead(anchor, units, now, p, cost)
  if after <= tolerance then
    -- A refund that takes the TAT back past now leaves nothing outstanding.
    local kept = max(0, after)
    local reset = ceil_ms(kept / limit)
    local state_after
    if kept > 0 then state_after = { anchor, units + cost } else state_after = { now, 0 } end
    return state_after, true, floor_units((tolerance - kept) / window), reset, 0, max(1, reset), rewound
  end
  local outstanding = gcra_scaled_ahead(anchor, units, now, p, 0)
  local reset = ceil_ms(outstanding / limit)
  -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
  local standing = { anchor, units }
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    retry = exact_wait((after - tolerance) / limit, function(wait) return gcra_admits(standing, now + wait, p, cost) end)
  end
  return standing, false, floor_units((tolerance - outstanding) / window), reset, retry, max(1, reset), rewound
end
