-- tests/milter/monitor.lua - Mode monitor: nothing is refused, the verdict
-- is written into an X-Bulkwarden header ("would-refuse rule=unsubscribe
-- (why)" or "pass ...").
local T = dofile(libdir .. "/bw.lua")

local function hdr(conn)
	return "X-Bulkwarden: " .. tostring(T.verdict_header(conn))
end

local conn, res = T.session("127.0.0.1", T.eml("bulk-nolink-text.eml"))
T.ok(T.passes(res) and res.stage == "eom", "monitor: bulk without link is not refused", T.describe(res))
T.ok(T.verdict_is(conn, "would-refuse rule=unsubscribe"),
	"monitor: X-Bulkwarden: would-refuse rule=unsubscribe is added", hdr(conn))
T.ok(T.verdict_header(conn) == "would-refuse rule=unsubscribe (text/plain part: no unsubscribe link)",
	"monitor: the header says why", hdr(conn))
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("bulk-hidden.eml"), { chunk = { 9 } })
T.ok(T.passes(res) and T.verdict_is(conn, "would-refuse rule=unsubscribe"),
	"monitor: hidden link gives would-refuse, in 9-byte chunks", T.describe(res) .. "\n" .. hdr(conn))
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("bulk-visible.eml"))
T.ok(T.passes(res), "monitor: bulk with visible links passes", T.describe(res))
T.ok(T.verdict_is(conn, "pass"), "monitor: X-Bulkwarden: pass is added", hdr(conn))
mt.disconnect(conn)

conn, res = T.session("192.0.2.10", T.eml("bulk-nolink-text.eml"))
T.ok(T.passes(res), "monitor: inbound mail passes", T.describe(res))
T.ok(res.stage ~= "eom" or T.verdict_header(conn) == nil,
	"monitor: inbound mail gets no verdict header", hdr(conn))
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("personal.eml"), { from = "bob@example.com" })
T.ok(T.passes(res), "monitor: personal mail passes", T.describe(res))
T.ok(res.stage ~= "eom" or T.verdict_header(conn) == nil,
	"monitor: mail that is not bulk gets no verdict header", hdr(conn))
mt.disconnect(conn)
