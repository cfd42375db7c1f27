-- tests/milter/consent.lua - consent at the milter protocol: a refused
-- RCPT per recipient without consent when the sender is a declared bulk
-- sender; recipients removed at end of message (SMFIR_DELRCPT) when bulk is
-- known only from the headers; a suppression beats consent; mail to the
-- unsubscribe address with a valid token is consumed (SMFIR_DISCARD).
-- Records (written by run.sh with bulkwardenctl): example.com ->
-- ann@example.net (double opt-in), cat@example.net (import, then a
-- complaint suppression); example.org -> ann@example.net. Global: token,
-- a token for (example.com, ann@example.net).
local T = dofile(libdir .. "/bw.lua")

local conn, res = T.session("127.0.0.1", T.eml("bulk-visible.eml"),
	{ rcpt = { "ann@example.net", "dan@example.net", "cat@example.net" }, each_rcpt = true })
T.is(T.rname(res.rcpt["ann@example.net"]), "continue", "consent: ann (double opt-in) accepted at RCPT")
T.is(T.rname(res.rcpt["dan@example.net"]), "replycode", "consent: dan (no record) refused at RCPT")
T.is(T.rname(res.rcpt["cat@example.net"]), "replycode", "consent: cat (suppressed by a complaint) refused at RCPT")
T.ok(res.stage == "eom" and T.passes(res), "consent: the message goes on for ann", T.describe(res))
T.ok(not mt.eom_check(conn, MT_RCPTDELETE, "<ann@example.net>"), "consent: ann is not removed")
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("bulk-visible.eml"), { from = "letters@example.org",
	rcpt = { "ann@example.net", "dan@example.net", "eve@example.net" }, each_rcpt = true })
T.is(T.rname(res.rcpt["dan@example.net"]), "continue",
	"late bulk: RCPT goes on while bulk is not known yet")
T.ok(res.stage == "eom" and T.passes(res), "late bulk: the message goes on", T.describe(res))
T.ok(mt.eom_check(conn, MT_RCPTDELETE, "<dan@example.net>"), "late bulk: dan removed at end of message")
T.ok(mt.eom_check(conn, MT_RCPTDELETE, "<eve@example.net>"), "late bulk: eve removed at end of message")
T.ok(not mt.eom_check(conn, MT_RCPTDELETE, "<ann@example.net>"), "late bulk: ann stays")
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("bulk-visible.eml"), { from = "letters@example.org",
	rcpt = { "dan@example.net" } })
T.ok(T.replied(conn, res, "550", "5.7.1",
	"<dan@example.net>: no consent for bulk mail from example.org (no consent record)"),
	"late bulk to nobody with consent: 550 5.7.1 naming the recipient", T.describe(res))
mt.disconnect(conn)

conn, res = T.session("192.0.2.10", T.eml("personal.eml"), { from = "ann@example.net",
	rcpt = { "unsubscribe+" .. token .. "@lists.example.com" } })
T.is(T.rname(res.reply), "discard", "unsubscribe mail with a valid token is consumed")
mt.disconnect(conn)

conn, res = T.session("127.0.0.1", T.eml("bulk-visible.eml"), { rcpt = { "ann@example.net" } })
T.ok(res.stage == "rcpt" and res.reply == SMFIR_REPLYCODE,
	"after the unsubscribe: the next message to ann is refused at RCPT", T.describe(res))
mt.disconnect(conn)
