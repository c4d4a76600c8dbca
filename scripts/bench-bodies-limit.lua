-- wrk script: POST one JSON body per request, cycling through the lines of the file named by
-- BODIES, and count answers that are not 2xx; besides, the thread stops sending after LIMIT
-- answers and creates the file named by DONE_FILE, so that a run makes a fixed number of
-- registrations: wrk itself runs for its -d time, so whoever started it interrupts it (SIGINT:
-- wrk then prints its summary) once DONE_FILE exists. Use with -t1. Used by
-- scripts/bench-memory.sh.
local path = os.getenv("BODIES") or "bodies.jsonl"
local limit = tonumber(os.getenv("LIMIT") or "0")
local done_file = os.getenv("DONE_FILE")
local bodies = {}
for line in io.lines(path) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
assert(#bodies > 0, "no bodies in " .. path)
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
bad = 0
answers = 0
response = function(status)
  if status < 200 or status > 299 then bad = bad + 1 end
  answers = answers + 1
  if limit > 0 and answers == limit then
    if done_file then io.open(done_file, "w"):close() end
    wrk.thread:stop()
  end
end
done = function()
  local total, count = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    count = count + t:get("answers")
  end
  io.write(string.format("answers: %d, non-2xx answers: %d\n", count, total))
end
