-- wrk script for `cargo xtask bench`: reports the figures on one line the task parses, and
-- with BENCH_TOKENS set sends a different token with every request.
--
--   BENCH_TOKENS   a file of tokens, one a line; thread i of n takes every n-th, from the
--                  i-th, and sends each one once (then starts over, which `done` reports),
--                  reading the file as it goes
--   BENCH_THREADS  the number of wrk threads (wrk's -t)

local token_file = os.getenv("BENCH_TOKENS")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
  thread:set("wrapped", 0)
end

if token_file then
  -- Tokens are read as they are sent, not loaded in `init`: wrk runs each thread's `init` on
  -- its main thread and starts that thread at once, but starts its clock only after the
  -- last `init`. Loading hundreds of thousands of tokens there let the first thread send
  -- for seconds before the clock started, and those requests counted.
  local file
  local count

  -- Passes over `lines` lines of the file.
  local function skip(lines)
    for _ = 1, lines do
      file:read("*l")
    end
  end

  -- Back to this thread's first line.
  local function rewind()
    file:seek("set")
    skip(id - 1)
  end

  function init(args)
    count = tonumber(os.getenv("BENCH_THREADS"))
    file = assert(io.open(token_file))
    rewind()
  end

  function request()
    local token = file:read("*l")
    if not token then
      rewind()
      wrapped = wrapped + 1
      token = file:read("*l")
    end
    -- The other threads' lines.
    skip(count - 1)
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
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
