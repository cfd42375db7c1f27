-- tests/milter/reload.lua - SIGHUP while a connection is open: a broken
-- config is refused and the old policy kept; a good one (Mode monitor)
-- takes effect for the next message, also on the connection that was
-- open during the reload. Globals: pid, conf, log.
local T = dofile(libdir .. "/bw.lua")

local OUT = "127.0.0.1"
local nolink = T.eml("bulk-nolink-text.eml")
local refusal = T.refusal("text/plain", "no unsubscribe link")

local function alive()
	return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function monitor_verdict(conn, res)
	return T.passes(res) and res.stage == "eom"
		and T.verdict_is(conn, "would-refuse rule=unsubscribe")
end

local good = T.readfile(conf)

-- a connection that stays open over both reloads
local held = T.connect()
T.conninfo(held, OUT)
local res = T.send(held, nolink)
T.ok(T.replied(held, res, "550", "5.7.1", refusal), "before reload: refused", T.describe(res))

-- broken config: a misspelt key on a known line
local lines, n = {}, 0
for line in good:gmatch("[^\n]*\n?") do
	if line ~= "" then lines[#lines + 1] = line end
end
n = #lines + 1
T.writefile(conf, good .. "Mdoe monitor\n")
os.execute("kill -HUP " .. pid)
local where = conf .. ":" .. n
T.ok(T.wait(15, function()
	return T.readfile(log):find(where, 1, true) ~= nil
end), "broken config on SIGHUP: the log names " .. where)
T.ok(alive(), "broken config on SIGHUP: the daemon keeps running")
res = T.send(held, nolink)
T.ok(T.replied(held, res, "550", "5.7.1", refusal),
	"broken config on SIGHUP: the old policy still refuses (open connection)", T.describe(res))
local c2
c2, res = T.session(OUT, nolink)
T.ok(T.replied(c2, res, "550", "5.7.1", refusal),
	"broken config on SIGHUP: the old policy still refuses (new connection)", T.describe(res))
mt.disconnect(c2)

-- good config, Mode monitor
T.writefile(conf, (good:gsub("\nMode enforce\n", "\nMode monitor\n")))
os.execute("kill -HUP " .. pid)
local took = T.wait(15, function()
	local c, r = T.session(OUT, nolink)
	local m = monitor_verdict(c, r)
	mt.disconnect(c)
	return m
end)
T.ok(took, "good config on SIGHUP: Mode monitor takes effect for new connections")
res = T.send(held, nolink)
T.ok(monitor_verdict(held, res),
	"good config on SIGHUP: the connection open during the reload works and sees Mode monitor",
	T.describe(res))
mt.disconnect(held)
T.ok(alive(), "after the reloads the same daemon process runs")

-- back to enforce for whoever comes next
T.writefile(conf, good)
os.execute("kill -HUP " .. pid)
T.ok(T.wait(15, function()
	local c, r = T.session(OUT, nolink)
	local m = T.replied(c, r, "550", "5.7.1", refusal)
	mt.disconnect(c)
	return m
end), "SIGHUP back to Mode enforce refuses again")
