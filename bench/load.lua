-- load.lua — the wrk script of bench/perf.py and bench/memory.py: one fixed request per run,
-- optionally paced, and a machine-readable summary at the end.
--
-- Environment (set by the Python driver):
--   BENCH_METHOD      GET or POST (default POST)
--   BENCH_BODY_FILE   file whose content is the request body (none: no body)
--   BENCH_AUTH        a bearer token to send (none: no Authorization header)
--   BENCH_DELAY_MS    mean pause in milliseconds between a response and the next request on the
--                     same connection (0 or unset: as fast as possible). wrk's timer has a
--                     resolution of 1 ms, so each pause is the floor or the ceiling of the mean,
--                     drawn so that the pauses average to it.
--
-- The request is built once (no request() function), so wrk spends the same per-request work on
-- every server, the ceiling included. done() prints one line "BENCH {json}" with the counts and
-- the latency percentiles in microseconds.

wrk.method = os.getenv("BENCH_METHOD") or "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. auth
end
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
   local f = assert(io.open(body_file, "rb"))
   wrk.body = f:read("*a")
   f:close()
end

local mean_delay = tonumber(os.getenv("BENCH_DELAY_MS") or "0") or 0
if mean_delay > 0 then
   local low = math.floor(mean_delay)
   local p_high = mean_delay - low
   function setup(thread)
      thread:set("seed", math.random(1, 2147483647))
   end
   function init(args)
      math.randomseed(seed or os.time())
   end
   function delay()
      if math.random() < p_high then
         return low + 1
      end
      return low
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
