-- wrk script: GET each path of BENCH_PATHS (one per line) in turn; BENCH_MAX requests per thread, then stop.
-- 2xx and 3xx answers count as ok (the click redirect answers 302).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if #line > 0 then
      table.insert(paths, line)
    end
  end
  max_requests = tonumber(os.getenv("BENCH_MAX") or "1000000000")
  counter, responses, accepted, limited, failed = 0, 0, 0, 0, 0
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end

function response(status, headers, body)
  responses = responses + 1
  if status >= 200 and status < 400 then
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
