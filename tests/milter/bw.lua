-- tests/milter/bw.lua - helpers of the miltertest scripts: TAP lines (the
-- runner numbers them), the connection to the daemon under test, messages
-- read from .eml files, and a driver that walks one message through the
-- milter steps the way Postfix does and stops at the first final reply.
--
-- Globals set by run.sh with miltertest -D: socket, datadir, and for the
-- scripts that signal the daemon: pid, conf, log.

local T = {}

T.PREFIX = "bulk mail must show a visible unsubscribe link"

-- ---------------------------------------------------------------- TAP
function T.diag(s)
	for line in tostring(s):gmatch("[^\n]+") do
		print("# " .. line)
	end
end

function T.ok(cond, desc, why)
	if cond then
		print("ok - " .. desc)
	else
		print("not ok - " .. desc)
		if why ~= nil then T.diag(why) end
	end
	return cond
end

function T.is(got, want, desc)
	return T.ok(got == want, desc,
		"got:  " .. tostring(got) .. "\nwant: " .. tostring(want))
end

-- ---------------------------------------------------------------- replies
local names = {}
local function name(k, v) if v ~= nil then names[v] = k end end
name("continue", SMFIR_CONTINUE)
name("accept", SMFIR_ACCEPT)
name("reject", SMFIR_REJECT)
name("tempfail", SMFIR_TEMPFAIL)
name("discard", SMFIR_DISCARD)
name("replycode", SMFIR_REPLYCODE)
name("skip", SMFIR_SKIP)

function T.rname(r)
	return names[r] or string.format("%q", string.char(r))
end

-- the reply lets the message go on (to the MTA: accepted)
function T.passes(res)
	return res.reply == SMFIR_CONTINUE or res.reply == SMFIR_ACCEPT
end

-- the refusal text the daemon gives for PART ("text/html") and FAILURE
-- ("no unsubscribe link", "link hidden by display:none", ...)
function T.refusal(part, failure)
	return T.PREFIX .. " (" .. part .. " part: " .. failure .. ")"
end

-- the message ended in an SMTP reply CODE XCODE TEXT at end of message
function T.replied(conn, res, code, xcode, text)
	return res.stage == "eom" and res.reply == SMFIR_REPLYCODE
		and mt.eom_check(conn, MT_SMTPREPLY, code, xcode, text)
end

-- the value of the verdict header added at end of message, or nil
function T.verdict_header(conn)
	return mt.getheader(conn, "X-Bulkwarden", 0)
end

