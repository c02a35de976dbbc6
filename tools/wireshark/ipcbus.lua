-- SPDX-License-Identifier: MIT
--
-- A Wireshark/tshark dissector for the capture files of ipc-monitor --capture:
-- pcapng whose packets (link type LINKTYPE_USER0, 147) are one ipcbus message
-- each, a 32-byte record then the frame (man/ipc-monitor.1, "CAPTURE FORMAT";
-- the frame is protocol/PROTOCOL.md section 2).
--
--   tshark -X lua_script:ipcbus.lua -r FILE
--   wireshark -X lua_script:ipcbus.lua FILE
--
-- or copy it into Wireshark's personal plugins folder (~/.local/lib/wireshark/plugins/).
-- It takes over LINKTYPE_USER0 from Wireshark's "DLT User" table.
-- Display filters: ipcbus.type == "call", ipcbus.member == "Add", ipcbus.comm, ...

local ipcbus = Proto("ipcbus", "ipcbus message bus")

local RECORD_SIZE = 32
local PREFIX_SIZE = 16

local f = ipcbus.fields
-- the record ipc-monitor puts before the frame
f.rec_magic = ProtoField.string("ipcbus.record.magic", "Record magic")
f.rec_version = ProtoField.uint8("ipcbus.record.version", "Record version")
f.rec_size = ProtoField.uint8("ipcbus.record.size", "Record size")
f.n_fds = ProtoField.uint16("ipcbus.n_fds", "Descriptors carried (not captured)")
f.memfd_size = ProtoField.uint32("ipcbus.memfd_size", "Body in a sealed memfd of (bytes; 0: in the frame)")
f.comm = ProtoField.stringz("ipcbus.comm", "Sender's command")
f.rec_reserved = ProtoField.uint32("ipcbus.record.reserved", "Reserved", base.HEX)
-- the frame's prefix
f.magic = ProtoField.string("ipcbus.frame.magic", "Frame magic")
f.version = ProtoField.uint8("ipcbus.frame.version", "Protocol version")
f.reserved = ProtoField.uint8("ipcbus.frame.reserved", "Reserved")
f.frame_n_fds = ProtoField.uint16("ipcbus.frame.n_fds", "Descriptors in the frame")
f.header_len = ProtoField.uint32("ipcbus.header_len", "Header length")
f.body_len = ProtoField.uint32("ipcbus.body_len", "Body length")
-- the header and the body, as text (and as JSON below them)
f.header = ProtoField.string("ipcbus.header", "Header")
f.body = ProtoField.string("ipcbus.body", "Body")
-- header fields, read from the header's text, for display filters
f.type = ProtoField.string("ipcbus.type", "Type")
f.sender = ProtoField.string("ipcbus.sender", "Sender")
f.sender_uid = ProtoField.uint32("ipcbus.sender_uid", "Sender uid")
f.sender_pid = ProtoField.uint32("ipcbus.sender_pid", "Sender pid")
f.serial = ProtoField.uint32("ipcbus.serial", "Serial")
f.reply_serial = ProtoField.uint32("ipcbus.reply_serial", "Reply serial")
f.destination = ProtoField.string("ipcbus.destination", "Destination")
f.path = ProtoField.string("ipcbus.path", "Path")
f.interface = ProtoField.string("ipcbus.interface", "Interface")
f.member = ProtoField.string("ipcbus.member", "Member")
f.error = ProtoField.string("ipcbus.error", "Error")
f.timeout_ms = ProtoField.uint32("ipcbus.timeout_ms", "Timeout (ms)")

local malformed = ProtoExpert.new("ipcbus.malformed", "Malformed ipcbus record", expert.group.MALFORMED, expert.severity.ERROR)
ipcbus.experts = { malformed }

-- Wireshark's JSON dissector, when this Wireshark has one
local json = nil
do
        local ok, d = pcall(Dissector.get, "json")
        if ok then json = d end
end

-- A top-level string or integer member of the header (names never need escapes).
local function field_string(h, key)
        return h:match('"' .. key .. '"%s*:%s*"([^"\\]*)"')
end

local function field_integer(h, key)
        local v = h:match('"' .. key .. '"%s*:%s*(%d+)')
        return v and tonumber(v) or nil
end

