-- wrk script of the history scale benchmark (bench/history-scale.sh).
--
-- Sends GET requests to wrk's URL with the API token (HISTORY_TOKEN) and, at
-- the end, prints one RESULT line: latency percentiles (p50, p95, p99, max,
-- in microseconds), requests, non-2xx answers and socket errors
-- (connect/read/write/timeout), so the shell script needs no parsing of
-- wrk's human output.

local token = assert(os.getenv("HISTORY_TOKEN"), "HISTORY_TOKEN")
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Accept"] = "application/json, text/html"
-- A web UI session cookie (bench/history-scale.sh signs in), for /ui pages.
local cookie = os.getenv("HISTORY_COOKIE")
if cookie then wrk.headers["Cookie"] = cookie end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p95_us=%d p99_us=%d max_us=%d "
      .. "non2xx=%d errors=%d/%d/%d/%d bytes=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout,
    summary.bytes))
end
