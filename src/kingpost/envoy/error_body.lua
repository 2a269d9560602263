-- Shapes gRPC errors on the REST listener as {"error": "<message>"} with an honest HTTP status.
--
-- This filter is listed before the gRPC-JSON transcoder, so on the response path it runs after
-- it. For an error that ends a call before any message (a "trailers-only" response), the
-- transcoder has already mapped grpc-status to an HTTP status (NOT_FOUND -> 404, ...), and
-- grpc-status, grpc-message and our x-http-status are plain response headers here.
-- x-http-status (kingpost.errors.HTTP_STATUS_KEY) carries statuses gRPC has no code for (413, a
-- model's own 418), so it wins over the mapped one.
-- A stream that fails after its first chunk cannot change its status any more; its grpc-status
-- and grpc-message reach HTTP/1.1 clients as trailers (the HCM sets enable_trailers), as does
-- `grpc-status: 0` at the end of a stream that ends well.
--
-- On the request path, what gRPC cannot carry is dealt with here rather than failing in a
-- service as a 500:
-- * a path that is not UTF-8 once percent-decoded (`/models/%FF/...`) is refused with 400: the
--   transcoder would copy those bytes into a protobuf string field, which the service then cannot
--   parse (protobuf's DecodeError);
-- * request headers that are not valid gRPC metadata are dropped, as an HTTP server ignores headers
--   it does not know: a name with characters outside [a-z0-9_.-] (`x|y`), a name ending in `-bin`
--   (gRPC would decode the value as base64), a value outside printable ASCII. No service reads such
--   a header; gRPC refuses the whole call for one of them.

local function pct_decode(s)
  -- grpc-message is percent-encoded on the wire (gRPC spec).
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}

local function json_escape(s)
  -- Bytes >= 0x80 (UTF-8) pass through unchanged: JSON text is UTF-8.
  return (s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end))
end

function envoy_on_response(handle)
  local headers = handle:headers()
  headers:remove("grpc-accept-encoding")
  local grpc_status = headers:get("grpc-status")
  local http_status = tonumber(headers:get("x-http-status") or "")
  headers:remove("x-http-status")
  if grpc_status == nil or grpc_status == "0" then
    -- A success (a unary answer's trailers arrive here merged into its headers), or a message is
    -- coming, or this is Envoy's own reply: leave the body as it is. A status other than 200 rides
    -- in x-http-status, sent by the service as initial metadata: Baseten's 202 for wake, or the
    -- status a /sync/ passthrough's server said (kingpost_router.sync_request).
    headers:remove("grpc-status")
    headers:remove("grpc-message")
    if http_status ~= nil and http_status >= 100 and http_status <= 599 then
      headers:replace(":status", tostring(math.floor(http_status)))
    end
    return
  end
  local message = headers:get("grpc-message") or ""
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  if http_status ~= nil and http_status >= 400 and http_status <= 599 then
    headers:replace(":status", tostring(math.floor(http_status)))
  end
  if message == "" then
    message = "gRPC status " .. grpc_status
  end
  headers:replace("content-type", "application/json")
  handle:body(true):setBytes('{"error":"' .. json_escape(pct_decode(message)) .. '"}')
end

local function is_utf8(s)
  -- Well-formed UTF-8 as protobuf requires of a string: no overlong forms, no surrogates, nothing
  -- above U+10FFFF (the second byte's range rules those out, as in RFC 3629's table).
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len
    if c < 0x80 then
      len = 1
    elseif c >= 0xC2 and c <= 0xDF then
      len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
    else
      return false
    end
    if len > 1 then
      if i + len - 1 > n then
        return false
      end
      local lo, hi = 0x80, 0xBF
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
      elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
      local second = s:byte(i + 1)
      if second < lo or second > hi then
        return false
      end
      for j = i + 2, i + len - 1 do
        local b = s:byte(j)
        if b < 0x80 or b > 0xBF then
          return false
        end
      end
    end
    i = i + len
  end
  return true
end

local function drop_non_grpc_headers(headers)
  local drop = nil
  for name, value in pairs(headers) do
    if name:byte(1) ~= 58 -- ":" (pseudo-headers are the transport's own)
        and (name:find("[^a-z0-9_.%-]") or name:sub(-4) == "-bin" or value:find("[^\32-\126]")) then
      drop = drop or {}
      drop[#drop + 1] = name
    end
  end
  if drop ~= nil then
    for _, name in ipairs(drop) do
      headers:remove(name)
    end
  end
end

-- `{prefix}/sync/{path}` (kingpost_router.sync_request): the transcoder makes every call a POST
-- to a gRPC path and would map query parameters onto the request's fields, so the request's own
-- method and its path after /sync (query included) are recorded here, and the query is taken off.
-- Always overwritten: a caller cannot send other values than its own request's.
local function record_sync(headers, path)
  local rest = path:gsub("^/models/[^/?]+", "", 1)
  local tail = rest:match("^/development/sync(/.*)$") or rest:match("^/production/sync(/.*)$")
      or rest:match("^/environments/[^/?]+/sync(/.*)$") or rest:match("^/deployment/[^/?]+/sync(/.*)$")
  if tail == nil then
    headers:remove("x-kingpost-sync-path")
    headers:remove("x-kingpost-sync-method")
    return
  end
  headers:replace("x-kingpost-sync-path", tail)
  headers:replace("x-kingpost-sync-method", headers:get(":method") or "POST")
  local query = path:find("?", 1, true)
  if query ~= nil then
    headers:replace(":path", path:sub(1, query - 1))
  end
end

function envoy_on_request(handle)
  local headers = handle:headers()
  drop_non_grpc_headers(headers)
  local path = headers:get(":path") or ""
  if path:find("/sync/", 1, true) then
    record_sync(headers, path)
  else
    headers:remove("x-kingpost-sync-path")
    headers:remove("x-kingpost-sync-method")
  end
  -- Only a byte >= 0x80, escaped or raw, can make a path invalid UTF-8: most paths stop here.
  if not (path:find("%%[89a-fA-F]") or path:find("[\128-\255]")) then
    return
  end
  if is_utf8(pct_decode(path)) then
    return
  end
  local shown = path:gsub("[\128-\255]", function(c) return string.format("%%%02X", c:byte()) end)
  if #shown > 200 then
    shown = shown:sub(1, 200) .. "..."
  end
  -- The body becomes {"error": "..."} through the listener's local_reply_config.
  handle:respond({[":status"] = "400"},
                 "the path " .. shown .. " is not valid UTF-8 once percent-decoded")
end
