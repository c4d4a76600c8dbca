-- wrk script: GET a client's configuration (RFC 7592 read) with its registration access token,
-- cycling through the lines of the file named by READS ("<path> <token>" per line), and print
-- how many answers were not 2xx (as scripts/bench-bodies-limit.lua does).
-- Usage: READS=reads.txt wrk -t1 -c32 -d10s -s bench-read.lua http://127.0.0.1:PORT
local file = os.getenv("READS") or "reads.txt"
local reads = {}
for line in io.lines(file) do
  local path, token = line:match("^(%S+) (%S+)$")
  if path then reads[#reads + 1] = { path, "Bearer " .. token } end
end
assert(#reads > 0, "no reads in " .. file)
local i = 0
request = function()
  i = i % #reads + 1
  return wrk.format("GET", reads[i][1], { ["Authorization"] = reads[i][2] })
end
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
bad = 0
response = function(status) if status < 200 or status > 299 then bad = bad + 1 end end
done = function()
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("non-2xx answers: %d\n", total))
end
