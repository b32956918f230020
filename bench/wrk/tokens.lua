-- wrk script of the benchmark (LuaJIT). Arguments after `--`:
--   <path> <token file | -> <offset> <threads> [limit]
-- Every request is GET <path>. With a token file, each request carries
-- `Authorization: Bearer <token>`, rotating through the file's lines from
-- <offset> (each thread from its own share of the file, wrapping around).
-- With `-`, no Authorization header. With [limit] > 0, each thread stops after
-- limit/threads responses (used to send an exact number of distinct tokens).
--
-- done() prints one line `BENCH_JSON {...}`: counts, latency percentiles, the
-- load window measured from the first request (wrk's own duration includes
-- this script's file loading, which would bias req/s), and wrk's own CPU
-- time from /proc/self/stat (to check the load generator is not the bottleneck).

local ffi = require('ffi')
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new('bench_timespec')
local function now_us ()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

-- main state: collect the threads to read their first-request time in done()
local threads = {}
local counter = 0
function setup (thread)
  thread:set('id', counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- thread states
local prefix, suffix, fixed
local tokens = {}
local n, idx = 0, 0
local limit, sent = 0, 0
first = nil -- luacheck: ignore (read by done() through thread:get)

function init (args)
  local path, file = args[1], args[2]
  local offset, nthreads = tonumber(args[3]), tonumber(args[4])
  limit = tonumber(args[5] or '0')
  if file == '-' then
    fixed = wrk.format('GET', path, {})
    return
  end
  local template = wrk.format('GET', path, { ['Authorization'] = 'Bearer @@TOKEN@@' })
  local at = string.find(template, '@@TOKEN@@', 1, true)
  prefix = string.sub(template, 1, at - 1)
  suffix = string.sub(template, at + 9)
  for line in io.lines(file) do
    if #line > 0 then
      n = n + 1
      tokens[n] = line
    end
  end
  if n == 1 then
    fixed = prefix .. tokens[1] .. suffix
    return
  end
  idx = (offset + id * math.floor(n / nthreads)) % n
  if limit > 0 then limit = math.ceil(limit / nthreads) end
end

function request ()
  if first == nil then first = now_us() end
  if fixed ~= nil then return fixed end
  if limit > 0 and sent >= limit then
    -- past the limit: repeat the last token (a cache hit) until stopped
    return prefix .. tokens[idx] .. suffix
  end
  sent = sent + 1
  idx = idx % n + 1
  return prefix .. tokens[idx] .. suffix
end

local function cpu_ticks ()
  local f = io.open('/proc/self/stat', 'r')
  if f == nil then return -1, -1 end
  local stat = f:read('*a')
  f:close()
  local rest = string.sub(stat, string.find(stat, ')', 1, true) + 2)
  local fields = {}
  for field in string.gmatch(rest, '%S+') do table.insert(fields, field) end
  -- rest starts at field 3 (state): utime is field 14, stime field 15
  return tonumber(fields[12]), tonumber(fields[13])
end

function done (summary, latency)
  local stop = now_us()
  local start = nil
  for _, thread in ipairs(threads) do
    local t = thread:get('first')
    if t ~= nil and (start == nil or t < start) then start = t end
  end
  local utime, stime = cpu_ticks()
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"window_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d},' ..
    '"cpu_ticks":{"utime":%d,"stime":%d}}\n',
    summary.requests, summary.duration, start and (stop - start) or summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    utime, stime))
end