-- the verdict header starts with WORDS ("pass", "would-refuse rule=unsubscribe"),
-- followed by the end or by details after a space
function T.verdict_is(conn, words)
	local v = T.verdict_header(conn)
	return v ~= nil and (v == words or v:sub(1, #words + 1) == words .. " ")
end

-- one line describing a result, for diagnostics
function T.describe(res)
	return "stage " .. res.stage .. ", reply " .. T.rname(res.reply)
end

-- ---------------------------------------------------------------- messages
local function readfile(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("a")
	f:close()
	return s
end

-- T.parse(text): { headers = { {name, value}, ... }, body = CRLF text }
function T.parse(text)
	text = text:gsub("\r\n", "\n")
	local head, body = text:match("^(.-)\n\n(.*)$")
	if head == nil then head, body = text, "" end
	local headers = {}
	for line in (head .. "\n"):gmatch("(.-)\n") do
		if line:match("^[ \t]") and #headers > 0 then
			local h = headers[#headers]
			h[2] = h[2] .. "\r\n" .. line
		else
			local n, v = line:match("^([^:]+):[ \t]?(.*)$")
			if n ~= nil then headers[#headers + 1] = { n, v } end
		end
	end
	return { headers = headers, body = body:gsub("\n", "\r\n") }
end

-- T.eml(name): a message of tests/data/msg
function T.eml(file)
	return T.parse(readfile(datadir .. "/msg/" .. file))
end

-- ---------------------------------------------------------------- driving
-- T.connect(): a connection to the daemon under test, negotiated
function T.connect(sock)
	local conn = mt.connect(sock or socket, 40, 0.25)
	if conn == nil then error("cannot connect to " .. tostring(sock or socket)) end
	local err = mt.negotiate(conn, nil, nil, nil)
	if err ~= nil then error("mt.negotiate: " .. err) end
	return conn
end

local function step(what, err)
	if err ~= nil then error("mt." .. what .. ": " .. tostring(err)) end
end

-- T.conninfo(conn, ip, host): the SMTP client; returns a result when the
-- connection is already decided (accepted or refused), else nil
function T.conninfo(conn, ip, host)
	if not mt.test_option(conn, SMFIP_NOCONNECT) then
		step("conninfo", mt.conninfo(conn, host or "client.example.org", ip))
		local r = mt.getreply(conn)
		if r ~= SMFIR_CONTINUE then return { stage = "connect", reply = r } end
	end
	if not mt.test_option(conn, SMFIP_NOHELO) then
		step("helo", mt.helo(conn, host or "client.example.org"))
		local r = mt.getreply(conn)
		if r ~= SMFIR_CONTINUE then return { stage = "helo", reply = r } end
	end
	return nil
end

-- split s into chunks of the given sizes (the last size repeats)
local function chunks(s, sizes)
	local out, i, k = {}, 1, 1
	while i <= #s do
		local n = sizes[k] or sizes[#sizes]
		out[#out + 1] = s:sub(i, i + n - 1)
		i = i + n
		if k < #sizes then k = k + 1 end
	end
	return out
end

-- T.send(conn, msg, opt): one message on an open connection.
--   opt.from     envelope sender (default from the From: address)
--   opt.rcpt     list of recipients (default { "alice@example.net" })
--   opt.auth     SASL login ({auth_authen}), as Postfix sends it with MAIL
--   opt.qid      queue id ({i}, sent with RCPT as Postfix does)
--   opt.chunk    body chunk sizes, e.g. { 7 } or { 100, 3 } (default: one)
--   opt.stop     "eoh": stop before end of header; "body": stop after the
--                first body chunk (to abort a message half way)
--   opt.each_rcpt go on after a refused RCPT, as an MTA does, while some
--                recipient is left; res.rcpt[addr] is each RCPT's reply
-- Returns { stage = step that gave the final reply, reply = SMFIR_* }.
function T.send(conn, msg, opt)
	opt = opt or {}
	local r
	local from = opt.from or "news@example.com"
	local rcpts = opt.rcpt or { "alice@example.net" }
	if opt.auth ~= nil then
		step("macro", mt.macro(conn, SMFIC_MAIL, "{auth_type}", "PLAIN",
			"{auth_authen}", opt.auth))
	end
	if not mt.test_option(conn, SMFIP_NOMAIL) then
		step("mailfrom", mt.mailfrom(conn, "<" .. from .. ">"))
		r = mt.getreply(conn)
		if r ~= SMFIR_CONTINUE then return { stage = "mail", reply = r } end
	end
	local replies, left = {}, 0
	for _, rcpt in ipairs(rcpts) do
		step("macro", mt.macro(conn, SMFIC_RCPT, "i", opt.qid or "4AbCdEf1234",
			"{rcpt_addr}", rcpt))
		if not mt.test_option(conn, SMFIP_NORCPT) then
			step("rcptto", mt.rcptto(conn, "<" .. rcpt .. ">"))
			r = mt.getreply(conn)
			replies[rcpt] = r
			if r == SMFIR_CONTINUE then
				left = left + 1
			elseif not opt.each_rcpt then
				return { stage = "rcpt", reply = r }
			end
		end
	end
	if opt.each_rcpt and left == 0 then return { stage = "rcpt", reply = r, rcpt = replies } end
	if mt.data ~= nil and not mt.test_option(conn, SMFIP_NODATA) then
		step("data", mt.data(conn))
		r = mt.getreply(conn)
		if r ~= SMFIR_CONTINUE then return { stage = "data", reply = r } end
	end
	if not mt.test_option(conn, SMFIP_NOHDRS) then
		for _, h in ipairs(msg.headers) do
			step("header", mt.header(conn, h[1], h[2]))
			r = mt.getreply(conn)
			if r ~= SMFIR_CONTINUE then return { stage = "header", reply = r } end
		end
	end
	if opt.stop == "eoh" then return { stage = "stopped", reply = SMFIR_CONTINUE } end
	if not mt.test_option(conn, SMFIP_NOEOH) then
		step("eoh", mt.eoh(conn))
		r = mt.getreply(conn)
		if r ~= SMFIR_CONTINUE then return { stage = "eoh", reply = r } end
	end
	if not mt.test_option(conn, SMFIP_NOBODY) then
		local parts = opt.chunk and chunks(msg.body, opt.chunk) or { msg.body }
		local sent = 0
		for _, c in ipairs(parts) do
			if opt.stop == "body" and sent > 0 then
				return { stage = "stopped", reply = SMFIR_CONTINUE }
			end
			step("bodystring", mt.bodystring(conn, c))
			sent = sent + #c
			r = mt.getreply(conn)
			if r == SMFIR_SKIP then break end
			if r ~= SMFIR_CONTINUE then return { stage = "body", reply = r } end
		end
	end
	step("eom", mt.eom(conn))
	return { stage = "eom", reply = mt.getreply(conn), rcpt = replies }
end

-- T.session(ip, msg, opt): a new connection from ip carrying one message;
-- returns conn, result
function T.session(ip, msg, opt)
	local conn = T.connect()
	local res = T.conninfo(conn, ip)
	if res == nil then res = T.send(conn, msg, opt) end
	return conn, res
end

-- ---------------------------------------------------------------- files
function T.readfile(path) return readfile(path) end

function T.writefile(path, s)
	local f = assert(io.open(path, "wb"))
	f:write(s)
	f:close()
end

-- T.wait(seconds, fn): poll fn every 0.2 s until it returns true
function T.wait(seconds, fn)
	local n = math.floor(seconds * 5)
	for _ = 1, n do
		if fn() then return true end
		mt.sleep(0.2)
	end
	return fn()
end

return T