-- The Info column: "call :1.4 -> org.example.Notes /org/example/Notes org.example.Notes.Add serial=7",
-- with fds=N and memfd=BYTES when the message carried descriptors or its body came in a memfd
local function summary(h, n_fds, memfd_size)
        local t = field_string(h, "type") or "?"
        local s = { t, field_string(h, "sender") or "-", "->", field_string(h, "destination") or "*" }
        if t == "call" or t == "signal" then
                local iface, member = field_string(h, "interface"), field_string(h, "member") or "?"
                s[#s + 1] = field_string(h, "path") or "?"
                s[#s + 1] = iface and (iface .. "." .. member) or member
        elseif t == "error" then
                s[#s + 1] = field_string(h, "error") or "?"
        end
        s[#s + 1] = "serial=" .. (field_integer(h, "serial") or "?")
        local reply = field_integer(h, "reply_serial")
        if reply then s[#s + 1] = "reply_serial=" .. reply end
        if n_fds > 0 then s[#s + 1] = "fds=" .. n_fds end
        if memfd_size > 0 then s[#s + 1] = "memfd=" .. memfd_size end
        return table.concat(s, " ")
end

-- The header's fields as filterable items (generated: read from its text).
local function add_header_fields(tree, range, h)
        for _, name in ipairs({ "type", "sender", "destination", "path", "interface", "member", "error" }) do
                local v = field_string(h, name)
                if v then tree:add(f[name], range, v):set_generated() end
        end
        for _, name in ipairs({ "sender_uid", "sender_pid", "serial", "reply_serial", "timeout_ms" }) do
                local v = field_integer(h, name)
                if v and v <= 0xffffffff then tree:add(f[name], range, v):set_generated() end
        end
end

-- JSON text in a subtree: Wireshark's JSON dissector, else the text alone.
local function add_json(tree, field, range, pinfo)
        local item = tree:add(field, range)
        if json then json:call(range:tvb(), pinfo, item) end
        return item
end

function ipcbus.dissector(buf, pinfo, root)
        local len = buf:len()
        if len < RECORD_SIZE or buf(0, 4):string() ~= "IPCM" then return 0 end
        local rec_size = buf(5, 1):uint()
        local n_fds = buf(6, 2):le_uint()
        local memfd_size = buf(8, 4):le_uint()
        local tree = root:add(ipcbus, buf())
        pinfo.cols.protocol = "IPCBUS"

        local rec = tree:add(ipcbus, buf(0, math.min(rec_size, len)), "Record")
        rec:set_text("Record (ipc-monitor)")
        rec:add(f.rec_magic, buf(0, 4))
        rec:add(f.rec_version, buf(4, 1))
        rec:add(f.rec_size, buf(5, 1))
        rec:add_le(f.n_fds, buf(6, 2))
        rec:add_le(f.memfd_size, buf(8, 4))
        rec:add(f.comm, buf(12, 16))
        rec:add_le(f.rec_reserved, buf(28, 4))
        if rec_size < RECORD_SIZE or len < rec_size + PREFIX_SIZE then
                tree:add_proto_expert_info(malformed, "record size or frame length impossible")
                pinfo.cols.info = "malformed record"
                return len
        end

        local o = rec_size
        local frame = tree:add(ipcbus, buf(o), "Frame")
        frame:set_text("Frame")
        frame:add(f.magic, buf(o, 4))
        frame:add(f.version, buf(o + 4, 1))
        frame:add(f.reserved, buf(o + 5, 1))
        frame:add_le(f.frame_n_fds, buf(o + 6, 2))
        frame:add_le(f.header_len, buf(o + 8, 4))
        frame:add_le(f.body_len, buf(o + 12, 4))
        local hl, bl = buf(o + 8, 4):le_uint(), buf(o + 12, 4):le_uint()
        if buf(o, 4):string() ~= "IPCB" or hl < 2 or o + PREFIX_SIZE + hl + bl ~= len then
                frame:add_proto_expert_info(malformed, "the frame's prefix does not match its length")
                pinfo.cols.info = "malformed frame"
                return len
        end

        local hrange = buf(o + PREFIX_SIZE, hl)
        local h = hrange:raw()
        local hitem = add_json(frame, f.header, hrange, pinfo)
        add_header_fields(hitem, hrange, h)
        if bl > 0 then add_json(frame, f.body, buf(o + PREFIX_SIZE + hl, bl), pinfo) end

        -- again after the JSON dissector, which sets its own
        pinfo.cols.protocol = "IPCBUS"
        pinfo.cols.src = field_string(h, "sender") or "-"
        pinfo.cols.dst = field_string(h, "destination") or "*"
        pinfo.cols.info = summary(h, n_fds, memfd_size)
        return len
end

local encaps = wtap_encaps or wtap
DissectorTable.get("wtap_encap"):add(encaps.USER0, ipcbus)
