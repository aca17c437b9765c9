-- wrk script for scripts/bench-feedback: POST /v1/feedback/batch, every request the next of the
-- pre-generated NDJSON batch files (NNNN.ndjson, 1,000 new records each) in a folder.
--   HEARD_KEY=<key> wrk -t2 -c4 -d10s -s scripts/bench/feedback-batch.lua http://127.0.0.1:PORT -- <folder> <count> <threads>
-- Thread t of T posts files t, t + T, t + 2T, ... (read into memory before the run starts), so no
-- batch is posted twice; a thread that runs out posts nothing more (it says so, and the phase
-- is too long for the files). wrk costs far less CPU per batch than a curl process each, so the
-- machine's two cores go to Heard and PostgreSQL. Prints, after wrk's report:
--   bench: batches=<200s> created=<records> incomplete=<200s not 1,000 created> other=<non-200s> errors=<socket errors> exhausted=<threads> duration_s=<s> created_per_s=<r>

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local key = os.getenv("HEARD_KEY")
if key == nil or key == "" then error("HEARD_KEY is not set") end

function init(args)
  local folder, count, thread_count = args[1], tonumber(args[2]), tonumber(args[3])
  if folder == nil or count == nil or thread_count == nil then error("usage: -- <folder> <count> <threads>") end
  bodies = {}
  for n = tid, count, thread_count do
    local file = io.open(string.format("%s/%04d.ndjson", folder, n), "rb")
    if file == nil then break end
    table.insert(bodies, file:read("*a"))
    file:close()
  end
  nextBody = 1
  batches, created, incomplete, other, exhausted = 0, 0, 0, 0, 0
  sample = ""
  headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/x-ndjson" }
end

function request()
  local body = bodies[nextBody]
  if body == nil then
    exhausted = 1
    -- Nothing left to send: a cheap request that changes nothing keeps the connection busy.
    return wrk.format("GET", "/healthz")
  end
  nextBody = nextBody + 1
  return wrk.format("POST", "/v1/feedback/batch", headers, body)
end

function response(status, headers, body)
  if status == 200 then
    local n = tonumber(string.match(body or "", '"created":(%d+)') or "0")
    if n ~= nil and string.find(body or "", '"results"', 1, true) then
      batches = batches + 1
      created = created + n
      if n ~= 1000 then incomplete = incomplete + 1 end
    end
  else
    other = other + 1
    if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local b, c, inc, o, ex, sample_text = 0, 0, 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    b = b + thread:get("batches")
    c = c + thread:get("created")
    inc = inc + thread:get("incomplete")
    o = o + thread:get("other")
    ex = ex + thread:get("exhausted")
    local s = thread:get("sample")
    if sample_text == "" and s ~= "" then sample_text = s end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("bench: batches=%d created=%d incomplete=%d other=%d errors=%d exhausted=%d duration_s=%.3f created_per_s=%.1f\n",
                         b, c, inc, o, e.connect + e.read + e.write + e.timeout, ex, seconds, c / seconds))
  if sample_text ~= "" then io.write("bench: sample " .. string.gsub(sample_text, "\n", " ") .. "\n") end
end
