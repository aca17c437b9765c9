-- wrk script for scripts/bench-feedback: POST /v1/feedback, one new record per request.
--   HEARD_KEY=<key> wrk -t2 -c64 -d10s -s scripts/bench/feedback-post.lua http://127.0.0.1:PORT -- <run-label>
-- external_id is "<run-label>-<thread>-<lane>-<n>" (lane = n % 32, n zero-padded and counting per
-- thread), so no two requests collide and every request should be answered 201. The 2 threads x
-- 32 lanes give 64 keys growing side by side, as pgbench's 64 clients' keys do (client_id * 1e8
-- + i, feedback-pgbench.sql): both runs insert into the natural-key index at 64 places at once.
-- (With one counter per thread, 64 requests appended at 2 places in the index and queued on its
-- last pages: PostgreSQL spent 1.17 ms a record against pgbench's 0.93, for the same statements.)
-- Prints, after wrk's report:
--   bench: created=<201s> other=<non-201s> errors=<socket errors> duration_s=<s> created_per_s=<r>
--   bench: status <code> x<count>      (one line per non-201 status seen, and a sample body)

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local key = os.getenv("HEARD_KEY")
if key == nil or key == "" then error("HEARD_KEY is not set") end
wrk.method = "POST"
wrk.path = "/v1/feedback"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"

-- The README's example record: every required field, two responses, a short comment, equality.
local template = '{"source_system":"bench","external_id":"%s-%d-%02d-%09d",'
  .. '"channel":"cic_review","respondent_role":"young_person","age_band":"13_to_15",'
  .. '"service_area":"children_looked_after","team":"north","stage":"review","kind":"compliment",'
  .. '"given_at":"2026-11-20T10:00:00Z","subject_ref":"P-88213",'
  .. '"responses":[{"measure":"listened_to","score":5},{"measure":"worker_knows_me","score":4}],'
  .. '"comment":"My worker listens to me","consent_to_follow_up":false,'
  .. '"equality":{"gender":"female","ethnicity":"white_british"}}'

function init(args)
  label = args[1] or "run"
  n = 0
  created = 0
  other = 0
  statuses = {}
  sample = ""
end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format(template, label, tid, n % 32, n))
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
    statuses[status] = (statuses[status] or 0) + 1
    if sample == "" then sample = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local c, o, seen, sample_text = 0, 0, {}, ""
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    o = o + thread:get("other")
    for status, count in pairs(thread:get("statuses")) do seen[status] = (seen[status] or 0) + count end
    local s = thread:get("sample")
    if sample_text == "" and s ~= "" then sample_text = s end
  end
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format("bench: created=%d other=%d errors=%d duration_s=%.3f created_per_s=%.1f\n",
                         c, o, errors, seconds, c / seconds))
  for status, count in pairs(seen) do io.write(string.format("bench: status %d x%d\n", status, count)) end
  if sample_text ~= "" then io.write("bench: sample " .. string.gsub(sample_text, "\n", " ") .. "\n") end
end
