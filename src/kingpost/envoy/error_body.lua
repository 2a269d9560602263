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
  if grpc_status == nil then
    return -- a message is coming (or this is Envoy's own reply): leave the body streaming
  end
  local message = headers:get("grpc-message") or ""
  local http_status = tonumber(headers:get("x-http-status") or "")
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("x-http-status")
  if grpc_status == "0" then
    return
  end
  if http_status ~= nil and http_status >= 400 and http_status <= 599 then
    headers:replace(":status", tostring(math.floor(http_status)))
  end
  if message == "" then
    message = "gRPC status " .. grpc_status
  end
  headers:replace("content-type", "application/json")
  handle:body(true):setBytes('{"error":"' .. json_escape(pct_decode(message)) .. '"}')
end
