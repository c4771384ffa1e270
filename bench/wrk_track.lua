-- wrk script: POST /api/v1/track with unique event ids, a snippet-like mix, spread over many stores.
-- Environment: BENCH_KEYS (file of "public_key domain" lines), BENCH_BATCH (events per request),
-- BENCH_TAG (unique per run, so event ids never repeat), BENCH_MAX (requests per thread, then stop),
-- BENCH_PATH (default /api/v1/track).
-- Each visitor sends 10 events to one store (see event below).

local threads = {}

function setup(thread)
  thread:set("id", tostring(#threads + 1))
  table.insert(threads, thread)
end

function init(args)
  keys, domains = {}, {}
  for line in io.lines(os.getenv("BENCH_KEYS")) do
    local key, domain = line:match("^(%S+)%s+(%S+)$")
    if key then
      table.insert(keys, key)
      table.insert(domains, domain)
    end
  end
  batch = tonumber(os.getenv("BENCH_BATCH") or "1")
  path = os.getenv("BENCH_PATH") or "/api/v1/track"
  tag = (os.getenv("BENCH_TAG") or "run") .. "-" .. id
  max_requests = tonumber(os.getenv("BENCH_MAX") or "1000000000")
  counter, responses, accepted, limited, failed = 0, 0, 0, 0, 0
end

-- One visitor's 10 events, in the snippet's order: 3 product views while anonymous, an identify
-- (an email typed into the page), then 2 cart updates and 4 views that carry that email, as the
-- snippet sends every event once it knows the visitor's email.
local function event(n, domain)
  local visitor = tag .. "-" .. math.floor(n / 10)
  local kind = n % 10
  local head = '{"id":"' .. tag .. "-" .. n .. '","anonymous_id":"' .. visitor .. '",'
  if kind >= 3 then
    head = head .. '"email":"' .. visitor .. '@example.com",'
  end
  if kind == 3 then
    return head .. '"type":"identify","traits":{"first_name":"Ada"}}'
  elseif kind == 4 or kind == 5 then
    return head .. '"type":"track","event":"cart_updated","properties":{"cart_id":"' .. visitor ..
      '","currency":"USD","value":"37.00","restore_url":"https://' .. domain .. '/cart","items":[' ..
      '{"sku":"MUG-1","name":"Blue enamel mug","price":"24.00","quantity":1},' ..
      '{"sku":"TEA-2","name":"Green tea","price":"13.00","quantity":1}]}}'
  end
  return head .. '"type":"track","event":"product_viewed","properties":{"sku":"MUG-1",' ..
    '"name":"Blue enamel mug","price":"24.00","url":"https://' .. domain .. '/p/mug"}}'
end

function request()
  local events = {}
  local store = (math.floor(counter / 10) % #keys) + 1
  for i = 1, batch do
    table.insert(events, event(counter, domains[store]))
    counter = counter + 1
  end
  local body = '{"key":"' .. keys[store] .. '","batch":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", path, {["Content-Type"] = "text/plain"}, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status == 202 then
    accepted = accepted + 1
  elseif status == 429 then
    limited = limited + 1
  else
    failed = failed + 1
  end
  if responses >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = {accepted = 0, limited = 0, failed = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"ok":%d,"limited":%d,"failed":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, totals.accepted, totals.limited, totals.failed,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
