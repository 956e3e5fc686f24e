-- How states are stored: the codec, and the keys of this call read once and written with their TTL.
--
-- A value is a format byte, a 16-bit offset, then doubles: the store clock's expiry time, then the
-- algorithm state, little-endian, 8 bytes each. Binary doubles round-trip exactly and cost a tenth
-- of formatting and parsing decimal text (%.17g). Format 1: written with Redis TIME; Redis keeps
-- the key at least until ceil(expiry) + offset (the PXAT it was given, see write_state). Format 2:
-- written with the caller's clock, where Redis time says nothing (offset 0).
local REDIS_TIME, CALLER_CLOCK = 1, 2
local MAX_OFFSET = 32767
-- Literal formats: this prelude runs on every call, and building them would cost more than a check.
local CHUNK = 8
local HEAD = { '<Bhd', '<Bhdd', '<Bhddd', '<Bhdddd', '<Bhddddd', '<Bhdddddd', '<Bhddddddd', '<Bhdddddddd' }

-- A state given as a table, or (state nil) as two or three values a, b, c (see VSTEP).
local function encode(format, offset, expires_at, state, a, b, c)
  if state == nil then
    if c ~= nil then return pack('<Bhdddd', format, offset, expires_at, a, b, c) end
    return pack('<Bhddd', format, offset, expires_at, a, b)
  end
  local n = #state
  -- The usual states (2 or 3 numbers) without unpack().
  if n == 3 then return pack('<Bhdddd', format, offset, expires_at, state[1], state[2], state[3]) end
  if n == 2 then return pack('<Bhddd', format, offset, expires_at, state[1], state[2]) end
  if n < CHUNK then return pack(HEAD[n + 1], format, offset, expires_at, spread(state)) end
  -- In chunks: Lua cannot pass a sliding log's thousands of numbers as one call's arguments.
  local parts = { pack('<Bhd', format, offset, expires_at) }
  for i = 1, n, CHUNK do
    local last = min(i + CHUNK - 1, n)
    parts[#parts + 1] = pack('<' .. string.rep('d', last - i + 1), spread(state, i, last))
  end
  return table.concat(parts)
end

-- format, offset, expiresAt and {n1, n2, ...} from a stored value, or nil for a value not ours.
local function decode(value)
  local length = #value
  -- The usual states (2 or 3 numbers) without a temporary table.
  if length == 27 then
    local format, offset, e, a, b = unpack_struct('<Bhddd', value)
    if format == REDIS_TIME or format == CALLER_CLOCK then return format, offset, e, { a, b } end
    return nil
  elseif length == 35 then
    local format, offset, e, a, b, c = unpack_struct('<Bhdddd', value)
    if format == REDIS_TIME or format == CALLER_CLOCK then return format, offset, e, { a, b, c } end
    return nil
  end
  local count = (length - 3) / 8
  local format = string.byte(value, 1)
  if count < 1 or count ~= floor(count) or (format ~= REDIS_TIME and format ~= CALLER_CLOCK) then
    return nil
  end
  local _, offset, expires_at = unpack_struct('<Bhd', value)
  local state = {}
  local at = 12
  local left = count - 1
  while left > 0 do
    local take = min(left, CHUNK)
    local chunk = { unpack_struct('<' .. string.rep('d', take), value, at) }
    for i = 1, take do state[#state + 1] = chunk[i] end
    at = chunk[take + 1] -- unpack's last result is the position after what it read
    left = left - take
  end
  return format, offset, expires_at, state
end

-- What this call knows of its keys, by position in KEYS: the values come from one GET, or one MGET
-- for a batch, instead of a GET per check. A key that appears again (the same client twice in a
-- batch) maps to its first position, so a later check sees an earlier one's write. Arrays, not
-- tables by key name: filling four hash tables per call cost more than the checks' arithmetic.
-- As a Redis Function these tables outlive a call: load_keys() clears the positions a call uses
-- rather than allocating new tables on every call.
local call_keys    -- KEYS of this call
local first = {}   -- position in KEYS -> the position of the key's first appearance
local raw          -- position -> value as read (false: no such key)
local lone = {}    -- raw for a one-key call
local live = {}    -- position -> state (false: none), once decoded; nil: not decoded yet
local expiry = {}  -- position -> the state's expiry by the store clock (set with live)
local kept = {}    -- position -> the time (ms) Redis keeps the key until, when known
local size = {}    -- position -> the length of the value Redis holds, when kept[] is known

-- `dups`: the positions of keys that appeared earlier in KEYS, as "position:first,…" (the client
-- knows them; finding them here took a hash table per call), or nil when there are none.
local function load_keys(keys, dups)
  call_keys = keys
  local n = #keys
  if n == 1 then
    -- GET fails on a key of another type by itself (WRONGTYPE), before anything is written.
    lone[1] = redis_call('GET', keys[1])
    raw = lone
    first[1], live[1], kept[1] = 1, nil, nil
    return
  end
  if n == 0 then return end
  raw = redis_call('MGET', spread(keys))
  local missing
  for i = 1, n do
    if not raw[i] then
      if missing == nil then missing = {} end
      missing[#missing + 1] = keys[i]
    end
    first[i], live[i], kept[i] = i, nil, nil
  end
  if dups ~= nil then
    for at, to in string.gmatch(dups, '(%d+):(%d+)') do first[to_number(at)] = to_number(to) end
  end
  -- MGET reads a key of another type as missing, where GET would fail: fail the same way, before
  -- anything is written, rather than overwrite it.
  if missing ~= nil and redis_call('EXISTS', spread(missing)) > 0 then
    error({ err = 'WRONGTYPE Operation against a key holding the wrong kind of value' })
  end
end

-- The live state of KEYS[i] as of `now`, or nil for a key never seen or expired by the store clock.
local function read_state(i, now)
  i = first[i]
  local state = live[i]
  if state == nil then
    state = false
    local value = raw[i]
    if value then
      local format, offset, expires_at, decoded
      if #value == 35 then
        -- decode()'s most usual case (three numbers), inline.
        local a, b, c
        format, offset, expires_at, a, b, c = unpack_struct('<Bhdddd', value)
        if format == REDIS_TIME or format == CALLER_CLOCK then decoded = { a, b, c } else format = nil end
      else
        format, offset, expires_at, decoded = decode(value)
      end
      if format ~= nil then
        state = decoded
        expiry[i] = expires_at
        if format == REDIS_TIME then
          kept[i] = ceil(expires_at) + offset
          size[i] = #value
        end
      else
        expiry[i] = -1 / 0 -- not ours: gone, below
        state = {}
      end
    end
    live[i] = state
  end
  if state == false then return nil end
  if expiry[i] <= now then
    -- Gone by the store clock: forget it now (as the memory store does), so a clock that later goes
    -- back cannot bring it back.
    redis_call('DEL', call_keys[i])
    live[i] = false
    kept[i] = nil
    return nil
  end
  return state
end

-- A whole number of ms as command text. Redis formats a Lua number argument with "%.17g", which
-- costs more than the rest of a SET; "%d" is a fraction of that, and writes in one window share one
-- expiry, so the last text is kept.
local ms_number, ms_string
local function ms_text(ms)
  if ms ~= ms_number then
    ms_string = format('%d', ms)
    ms_number = ms
  end
  return ms_string
end

-- The fast path's read (see VSTEP): the state of KEYS[i] as values as of now, for a key that appears
-- once in the call and is read once, so nothing is kept for a second look. Returns true, then s1, s2,
-- s3 (s1 nil: no state, or expired by the store clock and deleted, as read_state() does); false when
-- the value is not a state of two or three numbers, for read_state() to decide.
local function read_values(i, now)
  local value = raw[i]
  if not value then
    kept[i] = nil
    return true
  end
  local length = #value
  local format, offset, expires_at, a, b, c
  if length == 35 then
    format, offset, expires_at, a, b, c = unpack_struct('<Bhdddd', value)
  elseif length == 27 then
    format, offset, expires_at, a, b = unpack_struct('<Bhddd', value)
  else
    return false
  end
  if format == REDIS_TIME then
    kept[i] = ceil(expires_at) + offset
    size[i] = length
  elseif format == CALLER_CLOCK then
    kept[i] = nil
  else
    return false
  end
  if expires_at <= now then
    redis_call('DEL', call_keys[i])
    kept[i] = nil
    return true
  end
  return true, a, b, c
end

-- Write a state (a table, or state nil and the values a, b, c) to KEYS[i] with its TTL in the same
-- command: no window where a key could live forever. With Redis time the key expires at
-- ceil(expiry) (PXAT). A write whose expiry is less than 1 ms past the time Redis already keeps the
-- key keeps that TTL (KEEPTTL) and records how far that time is from its own expiry (the offset): a
-- window's writes share one end (their TTLs, whole ms rounded up from different times, differ by
-- under 1 ms), and moving an expiry costs Redis as much as the rest of the write. Redis then drops a
-- key at most 1 ms before its expiry, as PX with a whole-ms TTL always did. `floor_ttl` (> 0 with the
-- caller's clock) keeps keys alive in real time when the clock is the caller's own (test) clock.
-- TTLs are whole ms (ceil_ms), so Redis formats the numbers as integers. Returns the expiry.
local function put(i, now, ttl, floor_ttl, state, a, b, c)
  local key = call_keys[i]
  local expires_at = now + ttl
  if floor_ttl > 0 then
    redis_call('SET', key, encode(CALLER_CLOCK, 0, expires_at, state, a, b, c), 'PX', max(ttl, floor_ttl))
  elseif kept[i] ~= nil and kept[i] + 1 > expires_at then
    -- A refund can bring the expiry far back: a smaller offset still says "at least until".
    local offset = kept[i] - ceil(expires_at)
    if offset > MAX_OFFSET then offset = MAX_OFFSET end
    local value = encode(REDIS_TIME, offset, expires_at, state, a, b, c)
    if #value == size[i] then
      -- The key holds our value of the same length (read or written in this call): overwrite it in
      -- place. SETRANGE keeps the TTL, parses no options and answers a number rather than a status
      -- table; it costs Redis ~1.3k instructions less than SET … KEEPTTL (of ~34k per check).
      redis_call('SETRANGE', key, '0', value)
    else
      redis_call('SET', key, value, 'KEEPTTL')
      size[i] = #value
    end
  else
    local at = ceil(expires_at)
    local value = encode(REDIS_TIME, 0, expires_at, state, a, b, c)
    redis_call('SET', key, value, 'PXAT', ms_text(at))
    kept[i] = at
    size[i] = #value
  end
  return expires_at
end

local function write_state(i, state, now, ttl, floor_ttl)
  i = first[i]
  expiry[i] = put(i, now, ttl, floor_ttl, state)
  live[i] = state
end
