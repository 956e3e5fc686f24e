-- GCRA: mirrors algorithms/gcra.ts. State: anchor, units (as values, see VSTEP), with
-- TAT = anchor + units x windowMs / limit.

-- anchor, units as of now: a TAT in the past restarts at now with nothing outstanding.
local function gcra_current(anchor, units, now, p)
  if anchor == nil then return now, 0 end
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

local function gcra_admits(anchor, units, now, p, cost)
  anchor, units = gcra_current(anchor, units, now, p)
  return gcra_scaled_ahead(anchor, units, now, p, cost) <= p.burst * p.window
end

VSTEP.gcra = function(now, p, cost, s1, s2)
  local limit, window, burst = p.limit, p.window, p.burst
  local tolerance = burst * window
  local rewound = s1 ~= nil and s1 > now
  local anchor, units = gcra_current(s1, s2, now, p)
  local after = gcra_scaled_ahead(anchor, units, now, p, cost)
  if after <= tolerance then
    -- A refund that takes the TAT back past now leaves nothing outstanding.
    local kept = max(0, after)
    local reset = ceil_ms(kept / limit)
    local remaining = floor_units((tolerance - kept) / window)
    if kept > 0 then return true, remaining, reset, 0, max(1, reset), rewound, anchor, units + cost end
    return true, remaining, reset, 0, max(1, reset), rewound, now, 0
  end
  local outstanding = gcra_scaled_ahead(anchor, units, now, p, 0)
  local reset = ceil_ms(outstanding / limit)
  local retry
  if cost > burst then
    retry = max(1, reset)
  else
    -- Waits are measured from the state as it stands now, which is what the store keeps after this denial.
    retry = exact_wait((after - tolerance) / limit, function(wait) return gcra_admits(anchor, units, now + wait, p, cost) end)
  end
  return false, floor_units((tolerance - outstanding) / window), reset, retry, max(1, reset), rewound, anchor, units
end
STEP.gcra = tabled(VSTEP.gcra)
