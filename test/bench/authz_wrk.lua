-- wrk script for test/bench/bench_authz.sh. Settings come from the
-- environment (wrk passes no arguments to setup()):
--
--   AUTHZ_MODE      review   POST /authorize, the SubjectAccessReview bodies
--                            of AUTHZ_REQUESTS in turn (each wrk thread
--                            starts at a different line and cycles)
--                   healthz  GET /healthz (the server's HTTP ceiling)
--   AUTHZ_TOKEN     bearer token of the webhook caller (system:masters)
--   AUTHZ_REQUESTS  file of review bodies, one JSON document per line
--
-- Counts 200 answers ("ok") and any other status ("bad", with the first few
-- kept), and for reviews what the answers said: "allowed":true,
-- "denied":true, or neither (no opinion). done() prints one RESULT line
-- with the counts and wrk's own latency percentiles.

local mode  = os.getenv("AUTHZ_MODE") or "healthz"
local token = os.getenv("AUTHZ_TOKEN") or ""
local file  = os.getenv("AUTHZ_REQUESTS") or ""

local threads = {}
function setup(thread)
   local id = #threads + 1
   thread:set("id", id)
   threads[id] = thread
end

function init(args)
   ok, bad, allowed, denied, noop, bad_seen = 0, 0, 0, 0, 0, ""
   reqs, n, pos = {}, 0, 0
   if mode == "review" then
      local headers = { ["Authorization"] = "Bearer " .. token,
                        ["Content-Type"] = "application/json",
                        ["Accept"] = "application/json" }
      local f = assert(io.open(file, "r"))
      for line in f:lines() do
         if #line > 0 then
            n = n + 1
            reqs[n] = wrk.format("POST", "/authorize", headers, line)
         end
      end
      f:close()
      assert(n > 0, "no reviews in " .. file)
      -- Spread the threads over the file so they ask different things.
      pos = math.floor((id - 1) * n / 2) % n
   else
      reqs[1] = wrk.format("GET", "/healthz", { ["Authorization"] = "Bearer " .. token })
      n = 1
   end
end

function request()
   pos = pos % n + 1
   return reqs[pos]
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
      if bad <= 3 then
         bad_seen = bad_seen .. " [" .. status .. " " ..
            string.sub(body or "", 1, 200):gsub("\n", " ") .. "]"
      end
      return
   end
   ok = ok + 1
   if mode == "review" then
      if string.find(body, '"allowed":true', 1, true) then
         allowed = allowed + 1
      elseif string.find(body, '"denied":true', 1, true) then
         denied = denied + 1
      else
         noop = noop + 1
      end
   end
end

function done(summary, latency, requests)
   local tok, tbad, tal, tden, tnoop, seen = 0, 0, 0, 0, 0, ""
   for _, t in ipairs(threads) do
      tok = tok + t:get("ok")
      tbad = tbad + t:get("bad")
      tal = tal + t:get("allowed")
      tden = tden + t:get("denied")
      tnoop = tnoop + t:get("noop")
      seen = seen .. t:get("bad_seen")
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT ok=%d bad=%d allowed=%d denied=%d noopinion=%d secs=%.3f errors=%d " ..
      "p50ms=%.3f p90ms=%.3f p99ms=%.3f p999ms=%.3f maxms=%.3f\n",
      tok, tbad, tal, tden, tnoop, summary.duration / 1e6,
      e.connect + e.read + e.write + e.timeout,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
   if tbad > 0 then io.write("BAD" .. seen .. "\n") end
end
