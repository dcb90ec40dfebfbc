-- wrk script: POST one image as the raw request body (Content-Type image/jpeg or image/png from the file's
-- extension, else application/octet-stream), i.e. vigil's /v1/predict raw-body variant.
--   IMAGE=img.jpg EXPECT_TYPE=application/json wrk -t2 -c4 -d30s --timeout 60s --latency \
--       -s bench/wrk_raw.lua http://127.0.0.1:8080/v1/predict
-- Env: IMAGE (required), CONTENT_TYPE (override), EXPECT_TYPE, EXPECT_EXTRA_STATUS, API_KEY (as X-API-Key).
-- Prints one line `WRKJSON {...}` at the end, as bench/wrk_multipart.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

local data, _, mime = common.image()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or mime
wrk.body = data
local key = os.getenv("API_KEY")
if key and key ~= "" then wrk.headers["X-API-Key"] = key end
