-- triad.lua: the one wrk script workloads/bench uses for every closed-loop run.
--
-- Arguments (after wrk's "--"), each KEY=VALUE:
--   pipeline=N        send N copies of the request in one write, as TechEmpower's
--                     pipeline.lua does (default 1: no pipelining, and the request stays
--                     "static" so wrk never calls into Lua per request)
--   method=POST       request method (default GET)
--   body=TEXT         request body
--   content_type=T    Content-Type header of the body
--
-- done() prints one line "TRIAD_WRK {json}" with the request count, the socket errors,
-- the count of responses with status >= 400 ("status") and the latency percentiles in
-- microseconds. Two wrk 4.1.0 facts the runner accounts for:
--   * after the run wrk back-fills its latency histogram (stats_correct) for requests slower
--     than twice the mean per-connection request interval, a built-in estimate of
--     coordinated omission; the percentiles printed here include it;
--   * with pipelining wrk records one latency sample per batch of N but computes that
--     interval from single responses, so the back-fill lands outside the histogram's range
--     and the percentiles come out as garbage (often 0). The runner keeps only min/max for
--     pipelined runs.

local depth = 1

function init(args)
   for _, arg in ipairs(args) do
      local key, value = string.match(arg, "^([%w_]+)=(.*)$")
      if key == "pipeline" then
         depth = tonumber(value) or 1
      elseif key == "method" then
         wrk.method = value
      elseif key == "body" then
         wrk.body = value
      elseif key == "content_type" then
         wrk.headers["Content-Type"] = value
      elseif key ~= nil then
         io.stderr:write("triad.lua: unknown argument " .. key .. "\n")
      end
   end
   if depth > 1 then
      local batch = {}
      for i = 1, depth do
         batch[i] = wrk.format()
      end
      local buffer = table.concat(batch)
      -- Defining request() makes the script dynamic: wrk sends the whole batch each time.
      request = function()
         return buffer
      end
   end
end

local function number(x)
   return string.format("%.0f", x or 0)
end

function done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      '"duration_us":' .. number(summary.duration),
      '"requests":' .. number(summary.requests),
      '"bytes":' .. number(summary.bytes),
      '"errors":{"connect":' .. number(e.connect) .. ',"read":' .. number(e.read) ..
         ',"write":' .. number(e.write) .. ',"status":' .. number(e.status) ..
         ',"timeout":' .. number(e.timeout) .. '}',
      '"latency_us":{"min":' .. number(latency.min) .. ',"mean":' .. number(latency.mean) ..
         ',"stdev":' .. number(latency.stdev) .. ',"p50":' .. number(latency:percentile(50)) ..
         ',"p90":' .. number(latency:percentile(90)) ..
         ',"p99":' .. number(latency:percentile(99)) ..
         ',"p99.9":' .. number(latency:percentile(99.9)) ..
         ',"max":' .. number(latency.max) .. '}',
   }
   io.write("TRIAD_WRK {" .. table.concat(parts, ",") .. "}\n")
end
