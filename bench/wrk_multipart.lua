-- wrk script: POST one image as multipart/form-data (field `file`), e.g. to vigil's /predict/ and /v1/predict or
-- the Python seed server's /predict/ and /predict/json.
--   IMAGE=img.jpg [EXPECT_TYPE=image/png] wrk -t2 -c4 -d30s --timeout 60s --latency \
--       -s bench/wrk_multipart.lua http://127.0.0.1:8080/v1/predict
-- Env: IMAGE (required), FIELD (default file), EXPECT_TYPE (Content-Type prefix a 2xx response must have;
-- others count as bad_content_type), EXPECT_EXTRA_STATUS (statuses not counted as unexpected).
-- Prints one line `WRKJSON {...}` at the end (requests, rps, latency percentiles, non2xx, statuses, socket errors).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

local data, path, mime = common.image()
local ctype, body = common.multipart(os.getenv("FIELD") or "file", path:match("([^/]+)$"), mime, data)
wrk.method = "POST"
wrk.headers["Content-Type"] = ctype
wrk.body = body
local key = os.getenv("API_KEY")
if key and key ~= "" then wrk.headers["X-API-Key"] = key end
