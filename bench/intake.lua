-- wrk script of the webhook intake benchmark (bench/intake.sh).
--
-- Every request is the same signed push body with its own X-GitHub-Delivery
-- id (PREFIX-THREAD-N), so no request is a duplicate. The run stops after a
-- fixed number of responses: each thread stops after its share, and the last
-- thread to finish sends SIGINT to wrk 10 ms later, which ends the run (wrk is
-- duration-based; -d is only a safety limit). The delay is needed because
-- system() ignores SIGINT while its command runs; it adds ~10 ms to a run. done() prints one RESULT line
-- and writes every delivery id that a 2xx response names to INTAKE_OUT/acked.
--
-- Environment: INTAKE_BODY (file), INTAKE_SIGNATURE ("sha256=..."),
-- INTAKE_REQUESTS (total), INTAKE_THREADS (same as wrk -t), INTAKE_PREFIX
-- (alphanumeric), INTAKE_OUT (an empty directory).

local body_file = assert(os.getenv("INTAKE_BODY"), "INTAKE_BODY")
local signature = assert(os.getenv("INTAKE_SIGNATURE"), "INTAKE_SIGNATURE")
local total = tonumber(os.getenv("INTAKE_REQUESTS") or "20000")
local nthreads = tonumber(os.getenv("INTAKE_THREADS") or "1")
local prefix = os.getenv("INTAKE_PREFIX") or "bench"
local out = assert(os.getenv("INTAKE_OUT"), "INTAKE_OUT")

local file = assert(io.open(body_file, "rb"))
local payload = file:read("*a")
file:close()

-- main state: hand each thread its number and its share of the requests
local threads = {}
function setup(thread)
  local n = #threads + 1
  local share = math.floor(total / nthreads)
  if n <= total % nthreads then share = share + 1 end
  thread:set("tid", n)
  thread:set("quota", share)
  threads[n] = thread
end

-- thread states
local sent, seen, stopped = 0, 0, false
statuses = {}
acked = {}
local id_pattern = "(" .. prefix .. "%-%d+%-%d+)"
local headers = {
  ["Content-Type"] = "application/json",
  ["User-Agent"] = "GitHub-Hookshot/bench",
  ["X-GitHub-Event"] = "push",
  ["X-GitHub-Hook-ID"] = "1",
  ["X-Hub-Signature-256"] = signature,
}

function request()
  sent = sent + 1
  headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", prefix, tid, sent)
  return wrk.format("POST", wrk.path, headers, payload)
end

function response(status, _, resp_body)
  seen = seen + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 and resp_body then
    local id = resp_body:match(id_pattern)
    if id then acked[#acked + 1] = id end
  end
  if seen >= quota and not stopped then
    stopped = true
    os.execute(string.format(
      "touch %s/done.%d; [ \"$(ls %s | grep -c '^done')\" -ge %d ] && "
        .. "(sleep 0.01; kill -INT $PPID) >/dev/null 2>&1 &",
      out, tid, out, nthreads))
    wrk.thread:stop()
  end
end

function done(summary, latency, _)
  local counts = {}
  local ids = assert(io.open(out .. "/acked", "w"))
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + count
    end
    for _, id in ipairs(thread:get("acked") or {}) do
      ids:write(id, "\n")
    end
  end
  ids:close()
  local status_text = {}
  for status, count in pairs(counts) do
    status_text[#status_text + 1] = string.format("%d:%d", status, count)
  end
  table.sort(status_text)
  local e = summary.errors
  io.write(string.format(
    "RESULT responses=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
      .. "statuses=%s errors=%d/%d/%d/%d/%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(status_text, ","),
    e.connect, e.read, e.write, e.status, e.timeout))
end
