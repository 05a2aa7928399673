-- wrk script for bench/wrk/run.sh: POSTs a ~200-byte tyntec DeliveryStatus
-- with a unique otpId on every request (thread number and a counter make a
-- UUID), channels and statuses in the mix bench/loadgen sends, and the
-- webhook token from $WEBHOOK_TOKEN. done() prints one RESULT line.

local threads = {}
local counter = 0
tid = tid or 0 -- set per thread by setup()
local channels = {"SMS", "SMS", "SMS", "VIBER", "VOICE", "WHATSAPP"}
local statuses = {"DISPATCHED", "DELIVERED", "DELIVERED", "UNDELIVERABLE", "TIMED_OUT"}
local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
local token = os.getenv("WEBHOOK_TOKEN") or "wrk-bench-token-0123456789"
local run = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Webhook-Token"] = token

-- run makes otpIds unique across wrk processes (a second apart at least)
-- and threads.
function init(args)
  run = (os.time() * 16 + tid) % 4294967296
end

function request()
  counter = counter + 1
  local ch = channels[counter % #channels + 1]
  local st = statuses[counter % #statuses + 1]
  local err = ""
  if st == "UNDELIVERABLE" or st == "TIMED_OUT" then
    err = ',"error":{"code":"tyntec::delivery::1001","message":"Subscriber unreachable"}'
  end
  local id = string.format("%08x-%04x-4%03x-8%03x-%012x", run, tid, counter % 0xfff, math.floor(counter / 0xfff) % 0xfff, counter)
  local body = '{"channel":"' .. ch .. '","otpId":"' .. id ..
    '","profileId":"adbe6521-f5bd-4295-9fd9-776debdf7dc2","status":"' .. st ..
    '","timestamp":"' .. stamp .. '"' .. err .. '}'
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.0f p99_ms=%.2f non2xx=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(99) / 1000, non2xx, errs))
end
