-- wrk script: a fixed mix of vigil serve requests, for soak runs (bench/soak.sh) that should exercise every
-- route's memory paths, not only one. Each wrk thread cycles through this weighted list (deterministic order):
--   4 x POST /v1/predict multipart        4 x POST /v1/predict raw body     2 x POST /predict/ (PNG)
--   1 x POST /v1/predict?annotate=jpeg     1 x POST /v1/predict/batch (2 parts)
--   1 x GET /v1/stats   1 x GET /v1/models   1 x GET /metrics
--   1 x POST /v1/predict with a body that is not an image (MIX_BAD=1, default): a 400 or 415 is expected and not
--       counted in non2xx_unexpected (bench/soak.sh checks that 400s + 415s match the bad requests sent).
--   IMAGE=img.jpg wrk -t2 -c3 -d600s --timeout 60s --latency -s bench/wrk_mix.lua http://127.0.0.1:18090
-- Env: IMAGE, MIX_BAD (1), API_KEY. Prints `WRKJSON {...,"sent":{"v1_multipart":..,...}}`.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

local data, path, mime = common.image()
local name = path:match("([^/]+)$")
local key = os.getenv("API_KEY")
local mix_bad = (os.getenv("MIX_BAD") or "1") == "1"
if mix_bad then expected_extra[400] = true; expected_extra[415] = true end

local function hdrs(t)
  if key and key ~= "" then t["X-API-Key"] = key end
  return t
end

local mp_type, mp_body = common.multipart("file", name, mime, data)
local batch_type, batch_body = common.multipart_many({
  {field = "a", filename = "a_" .. name, mime = mime, data = data},
  {field = "b", filename = "b_" .. name, mime = mime, data = data}})

local kinds = {
  {"v1_multipart", 4, "POST", "/v1/predict", {["Content-Type"] = mp_type}, mp_body},
  {"v1_raw", 4, "POST", "/v1/predict", {["Content-Type"] = mime}, data},
  {"seed_png", 2, "POST", "/predict/", {["Content-Type"] = mp_type}, mp_body},
  {"v1_annotate_jpeg", 1, "POST", "/v1/predict?annotate=jpeg", {["Content-Type"] = mime}, data},
  {"v1_batch2", 1, "POST", "/v1/predict/batch", {["Content-Type"] = batch_type}, batch_body},
  {"stats", 1, "GET", "/v1/stats", {}, nil},
  {"models", 1, "GET", "/v1/models", {}, nil},
  {"metrics", 1, "GET", "/metrics", {}, nil},
}
if mix_bad then
  kinds[#kinds + 1] = {"bad_image", 1, "POST", "/v1/predict", {["Content-Type"] = "image/jpeg"},
                       "this is not an image, a 4xx is expected"}
end

local schedule = {}
sent = {}
function init(args)
  for _, k in ipairs(kinds) do
    local req = wrk.format(k[3], k[4], hdrs(k[5]), k[6])
    for _ = 1, k[2] do schedule[#schedule + 1] = {k[1], req} end
    sent[k[1]] = 0
  end
  -- interleave: spread each kind over the cycle (stride through the list)
  local spread, n, stride = {}, #schedule, 7
  while n % stride == 0 do stride = stride + 1 end
  for i = 0, n - 1 do spread[#spread + 1] = schedule[(i * stride) % n + 1] end
  schedule = spread
  pos = 0
end

function request()
  pos = pos % #schedule + 1
  local item = schedule[pos]
  sent[item[1]] = sent[item[1]] + 1
  return item[2]
end

common.done_extra = function(threads)
  local total = {}
  for _, t in ipairs(threads) do
    for k, n in pairs(t:get("sent") or {}) do total[k] = (total[k] or 0) + n end
  end
  local parts = {}
  for k, n in pairs(total) do parts[#parts + 1] = '"' .. k .. '":' .. n end
  table.sort(parts)
  return ',"sent":{' .. table.concat(parts, ",") .. "}"
end
