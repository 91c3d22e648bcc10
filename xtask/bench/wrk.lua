-- wrk script for `cargo xtask bench`: reports the figures on one line the task parses, and
-- with BENCH_TOKENS set sends a different token with every request.
--
--   BENCH_TOKENS   a file of tokens, one a line; thread i of n takes every n-th, from the
--                  i-th, and sends each one once (then starts over, which `done` reports)
--   BENCH_THREADS  the number of wrk threads (wrk's -t)

local token_file = os.getenv("BENCH_TOKENS")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
  thread:set("wrapped", 0)
end

if token_file then
  local requests = {}
  local index = 0

  function init(args)
    local count = tonumber(os.getenv("BENCH_THREADS"))
    local headers = {}
    local line_number = 0
    for token in io.lines(token_file) do
      line_number = line_number + 1
      if (line_number - id) % count == 0 then
        headers["Authorization"] = "Bearer " .. token
        requests[#requests + 1] = wrk.format(nil, nil, headers)
      end
    end
  end

  function request()
    index = index + 1
    if index > #requests then
      index = 1
      wrapped = wrapped + 1
    end
    return requests[index]
  end
end

function done(summary, latency, requests)
  local wrapped = 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + thread:get("wrapped")
  end
  local errors = summary.errors
  io.write(string.format(
    "bench requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p99_us=%d wrapped=%d\n",
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(99), wrapped))
end
