-- wrk script for test/bench/bench_http.sh. One file, several modes, chosen
-- by the environment (wrk passes no arguments to setup()):
--
--   BENCH_MODE   create      POST a new ~1 KB IAMRoleBinding per request
--                get         GET BENCH_PATH (an existing object, or /healthz)
--                etcd_put    POST /v3/kv/put, a new key per request
--                etcd_range  POST /v3/kv/range of the one key BENCH_KEY
--   BENCH_TOKEN  bearer token for edge-apiserver requests
--   BENCH_PREFIX name prefix that keeps this run's names unique
--
-- Every mode counts the responses with the expected status ("ok") and the
-- others ("bad"); done() prints one machine-readable RESULT line, plus the
-- first unexpected statuses with a bit of their body.

local mode   = os.getenv("BENCH_MODE") or "get"
local token  = os.getenv("BENCH_TOKEN") or ""
local prefix = os.getenv("BENCH_PREFIX") or "b"
local want   = mode == "create" and 201 or 200

local RB_PATH = "/apis/iam.theriseunion.io/v1alpha1/iamrolebindings"
local ETCD_KEY_PREFIX = "/registry/iam.theriseunion.io/iamrolebindings/"
local BODY_SIZE = 1024

-- Standard base64 with padding, as the etcd JSON gateway wants for bytes.
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
   local out, n = {}, #s
   for i = 1, n, 3 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local c1 = math.floor(v / 262144) % 64
      local c2 = math.floor(v / 4096) % 64
      local c3 = math.floor(v / 64) % 64
      local c4 = v % 64
      out[#out + 1] = b64chars:sub(c1 + 1, c1 + 1) .. b64chars:sub(c2 + 1, c2 + 1) ..
         (b and b64chars:sub(c3 + 1, c3 + 1) or "=") .. (c and b64chars:sub(c4 + 1, c4 + 1) or "=")
   end
   return table.concat(out)
end

-- An IAMRoleBinding of about BODY_SIZE bytes: the spec the benchmark calls for,
-- labels, and an annotation padded so a typical name lands on BODY_SIZE.
local function binding(name, n, pad)
   return '{"apiVersion":"iam.theriseunion.io/v1alpha1","kind":"IAMRoleBinding",' ..
      '"metadata":{"name":"' .. name .. '","labels":{"app.kubernetes.io/part-of":"edge-bench",' ..
      '"bench.theriseunion.io/role":"viewer","bench.theriseunion.io/tier":"standard"},' ..
      '"annotations":{"bench.theriseunion.io/note":"' .. pad .. '"}},' ..
      '"spec":{"roleRef":{"name":"viewer"},"subjects":[{"kind":"User","name":"user-' .. n .. '"}],' ..
      '"scope":{"level":"Workspace","name":"ws-' .. n .. '"}}}'
end
local PAD = string.rep("x", BODY_SIZE - #binding(prefix .. "1-100000", 100000, ""))

-- Runs in the main thread once per wrk thread: give each a distinct id.
local threads = {}
function setup(thread)
   local id = #threads + 1
   thread:set("id", id)
   threads[id] = thread
end

function init(args)
   counter, ok, bad, bad_seen = 0, 0, 0, ""
   auth = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
   json = { ["Content-Type"] = "application/json" }
   get_path = os.getenv("BENCH_PATH") or "/healthz"
   range_body = '{"key":"' .. b64(os.getenv("BENCH_KEY") or "") .. '"}'
   -- etcd values: the same ~1 KB document as the creates send.
   value64 = b64(binding(prefix .. "1-100000", 100000, PAD))
   get_req = wrk.format("GET", get_path, { ["Authorization"] = "Bearer " .. token })
   range_req = wrk.format("POST", "/v3/kv/range", json, range_body)
end

function request()
   if mode == "create" then
      counter = counter + 1
      local name = prefix .. id .. "-" .. counter
      return wrk.format("POST", RB_PATH, auth, binding(name, counter, PAD))
   elseif mode == "etcd_put" then
      counter = counter + 1
      local key = ETCD_KEY_PREFIX .. prefix .. id .. "-" .. counter
      return wrk.format("POST", "/v3/kv/put", json,
                        '{"key":"' .. b64(key) .. '","value":"' .. value64 .. '"}')
   elseif mode == "etcd_range" then
      return range_req
   end
   return get_req
end

function response(status, headers, body)
   if status == want then
      ok = ok + 1
   else
      bad = bad + 1
      if bad <= 3 then
         bad_seen = bad_seen .. " [" .. status .. " " .. string.sub(body or "", 1, 160):gsub("\n", " ") .. "]"
      end
   end
end

function done(summary, latency, requests)
   local tok, tbad, seen = 0, 0, ""
   for _, t in ipairs(threads) do
      tok = tok + t:get("ok")
      tbad = tbad + t:get("bad")
      seen = seen .. t:get("bad_seen")
   end
   io.write(string.format("RESULT ok=%d bad=%d secs=%.3f errors=%d p50ms=%.2f p99ms=%.2f\n",
                          tok, tbad, summary.duration / 1e6,
                          summary.errors.connect + summary.errors.read + summary.errors.write +
                             summary.errors.timeout,
                          latency:percentile(50) / 1000, latency:percentile(99) / 1000))
   if tbad > 0 then io.write("BAD" .. seen .. "\n") end
end
