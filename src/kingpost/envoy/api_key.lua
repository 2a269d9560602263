-- API keys checked inside Envoy, with no hop per request (issue 20): the router's key rule
-- (kingpost.auth.key_refusal, then key_scope's invoke-only check) for the routes Envoy sends
-- straight to a runner.
--
-- Envoy holds no key. Each direct route carries (kingpost_router.envoy_keys):
-- * in its LuaPerRoute `filter_context`, `keys`: the sha256 digests of every key the route table
--   knows, space-separated (the same string on every route);
-- * in its metadata under this filter's name, `keys_version` (a digest of that string), and for
--   each invoke-only key scoped to other models, its digest -> the 403 message.
-- A digest not in `keys` is an unknown (or revoked) key. Revoking a key is a new route
-- configuration without it; requests in flight finish on the one they started with.
--
-- Envoy copies a route's filter context and metadata each time a script asks for them (its Lua
-- wrapper holds a copy), so the big part is read only when its version is new to this worker:
-- per request the script reads the small metadata, and `keys` once per version, parsed into a set
-- remembered by version. The presented key's digest (sha256 in pure Lua on LuaJIT's `bit`
-- library) is remembered per worker too, so a key seen again costs one table lookup.
--
-- Refusals are local replies with the message as their body: the listener's local_reply_config
-- makes that {"error": "<message>"}, as it does for every error Envoy answers itself.

local bit = require("bit")
local band, bnot, bor, bxor = bit.band, bit.bnot, bit.bor, bit.bxor
local lshift, rshift, ror, tobit, tohex = bit.lshift, bit.rshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep = string.byte, string.char, string.rep

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
for i = 1, 64 do
  K[i] = tobit(K[i])
end

local w = {}

local function sha256_hex(message)
  local length = #message
  -- Padding: 0x80, zeros up to 56 mod 64, then the length in bits as 8 bytes, big-endian.
  local bits = length * 8
  local high = math.floor(bits / 4294967296)
  local low = bits % 4294967296
  message = message .. "\128" .. rep("\0", (55 - length) % 64)
      .. char(band(rshift(high, 24), 255), band(rshift(high, 16), 255), band(rshift(high, 8), 255),
              band(high, 255), band(rshift(low, 24), 255), band(rshift(low, 16), 255),
              band(rshift(low, 8), 255), band(low, 255))
  local h0, h1, h2, h3 = tobit(0x6a09e667), tobit(0xbb67ae85), tobit(0x3c6ef372), tobit(0xa54ff53a)
  local h4, h5, h6, h7 = tobit(0x510e527f), tobit(0x9b05688c), tobit(0x1f83d9ab), tobit(0x5be0cd19)
  for start = 1, #message, 64 do
    for j = 0, 15 do
      local b1, b2, b3, b4 = byte(message, start + j * 4, start + j * 4 + 3)
      w[j] = bor(lshift(b1, 24), lshift(b2, 16), lshift(b3, 8), b4)
    end
    for j = 16, 63 do
      local x, y = w[j - 15], w[j - 2]
      w[j] = tobit(w[j - 16] + bxor(ror(x, 7), ror(x, 18), rshift(x, 3)) + w[j - 7]
                   + bxor(ror(y, 17), ror(y, 19), rshift(y, 10)))
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for j = 0, 63 do
      local t1 = h + bxor(ror(e, 6), ror(e, 11), ror(e, 25)) + bxor(band(e, f), band(bnot(e), g))
          + K[j + 1] + w[j]
      local t2 = bxor(ror(a, 2), ror(a, 13), ror(a, 22)) + bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  return tohex(h0) .. tohex(h1) .. tohex(h2) .. tohex(h3) .. tohex(h4) .. tohex(h5) .. tohex(h6)
      .. tohex(h7)
end

-- key -> digest, per worker thread. Bounded: when full it starts again empty (a key then costs
-- one hash more), so that a client sending endless made-up keys cannot grow it.
local MEMO_LIMIT = 4096
local memo, memo_size = {}, 0

local function digest(key)
  local known = memo[key]
  if known ~= nil then
    return known
  end
  known = sha256_hex(key)
  if memo_size >= MEMO_LIMIT then
    memo, memo_size = {}, 0
  end
  memo[key] = known
  memo_size = memo_size + 1
  return known
end

-- Python's str.strip(): ASCII whitespace and the separators \x1c-\x1f.
local SPACE = "[%s\28-\31]"

-- kingpost.auth.key_from_authorization: `Api-Key k` or `Bearer k` (the scheme in any case; split
-- at the first space, both parts stripped) -> k; anything else -> nil.
local function key_from_authorization(value)
  if value == nil then
    return nil
  end
  value = value:gsub("^" .. SPACE .. "+", ""):gsub(SPACE .. "+$", "")
  local space = value:find(" ", 1, true)
  if space == nil then
    return nil
  end
  local scheme = value:sub(1, space - 1):lower()
  if scheme ~= "api-key" and scheme ~= "bearer" then
    return nil
  end
  local key = value:sub(space + 1):gsub("^" .. SPACE .. "+", ""):gsub(SPACE .. "+$", "")
  if key == "" then
    return nil
  end
  return key
end

-- kingpost.auth.key_refusal's messages.
local MISSING = "missing API key: send the header 'Authorization: Api-Key <key>'"
local INVALID = "invalid API key"

-- The parsed `keys` sets, by their version (a new route table brings a new one). Bounded as the
-- digests are.
local SETS_LIMIT = 8
local sets, sets_size = {}, 0

local function key_set(handle, version)
  local set = version and sets[version]
  if set then
    return set
  end
  set = {}
  for known in (handle:filterContext():get("keys") or ""):gmatch("%x+") do
    set[known] = true
  end
  if version == nil then
    return set -- not remembered: nothing would tell a newer set from it
  end
  if sets_size >= SETS_LIMIT then
    sets, sets_size = {}, 0
  end
  sets[version] = set
  sets_size = sets_size + 1
  return set
end

function envoy_on_request(handle)
  local key = key_from_authorization(handle:headers():get("authorization"))
  if key == nil then
    handle:respond({[":status"] = "401"}, MISSING)
    return
  end
  local route = handle:metadata()
  local presented = digest(key)
  if not key_set(handle, route:get("keys_version"))[presented] then
    handle:respond({[":status"] = "401"}, INVALID)
    return
  end
  local refusal = route:get(presented)
  if refusal ~= nil then
    handle:respond({[":status"] = "403"}, tostring(refusal))
  end
end
