-- mixed.lua — the wrk script of bench/memory.py: a mixed load over many tests, as applications
-- and dashboards make it.
--
-- Environment: BENCH_TESTS_FILE, a file with one test id per line.
-- Per 100 requests of a connection's thread:
--   55 POST /api/fetch_recommended_variant on a random test with a fresh request_id
--   35 POST /api/update_model/{id} rewarding an earlier decision of this thread by its request_id
--      (the store joins it to the decision's variant; one not yet written counts as a failed
--      update in the 200 answer, which is fine for a memory test)
--    9 GET /api/model_details/{id} of a random test
--    1 GET /api/models (every test's summary)
-- Request ids are unique per thread ("mix-<thread>-<n>"), so every fetch leaves a decision record.

local tests = {}
for line in io.lines(os.getenv("BENCH_TESTS_FILE")) do
   if line ~= "" then tests[#tests + 1] = line end
end

local next_thread = 1
function setup(thread)
   thread:set("thread_no", next_thread)
   next_thread = next_thread + 1
end

local n = 0
local RING = 4096
local ring_test, ring_rid = {}, {}
local headers = {["Content-Type"] = "application/json"}

function init(args)
   math.randomseed((thread_no or 1) * 7919 + 17)
end

function request()
   n = n + 1
   local k = n % 100
   if k < 55 then
      local t = tests[math.random(#tests)]
      local rid = "mix-" .. tostring(thread_no or 1) .. "-" .. n
      local slot = n % RING
      ring_test[slot], ring_rid[slot] = t, rid
      return wrk.format("POST", "/api/fetch_recommended_variant", headers,
                        '{"cb_model_id":"' .. t .. '","request_id":"' .. rid .. '"}')
   elseif k < 90 then
      -- a decision made a few hundred requests ago (its record is written by now)
      local slot = (n - 500) % RING
      local t, rid = ring_test[slot], ring_rid[slot]
      if not t then
         t = tests[math.random(#tests)]
         return wrk.format("POST", "/api/update_model/" .. t, headers,
                           '{"updates":[{"variant_id":' .. (n % 4) .. ',"reward":1}]}')
      end
      ring_test[slot] = nil
      return wrk.format("POST", "/api/update_model/" .. t, headers,
                        '{"updates":[{"request_id":"' .. rid .. '","reward":' .. (n % 3 == 0 and 1 or 0) .. '}]}')
   elseif k < 99 then
      return wrk.format("GET", "/api/model_details/" .. tests[math.random(#tests)])
   end
   return wrk.format("GET", "/api/models")
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
      '"status": %d, "timeout": %d}, "latency_us": {"p50": %d, "p99": %d}}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
