-- tests/milter/chunks.lua - the body arrives in pieces: the verdict must
-- not depend on where the MTA cuts it (inside a tag, a word, a URL, a
-- quoted-printable soft break, a CRLF).
local T = dofile(libdir .. "/bw.lua")

local OUT = "127.0.0.1"

-- a message whose link comes after more than 64 KB of text: several
-- chunks of the largest size an MTA sends
local big = T.eml("bulk-nolink-text.eml")
local filler = {}
for i = 1, 1500 do
	filler[#filler + 1] = string.format("Line %04d of the catalogue: seeds, bulbs, tools and soil.\r\n", i)
end
big.body = big.body .. table.concat(filler) ..
	"\r\nUnsubscribe: https://example.com/u/big-3d1f\r\n"
local bignolink = T.eml("bulk-nolink-text.eml")
bignolink.body = bignolink.body .. table.concat(filler)

local cases = {
	{ "visible links, 7-byte chunks: passes", "bulk-visible.eml", { 7 }, "pass" },
	{ "visible links, 1-byte chunks: passes", "bulk-visible.eml", { 1 }, "pass" },
	{ "visible links, 3 then 64-byte chunks: passes", "bulk-visible.eml", { 3, 64 }, "pass" },
	{ "hidden link, 5-byte chunks: 550", "bulk-hidden.eml", { 5 },
		{ "text/html", "link hidden by display:none" } },
	{ "no link, 64/1/13-byte chunks: 550", "bulk-nolink.eml", { 64, 1, 13 },
		{ "text/html", "no unsubscribe link" } },
	{ "merge tag, 2-byte chunks: 550", "bulk-mergetag.eml", { 2 },
		{ "text/html", "unsubscribe link target is an unrendered merge tag" } },
	{ "link after 80 KB, 65535-byte chunks: passes", big, { 65535 }, "pass" },
	{ "no link in 80 KB, 65535-byte chunks: 550", bignolink, { 65535 },
		{ "text/plain", "no unsubscribe link" } },
}

for _, c in ipairs(cases) do
	local what, msg, sizes, want = c[1], c[2], c[3], c[4]
	if type(msg) == "string" then msg = T.eml(msg) end
	local conn, res = T.session(OUT, msg, { chunk = sizes })
	if want == "pass" then
		T.ok(T.passes(res), what, T.describe(res))
	else
		local text = T.refusal(want[1], want[2])
		T.ok(T.replied(conn, res, "550", "5.7.1", text), what,
			T.describe(res) .. "\nwant: 550 5.7.1 " .. text)
	end
	mt.disconnect(conn)
end
