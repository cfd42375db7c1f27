-- tests/milter/session.lua - several messages on one connection, and
-- messages aborted half way: nothing of one message may leak into the
-- next (a List-Unsubscribe header, a link already seen, a verdict).
local T = dofile(libdir .. "/bw.lua")

local function refused(conn, res, part, failure)
	return T.replied(conn, res, "550", "5.7.1", T.refusal(part, failure))
end

-- five messages on one outbound connection
local conn = T.connect()
T.ok(T.conninfo(conn, "127.0.0.1") == nil, "outbound connection is not decided at connect")
local seq = {
	{ "bulk-visible.eml", "pass" },
	{ "bulk-nolink-text.eml", { "text/plain", "no unsubscribe link" } },
	{ "personal.eml", "pass", { from = "bob@example.com" } },
	{ "bulk-hidden.eml", { "text/html", "link hidden by display:none" } },
	{ "bulk-visible.eml", "pass" },
	{ "bulk-nolink.eml", { "text/html", "no unsubscribe link" } },
}
for i, s in ipairs(seq) do
	local res = T.send(conn, T.eml(s[1]), s[3])
	local what = string.format("one connection, message %d (%s)", i, s[1])
	if s[2] == "pass" then
		T.ok(T.passes(res), what .. " passes", T.describe(res))
	else
		T.ok(refused(conn, res, s[2][1], s[2][2]), what .. " is refused", T.describe(res))
	end
end
mt.disconnect(conn)

-- aborts between and inside messages
conn = T.connect()
T.conninfo(conn, "127.0.0.1")
local res = T.send(conn, T.eml("bulk-visible.eml"), { stop = "body", chunk = { 200 } })
T.is(res.stage, "stopped", "abort: first message stopped after one body chunk")
mt.abort(conn)
res = T.send(conn, T.eml("bulk-nolink-text.eml"))
T.ok(refused(conn, res, "text/plain", "no unsubscribe link"),
	"abort: links of the aborted message do not count for the next", T.describe(res))
res = T.send(conn, T.eml("bulk-nolink-text.eml"), { stop = "eoh" })
mt.abort(conn)
res = T.send(conn, T.eml("personal.eml"), { from = "bob@example.com" })
T.ok(T.passes(res), "abort: bulk headers of the aborted message do not make the next bulk",
	T.describe(res))
mt.abort(conn)
res = T.send(conn, T.eml("bulk-visible.eml"))
T.ok(T.passes(res), "abort after end of message, then a good message: passes", T.describe(res))
mt.disconnect(conn)

-- an inbound connection with two messages
conn = T.connect()
res = T.conninfo(conn, "203.0.113.25")
if res ~= nil then
	T.ok(T.passes(res), "inbound connection accepted at connect", T.describe(res))
else
	res = T.send(conn, T.eml("bulk-nolink.eml"))
	T.ok(T.passes(res), "inbound, message 1 without link passes", T.describe(res))
	res = T.send(conn, T.eml("bulk-hidden.eml"))
	T.ok(T.passes(res), "inbound, message 2 with hidden link passes", T.describe(res))
end
mt.disconnect(conn)

-- a connection closed in the middle of a message, then a normal one
conn = T.connect()
T.conninfo(conn, "127.0.0.1")
T.send(conn, T.eml("bulk-visible.eml"), { stop = "body", chunk = { 100 } })
mt.disconnect(conn, false)
conn, res = T.session("127.0.0.1", T.eml("bulk-nolink-text.eml"))
T.ok(refused(conn, res, "text/plain", "no unsubscribe link"),
	"after a connection dropped mid-message the daemon still answers", T.describe(res))
mt.disconnect(conn)
