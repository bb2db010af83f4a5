-- The wrk script for every scenario, the same for the service and the baseline.
--
--   wrk ... -s bench/load.lua URL -- MODE TOKENS_FILE TAG
--
-- MODE "get": the URL's method and path, with a bearer token from TOKENS_FILE.
-- MODE "post": a new check-in per request, with a client `id` and an `Idempotency-Key` unique
--   to the request (TAG, 8 hex digits, is unique to this wrk run; then the thread, then a
--   counter: a well-formed version 4 UUID).
-- Tokens (one per line) are used in turn, one per request: with as many patients as connections,
-- requests in flight at the same time mostly belong to different patients.
-- done() prints one line, "BENCH_RESULT {json}", which the runner reads.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local mode, tag
local tokens = {}
local prebuilt = {}
local counter = 0

function init(args)
  mode, tag = args[1], args[3]
  for line in io.lines(args[2]) do
    if #line > 0 then
      tokens[#tokens + 1] = line
    end
  end
  assert(#tokens > 0, "no tokens in " .. args[2])
  for i, token in ipairs(tokens) do
    prebuilt[i] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
  end
end

local function post(token)
  local id = string.format("%s-%04x-4000-8000-%012x", tag, thread_no, counter)
  local body = string.format(
    '{"id":"%s","mood":%d,"anxiety":3,"sleep_hours":7.5,"note":"slept well, bench %d"}',
    id, counter % 11, counter)
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "bench-" .. id,
  }, body)
end

function request()
  counter = counter + 1
  local i = (counter % #tokens) + 1
  if mode == "post" then
    return post(tokens[i])
  end
  return prebuilt[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,'
      .. '"err_write":%d,"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
