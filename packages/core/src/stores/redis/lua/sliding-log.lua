-- Sliding log (exact): mirrors algorithms/sliding-log.ts. State: {t1, cost1, t2, cost2, ...}, oldest
-- first; at most `limit` entries, so this is the one step that is O(limit) rather than O(1).

-- The live entries as of now: expired ones dropped, future ones (clock went back) pulled to now.
local function sl_live(state, now, window)
  local entries = {}
  if state == nil then return entries end
  local i = 1
  while i + 1 <= #state do
    local t = state[i]
    if not (t + window <= now) then
      entries[#entries + 1] = min(t, now)
      entries[#entries + 1] = state[i + 1]
    end
    i = i + 2
  end
  return entries
end

local function sl_total(entries)
  local sum = 0
  for i = 2, #entries, 2 do sum = sum + entries[i] end
  return sum
end

-- A refund takes units back from the newest entries first.
local function sl_refund_newest(entries, units)
  while units > 0 and #entries > 0 do
    local last = #entries
    local taken = min(units, entries[last])
    entries[last] = entries[last] - taken
    units = units - taken
    if entries[last] == 0 then
      entries[last] = nil
      entries[last - 1] = nil
    end
  end
end

local function sl_admits(state, now, p, cost)
  return sl_total(sl_live(state, now, p.window)) + cost <= p.limit
end

local function sl_until_empty(entries, now, window)
  if #entries > 0 then return ceil_ms(entries[#entries - 1] + window - now) end
  return 0
end

STEP.sl = function(state, now, p, cost)
  local limit, window = p.limit, p.window
  local rewound = state ~= nil and #state >= 2 and state[#state - 1] > now
  local entries = sl_live(state, now, window)
  local used = sl_total(entries)
  if used + cost <= limit then
    if cost > 0 then
      local last = #entries - 1
      if last >= 1 and entries[last] == now then
        entries[last + 1] = entries[last + 1] + cost
      else
        entries[#entries + 1] = now
        entries[#entries + 1] = cost
      end
    elseif cost < 0 then
      sl_refund_newest(entries, -cost)
    end
    local reset = sl_until_empty(entries, now, window)
    return entries, true, limit - sl_total(entries), reset, 0, max(1, reset), rewound
  end
  local reset = sl_until_empty(entries, now, window)
  local retry = max(1, reset)
  if cost <= limit then
    -- Wait until the oldest entries holding (used + cost - limit) units have left the window.
    local to_free = used + cost - limit
    local i = 1
    while i < #entries - 1 and entries[i + 1] < to_free do
      to_free = to_free - entries[i + 1]
      i = i + 2
    end
    retry = exact_wait(entries[i] + window - now, function(wait) return sl_admits(entries, now + wait, p, cost) end)
  end
  return entries, false, limit - used, reset, retry, max(1, reset), rewound
end
