-- Shared part of vigil's wrk scripts (bench/wrk_multipart.lua, bench/wrk_raw.lua, bench/wrk_mix.lua).
-- Loaded with dofile() by those scripts; not a wrk script on its own.
--
-- Provides:
--   common.read_file(path)           -> bytes (errors clearly when the file is missing)
--   common.image()                   -> bytes, path, mime of $IMAGE
--   common.multipart(field, name, mime, data) -> content-type, body
--   response() that counts HTTP status codes per thread, responses whose Content-Type does not start with
--     $EXPECT_TYPE (when set), and keeps the first unexpected response's status and first 200 body bytes;
--   done() that prints one machine-readable line:
--     WRKJSON {"requests":..,"rps":..,"non2xx":..,"statuses":{"200":..},"err_connect":..,..,
--              "lat_p50_ms":..,"lat_p95_ms":..,"lat_p99_ms":..,...}
--   wrk's own `errors.status` counts only statuses > 399; `non2xx` here counts everything outside 200-299.
local common = {}

function common.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    error("cannot read " .. tostring(path) .. ": " .. tostring(err) .. " (set IMAGE=/path/to/image)")
  end
  local data = f:read("*all")
  f:close()
  return data
end

function common.mime_of(path)
  local ext = (path:match("%.([%w]+)$") or ""):lower()
  local types = {jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", bmp = "image/bmp",
                 webp = "image/webp", tif = "image/tiff", tiff = "image/tiff"}
  return types[ext] or "application/octet-stream"
end

function common.image()
  local path = os.getenv("IMAGE")
  if not path or path == "" then error("set IMAGE=/path/to/image.jpg") end
  return common.read_file(path), path, common.mime_of(path)
end

function common.multipart(field, filename, mime, data, boundary)
  boundary = boundary or "----vigilBenchBoundaryq8Zr1t0XwKp3"
  local body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="' .. field .. '"; filename="' .. filename .. '"\r\n'
    .. "Content-Type: " .. mime .. "\r\n\r\n"
    .. data .. "\r\n"
    .. "--" .. boundary .. "--\r\n"
  return "multipart/form-data; boundary=" .. boundary, body
end

-- Several file parts in one body (for /v1/predict/batch).
function common.multipart_many(parts, boundary)
  boundary = boundary or "----vigilBenchBoundaryq8Zr1t0XwKp3"
  local chunks = {}
  for i, p in ipairs(parts) do
    chunks[#chunks + 1] = "--" .. boundary .. "\r\n"
      .. 'Content-Disposition: form-data; name="' .. p.field .. '"; filename="' .. p.filename .. '"\r\n'
      .. "Content-Type: " .. p.mime .. "\r\n\r\n" .. p.data .. "\r\n"
  end
  chunks[#chunks + 1] = "--" .. boundary .. "--\r\n"
  return "multipart/form-data; boundary=" .. boundary, table.concat(chunks)
end

-- ---- per-thread counters (globals, so that done() can read them with thread:get) ----
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

statuses = {}
bad_type = 0
first_bad = ""
expect_type = (os.getenv("EXPECT_TYPE") or ""):lower()
-- Statuses that are expected (e.g. "400" when a mix sends deliberately bad requests): counted, not non-2xx.
expected_extra = {}
for code in (os.getenv("EXPECT_EXTRA_STATUS") or ""):gmatch("%d+") do expected_extra[tonumber(code)] = true end

local function header(headers, name)
  for k, v in pairs(headers) do
    if k:lower() == name then return v end
  end
  return nil
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local ok = status >= 200 and status <= 299
  if ok and expect_type ~= "" then
    local ct = (header(headers, "content-type") or ""):lower()
    if ct:sub(1, #expect_type) ~= expect_type then
      bad_type = bad_type + 1
      ok = false
    end
  end
  if not ok and not expected_extra[status] and first_bad == "" then
    local snippet = (body or ""):sub(1, 200):gsub("[%c\"\\]", " ")
    first_bad = tostring(status) .. " " .. (header(headers, "content-type") or "?") .. " " .. snippet
  end
  if common.on_response then common.on_response(status, headers, body) end
end

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', " ") .. '"'
end

function done(summary, latency, requests)
  local all = {}
  local bad_types, non2xx, unexpected = 0, 0, 0
  local bad = ""
  local extra_json = ""
  for _, t in ipairs(threads) do
    local st = t:get("statuses") or {}
    for code, n in pairs(st) do
      all[code] = (all[code] or 0) + n
    end
    bad_types = bad_types + (t:get("bad_type") or 0)
    local fb = t:get("first_bad") or ""
    if bad == "" and fb ~= "" then bad = fb end
  end
  local parts = {}
  local codes = {}
  for code in pairs(all) do codes[#codes + 1] = code end
  table.sort(codes)
  for _, code in ipairs(codes) do
    local n = all[code]
    parts[#parts + 1] = '"' .. code .. '":' .. n
    if code < 200 or code > 299 then
      non2xx = non2xx + n
      if not expected_extra[code] then unexpected = unexpected + n end
    end
  end
  if common.done_extra then extra_json = common.done_extra(threads) or "" end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_s":%.3f,"rps":%.4f,"bytes":%d,'
      .. '"non2xx":%d,"non2xx_unexpected":%d,"bad_content_type":%d,"statuses":{%s},'
      .. '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,'
      .. '"lat_min_ms":%.2f,"lat_mean_ms":%.2f,"lat_stdev_ms":%.2f,"lat_max_ms":%.2f,'
      .. '"lat_p50_ms":%.2f,"lat_p90_ms":%.2f,"lat_p95_ms":%.2f,"lat_p99_ms":%.2f,'
      .. '"first_unexpected":%s%s}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    non2xx, unexpected, bad_types, table.concat(parts, ","),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min / 1e3, latency.mean / 1e3, latency.stdev / 1e3, latency.max / 1e3,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    json_string(bad), extra_json))
end

return common
