-- wrk script for scripts/bench-complaints: GET the path given, with HEARD_KEY, and report the
-- latency percentiles wrk keeps (p95 among them, which --latency does not print).
--   HEARD_KEY=<key> wrk -t2 -c4 -d10s -s scripts/bench/get-p95.lua http://127.0.0.1:PORT/<path>
-- Prints, after wrk's report:
--   bench: requests=<n> non_2xx=<n> errors=<socket errors> p50_ms=<ms> p95_ms=<ms> p99_ms=<ms> max_ms=<ms>

local key = os.getenv("HEARD_KEY")
if key == nil or key == "" then error("HEARD_KEY is not set") end
wrk.headers["Authorization"] = "Bearer " .. key

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("bench: requests=%d non_2xx=%d errors=%d p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f\n",
    summary.requests, summary.errors.status, errors, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
