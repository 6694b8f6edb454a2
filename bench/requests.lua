-- wrk script: a rotating mix of requests read from a TSV file (METHOD \t PATH \t BODY),
-- each thread starting at a different offset; prints one JSON line with the results.
-- Usage: wrk ... -s bench/requests.lua URL -- requests.tsv
local requests = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1]
  for line in io.lines(path) do
    local method, target, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = {}
    if body ~= nil and body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    local key = os.getenv("BENCH_API_KEY")
    if key ~= nil and key ~= "" then headers["X-API-Key"] = key end
    table.insert(requests, wrk.format(method, target, headers, body))
  end
  counter = (id or 0) * 7919
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests)
  local errors = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCHJSON {"requests":%d,"seconds":%.3f,"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"mean_ms":%.3f,"max_ms":%.3f,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.mean / 1000, latency.max / 1000, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
