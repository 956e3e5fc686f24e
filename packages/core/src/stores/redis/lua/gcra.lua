-- GCRA: mirrors algorithms/gcra.ts. State: {tat} (theoretical arrival time).

local function gcra_tat_at(state, now, p)
  if state == nil then return now end
  -- A TAT further ahead than the whole burst means the clock went back: cap it.
  local horizon = now + (p.burst * p.window) / p.limit
  return math.max(now, math.min(state[1], horizon))
end

local function gcra_admits(state, now, p, cost)
  local interval = p.window / p.limit
  return gcra_tat_at(state, now, p) + cost * interval - now <= p.burst * interval
end

STEP.gcra = function(state, now, p, cost)
  local limit, window, burst = p.limit, p.window, p.burst
  local interval = window / limit
  local tolerance = burst * interval
  local tat = gcra_tat_at(state, now, p)
  local next = math.max(now, tat + cost * interval) -- a negative cost refunds, back to now at most
  if next - now <= tolerance then
    local reset = ceil_ms(next - now)
    return { next }, true, floor_units(burst - (next - now) / interval), reset, 0, math.max(1, reset)
  end
  local reset = ceil_ms(tat - now)
  local retry
  if cost > burst then
    retry = math.max(1, reset)
  else
    retry = exact_wait(next - tolerance - now, function(wait) return gcra_admits(state, now + wait, p, cost) end)
  end
  return { tat }, false, floor_units(burst - (tat - now) / interval), reset, retry, math.max(1, reset)
end
