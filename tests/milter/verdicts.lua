-- tests/milter/verdicts.lua - the verdicts at protocol level, one
-- connection per message: outbound bulk mail with and without a visible
-- unsubscribe link, inbound and personal mail, outbound by SASL login,
-- bulk by recipient count (the daemon runs with BulkRecipients 3).
local T = dofile(libdir .. "/bw.lua")

local OUT, IN = "127.0.0.1", "192.0.2.10"
local PASS = "pass"
local many = { "a1@example.net", "a2@example.net", "a3@example.net", "a4@example.net" }

local cases = {
	-- what, client ip, message, options, expected verdict
	{ "outbound bulk with visible links passes", OUT, "bulk-visible.eml", nil, PASS },
	{ "outbound bulk, text part without link: 550", OUT, "bulk-nolink-text.eml", nil,
		{ "text/plain", "no unsubscribe link" } },
	{ "outbound bulk, alternative without link: 550", OUT, "bulk-nolink.eml", nil,
		{ "text/html", "no unsubscribe link" } },
	{ "outbound bulk, link hidden by display:none: 550", OUT, "bulk-hidden.eml", nil,
		{ "text/html", "link hidden by display:none" } },
	{ "outbound bulk, merge tag as link target: 550", OUT, "bulk-mergetag.eml", nil,
		{ "text/html", "unsubscribe link target is an unrendered merge tag" } },
	{ "outbound bulk over IPv6 loopback: 550", "::1", "bulk-nolink-text.eml", nil,
		{ "text/plain", "no unsubscribe link" } },
	{ "inbound bulk without link passes", IN, "bulk-nolink.eml", nil, PASS },
	{ "inbound bulk with hidden link passes", IN, "bulk-hidden.eml", nil, PASS },
	{ "outbound personal mail passes", OUT, "personal.eml", nil, PASS },
	{ "outbound personal mail to 3 recipients passes", OUT, "personal.eml",
		{ from = "bob@example.com", rcpt = { many[1], many[2], many[3] } }, PASS },
	{ "outbound mail to 4 recipients is bulk: 550", OUT, "personal.eml",
		{ from = "bob@example.com", rcpt = many }, { "text/plain", "no unsubscribe link" } },
	{ "authenticated client outside InternalHosts is outbound: 550", "198.51.100.7",
		"bulk-nolink-text.eml", { auth = "news" }, { "text/plain", "no unsubscribe link" } },
	{ "unauthenticated client outside InternalHosts passes", "198.51.100.7",
		"bulk-nolink-text.eml", nil, PASS },
}

for _, c in ipairs(cases) do
	local what, ip, file, opt, want = c[1], c[2], c[3], c[4], c[5]
	local conn, res = T.session(ip, T.eml(file), opt)
	if want == PASS then
		T.ok(T.passes(res), what, T.describe(res))
	else
		local text = T.refusal(want[1], want[2])
		T.ok(T.replied(conn, res, "550", "5.7.1", text), what,
			T.describe(res) .. "\nwant: 550 5.7.1 " .. text)
	end
	mt.disconnect(conn)
end
