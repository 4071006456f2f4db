#!/usr/bin/env python3
"""An independent decoder of the tether wire protocol.

Written from proto/PROTOCOL.md alone, sharing no code with proto/, to show
that the document is complete and that what tether-sim sends is what the
document says. It checks:

  --doc FILE        every test vector in the document, `vector` and
                    `update-vector` lines alike: COBS, CRC-32C, header and
                    fields, the frame encoded again from its bytes (and,
                    for the update vectors, from the document's fields),
                    the image header's magic, version and CRC, plus the CRC
                    check value, the COBS examples of section 3 and the
                    layout tables of the update messages;
  --sim PATH        a live tether-sim: every frame on its pty decodes, seq
                    numbers run on, batches tile time, heap figures agree;
                    then one without update slots answers UPD_QUERY with
                    NACK UNSUPPORTED, and one with them (--flash) takes an
                    upload of its own program as board 1's body through
                    every rule of section 4's firmware update: answers,
                    errors, resume, go-back, the pause of telemetry, the
                    test boot (HELLO caps bit 5), revert and confirm;
  --recorded B C    a recorded stream B decodes to the good frames listed in
                    its check file C;
  --efficiency      (with --sim) ADC samples per second through the sim
                    paced at 115200 baud, against the 5,760 a line of pure
                    samples would carry.

Exits 0 when every check passes and prints 'N passed, 0 failed', followed
by what was covered: vectors and update vectors read from the document,
update requests sent to the live simulator, and so on.
"""

import argparse
import hashlib
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty

# ---- Section 2: CRC-32C, reflected, bit by bit from the parameters ----
CRC_POLY_REFLECTED = 0x82F63B78  # 0x1edc6f41 bit-reversed


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (CRC_POLY_REFLECTED if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# ---- Section 3: COBS ----
def cobs_decode(block):
    """Decodes one block (no delimiter); raises ValueError on bad input."""
    out = bytearray()
    i = 0
    while i < len(block):
        code = block[i]
        if code == 0:
            raise ValueError("zero inside a block")
        data = block[i + 1:i + code]
        if len(data) != code - 1:
            raise ValueError("block ends inside a group")
        out += data
        i += code
        if code != 0xFF and i < len(block):
            out.append(0)
    return bytes(out)


def cobs_encode(data):
    """Encodes one block (without its delimiter) as section 3 describes."""
    out = bytearray()
    group = bytearray()
    group_open = True  # the block always has a last group, maybe empty
    for b in data:
        group_open = True
        if b == 0:
            out.append(len(group) + 1)
            out += group
            group = bytearray()
            continue
        group.append(b)
        if len(group) == 254:
            out.append(0xFF)
            out += group
            group = bytearray()
            group_open = False  # a new group only if more input follows
    if group_open:
        out.append(len(group) + 1)
        out += group
    return bytes(out)


# ---- Section 2: the frame ----
FRAME_MIN, FRAME_MAX = 8, 254


class Frame:
    def __init__(self, raw):
        self.version = raw[0]
        self.type = raw[1]
        self.seq = raw[2] | raw[3] << 8
        self.payload = raw[4:-4]


def parse_frame(raw):
    """Returns a Frame or an error name, following section 3 step 4-5."""
    if len(raw) > FRAME_MAX:
        return "oversize"
    if len(raw) < FRAME_MIN:
        return "cobs"
    if crc32c(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
        return "crc"
    if raw[0] != 1:
        return "version"
    return Frame(raw)


def encode_frame(msg_type, seq, payload, version=1):
    """The bytes on the wire of one frame, from its COBS code byte through
    the 0x00 delimiter."""
    raw = bytes([version, msg_type, seq & 0xFF, seq >> 8]) + bytes(payload)
    raw += crc32c(raw).to_bytes(4, "little")
    return cobs_encode(raw) + b"\x00"


def split_stream(data):
    """Yields a Frame or an error name per block of a byte stream."""
    for block in data.split(b"\x00")[:-1]:
        if not block:
            continue
        try:
            raw = cobs_decode(block)
        except ValueError:
            yield "cobs"
            continue
        yield parse_frame(raw)


# ---- Section 4: messages ----
def u16(p, o):
    return p[o] | p[o + 1] << 8


def u32(p, o):
    return int.from_bytes(p[o:o + 4], "little")


NAMES = {0x01: "HELLO", 0x02: "ADC", 0x03: "HEAP", 0x04: "LOG",
         0x05: "PONG", 0x06: "ACK", 0x07: "NACK", 0x08: "STATS",
         0x40: "PING", 0x41: "SET_RATE", 0x42: "SET_CHANNELS",
         0x43: "SET_HEAP_PERIOD", 0x44: "GET_HELLO", 0x45: "REBOOT",
         0x46: "SET_SCENARIO",
         0x80: "UPD_BEGIN", 0x81: "UPD_DATA", 0x82: "UPD_END",
         0x83: "UPD_BOOT", 0x84: "UPD_CONFIRM", 0x85: "UPD_QUERY",
         0x86: "UPD_ABORT", 0x90: "UPD_STATUS"}
TYPES = {name: t for t, name in NAMES.items()}

# HELLO caps bits that the update checks look at.
CAP_UPDATE = 1 << 4   # takes UPD_* requests
CAP_TESTING = 1 << 5  # the running image is on test, not yet confirmed

# NACK errors (section 4, ACK and NACK).
NACK_UNKNOWN_TYPE, NACK_BAD_LENGTH, NACK_BAD_VALUE = 1, 2, 3
NACK_UNSUPPORTED = 5

# ---- Section 4: firmware update ----
# Layouts in the document's own notation (size column, field column); the
# offsets follow from the sizes, and check_doc compares both with the
# document's tables so that a slip in copying them shows.
IMAGE_HEADER = [("u32", "magic"), ("u8", "hdr_version"), ("u8", "board"),
                ("u16", "flags"), ("u32", "fw_version"),
                ("u32", "build_id"), ("u32", "body_len"),
                ("u32", "load_addr"), ("u32", "entry"), ("32", "hash"),
                ("u32", "hdr_crc")]
UPD_DATA_LAYOUT = [("u32", "offset"), ("1..242", "data")]
UPD_STATUS_LAYOUT = [("u16", "req_seq"), ("u8", "req_type"),
                     ("u8", "state"), ("u8", "error"), ("u8", "boot"),
                     ("u16", "chunk_max"), ("u32", "stored"),
                     ("u32", "body_len"), ("u32", "fw_version"),
                     ("u8", "window"), ("u8", "reserved")]
IMAGE_MAGIC = 0x4D495454
IMAGE_HEADER_LEN = 64
IMAGE_CRC_SPAN = 60      # hdr_crc covers bytes 0..59
UPD_STATUS_LEN = 22
UPD_CHUNK_MAX = 242      # FRAME_PAYLOAD_MAX less UPD_DATA's u32 offset
UPD_REQUESTS = range(0x80, 0x87)

UPD_STATES = ["idle", "receiving", "verified", "booting"]
UPD_IDLE, UPD_RECEIVING, UPD_VERIFIED, UPD_BOOTING = range(len(UPD_STATES))
UPD_ERRORS = ["ok", "bad_header", "wrong_board", "too_large", "bad_offset",
              "bad_state", "bad_hash", "write_failed", "not_on_test",
              "bad_layout"]
(UPD_OK, UPD_BAD_HEADER, UPD_WRONG_BOARD, UPD_TOO_LARGE, UPD_BAD_OFFSET,
 UPD_BAD_STATE, UPD_BAD_HASH, UPD_WRITE_FAILED, UPD_NOT_ON_TEST,
 UPD_BAD_LAYOUT) = range(len(UPD_ERRORS))
BOOT_ON_TEST, BOOT_REVERTED = 1 << 0, 1 << 1
BOOT_SLOT1, BOOT_FACTORY = 1 << 2, 1 << 3
BOOT_WHERE = BOOT_SLOT1 | BOOT_FACTORY  # neither: slot 0

FIELD_SIZE = {"u8": 1, "u16": 2, "u32": 4, "32": 32}
# Fields that are byte strings rather than numbers; section 6 writes them
# as hex digits in wire order (see byte_field below).
BYTE_FIELDS = {"hash", "data"}


def need(p, n, what):
    if len(p) < n:
        raise ValueError("%s payload of %d bytes, needs %d" % (what, len(p), n))


def layout_offsets(layout):
    """Yields (offset, size, name) for a layout, in order."""
    off = 0
    for size, name in layout:
        yield off, size, name
        off += FIELD_SIZE.get(size, 0)


def decode_layout(layout, p):
    m = {}
    for off, size, name in layout_offsets(layout):
        if size in ("u8", "u16", "u32"):
            m[name] = int.from_bytes(p[off:off + FIELD_SIZE[size]], "little")
        elif size == "32":
            m[name] = bytes(p[off:off + 32])
        else:  # the rest of the payload
            m[name] = bytes(p[off:])
    return m


def encode_layout(layout, m):
    out = bytearray()
    for off, size, name in layout_offsets(layout):
        assert len(out) == off
        v = m.get(name, 0)  # absent fields are the document's zeros
        if size in ("u8", "u16", "u32"):
            out += v.to_bytes(FIELD_SIZE[size], "little")
        else:
            assert isinstance(v, bytes) and (size != "32" or len(v) == 32)
            out += v
    return bytes(out)


class HeaderError(ValueError):
    """An image header refused; reason is "magic", "version" or "crc"."""

    def __init__(self, reason, text):
        super().__init__(text)
        self.reason = reason


def parse_image_header(p):
    """Decodes the 64-byte image header, checking its magic, then its
    version, then its CRC, in the order the document gives."""
    need(p, IMAGE_HEADER_LEN, "image header")
    h = decode_layout(IMAGE_HEADER, p)
    if h["magic"] != IMAGE_MAGIC:
        raise HeaderError("magic", "image magic 0x%08x" % h["magic"])
    if h["hdr_version"] != 1:
        raise HeaderError("version", "image header version %d"
                          % h["hdr_version"])
    crc = crc32c(p[:IMAGE_CRC_SPAN])
    if crc != h["hdr_crc"]:
        raise HeaderError("crc", "image header CRC 0x%08x, computed 0x%08x"
                          % (h["hdr_crc"], crc))
    return h


def encode_image_header(h):
    """The header of the fields in h, its hdr_crc computed."""
    raw = encode_layout(IMAGE_HEADER, dict(h, hdr_crc=0))
    crc = crc32c(raw[:IMAGE_CRC_SPAN])
    return raw[:IMAGE_CRC_SPAN] + crc.to_bytes(4, "little")


def encode_message(name, m):
    """The payload of an update message or an empty command from its
    fields (the direction wirecheck itself sends, plus UPD_STATUS)."""
    if name == "UPD_BEGIN":
        return encode_image_header(m)
    if name == "UPD_DATA":
        return encode_layout(UPD_DATA_LAYOUT, m)
    if name == "UPD_STATUS":
        return encode_layout(UPD_STATUS_LAYOUT, m)
    if name in ("UPD_END", "UPD_BOOT", "UPD_CONFIRM", "UPD_QUERY",
                "UPD_ABORT", "GET_HELLO", "REBOOT"):
        return b""
    raise ValueError("no encoder for %s" % name)


def parse_message(t, p):
    name = NAMES.get(t)
    if name is None:
        raise ValueError("unknown type 0x%02x" % t)
    if name == "HELLO":
        need(p, 30, name)
        return dict(proto_version=p[0], board=p[1], reset_cause=p[2],
                    adc_bits=p[3], adc_channels=p[4], caps=u16(p, 6),
                    fw_version=u32(p, 8), build_id=u32(p, 12),
                    heap_total=u32(p, 16), uptime_ms=u32(p, 20),
                    time_us=u32(p, 24), rx_max=u16(p, 28))
    if name == "ADC":
        need(p, 11, name)
        m = dict(t0_us=u32(p, 0), period_us=u32(p, 4), mask=u16(p, 8),
                 scans=p[10])
        nch = bin(m["mask"]).count("1")
        if m["mask"] == 0 or m["scans"] == 0 or m["period_us"] == 0:
            raise ValueError("ADC header out of range")
        if len(p) != 11 + 2 * nch * m["scans"]:
            raise ValueError("ADC length %d does not match header" % len(p))
        m["values"] = [u16(p, 11 + 2 * i) for i in range(nch * m["scans"])]
        return m
    if name == "HEAP":
        need(p, 40, name)
        keys = ["t_us", "total", "free", "used", "largest", "min_free",
                "allocs", "frees", "failures"]
        m = {k: u32(p, 4 * i) for i, k in enumerate(keys)}
        m["blocks"] = u16(p, 36)
        m["scenario"] = p[38]
        if (m["used"] > m["total"] or m["free"] != m["total"] - m["used"]
                or m["largest"] > m["free"] or m["min_free"] > m["total"]):
            raise ValueError("inconsistent HEAP %r" % m)
        return m
    if name == "LOG":
        need(p, 5, name)
        if p[4] > 7 or len(p) - 5 > 64:
            raise ValueError("LOG out of range")
        return dict(t_us=u32(p, 0), level=p[4], text=p[5:].decode("utf-8"))
    if name == "PONG":
        need(p, 8, name)
        return dict(token=u32(p, 0), t_us=u32(p, 4))
    if name in ("ACK", "NACK"):
        need(p, 3 if name == "ACK" else 4, name)
        m = dict(cmd_seq=u16(p, 0), cmd_type=p[2])
        if name == "NACK":
            m["error"] = p[3]
            if p[3] == 0:
                raise ValueError("NACK with error 0")
        return m
    if name == "STATS":
        need(p, 40, name)
        keys = ["t_us", "tx_frames", "tx_dropped", "rx_frames_ok",
                "rx_crc_errors", "rx_cobs_errors", "rx_oversize",
                "rx_version_errors", "rx_overruns", "scans_missed"]
        return {k: u32(p, 4 * i) for i, k in enumerate(keys)}
    if name == "PING":
        need(p, 4, name)
        return dict(token=u32(p, 0))
    if name == "SET_RATE":
        need(p, 2, name)
        return dict(rate_hz=u16(p, 0))
    if name == "SET_CHANNELS":
        need(p, 2, name)
        return dict(mask=u16(p, 0))
    if name == "SET_HEAP_PERIOD":
        need(p, 2, name)
        return dict(period_ms=u16(p, 0))
    if name == "SET_SCENARIO":
        need(p, 5, name)
        return dict(scenario=p[0], param=u32(p, 1))
    if name == "UPD_BEGIN":
        return parse_image_header(p)
    if name == "UPD_DATA":
        need(p, 5, name)
        return decode_layout(UPD_DATA_LAYOUT, p)
    if name == "UPD_STATUS":
        need(p, UPD_STATUS_LEN, name)
        m = decode_layout(UPD_STATUS_LAYOUT, p)
        if (m["state"] > UPD_BOOTING or m["window"] == 0
                or m["stored"] > m["body_len"]):
            raise ValueError("UPD_STATUS out of range %r" % m)
        return m
    return {}  # GET_HELLO, REBOOT, UPD_END, BOOT, CONFIRM, QUERY, ABORT


# ---- Checks ----
class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.counts = {}  # what was covered, for the summary line

    def expect(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s" % what)
        return ok

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n


def parse_value(v):
    """A number, a comma-separated list of numbers, or else text."""
    try:
        if "," in v:
            return [int(x, 0) for x in v.split(",")]
        return int(v, 0)
    except ValueError:
        return v


def byte_field(v):
    """A byte-string field of a vector: hex digits, two a byte, in wire
    order (the document's hash and data are written so, although section
    6 says numbers are decimal unless written 0x...)."""
    try:
        return bytes.fromhex(v)
    except ValueError:
        return v  # compares unequal to the decoded bytes: a failed check


def vector_fields(fields):
    want = dict(kv.split("=", 1) for kv in shlex.split(fields))
    return {k: byte_field(v) if k in BYTE_FIELDS else parse_value(v)
            for k, v in want.items()}


def doc_table(text, heading):
    """The (offset, size, field) rows of the first table after a heading
    line of the document."""
    lines = text.splitlines()
    if heading not in lines:
        return None
    rows = []
    for line in lines[lines.index(heading) + 1:]:
        if rows and not line.startswith("|"):
            break
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0].isdigit():
            rows.append((int(cells[0]), cells[1], cells[2]))
    return rows


def check_layouts(text, c):
    for heading, layout, total in [
            ("#### The image header (UPD_BEGIN's payload)", IMAGE_HEADER,
             IMAGE_HEADER_LEN),
            ("#### 0x81 UPD_DATA", UPD_DATA_LAYOUT, None),
            ("#### 0x90 UPD_STATUS", UPD_STATUS_LAYOUT, UPD_STATUS_LEN)]:
        rows = doc_table(text, heading)
        mine = list(layout_offsets(layout))
        c.expect(rows == mine, "layout under %r: document %r, wirecheck %r"
                 % (heading, rows, mine))
        if total is not None:
            end = mine[-1][0] + FIELD_SIZE[mine[-1][1]]
            c.expect(end == total, "%s: fields end at %d, not %d"
                     % (heading, end, total))


def check_vector(c, kind, vid, tname, fields, wire):
    """Checks one vector line and returns (fields, decoded) or None."""
    w = bytes.fromhex(wire)
    what = "%s %s" % (kind, vid)
    c.expect(w[-1] == 0 and 0 not in w[:-1], what + ": one delimiter")
    frames = list(split_stream(w))
    if not (len(frames) == 1 and isinstance(frames[0], Frame)):
        c.expect(False, what + ": decodes to one good frame: %r" % frames)
        return None
    f = frames[0]
    c.expect(NAMES.get(f.type) == tname, what + ": type")
    c.expect(encode_frame(f.type, f.seq, f.payload) == w,
             what + ": the frame encodes back to the same bytes")
    want = vector_fields(fields)
    c.expect(f.seq == want.pop("seq", None), what + ": seq")
    try:
        got = parse_message(f.type, f.payload)
    except ValueError as e:
        c.expect(False, "%s: payload does not decode: %s" % (what, e))
        return None
    for k, v in want.items():
        c.expect(got.get(k) == v, "%s: %s = %r, document says %r"
                 % (what, k, got.get(k), v))
    if kind == "update-vector":
        # The other direction: the document's fields alone (absent ones
        # are the document's zeros; hdr_crc is computed) give the wire.
        try:
            mine = encode_frame(f.type, f.seq, encode_message(tname, want))
        except (ValueError, AttributeError, AssertionError) as e:
            mine = "no encoding: %s" % e
        c.expect(mine == w, "%s: encoded from the document's fields: %s"
                 % (what, mine.hex(" ") if isinstance(mine, bytes) else mine))
    return want, got


def check_header_rules(c, begin):
    """A receiver checks the magic, then the version, then the CRC: each
    damage of the vector's header is refused for its own reason."""
    def reason(p):
        try:
            parse_image_header(p)
            return "accepted"
        except HeaderError as e:
            return e.reason
        except ValueError as e:
            return "short: %s" % e
    good = bytes(begin)
    bad_magic = b"\x54\x54\x49\x4e" + good[4:]
    v2 = bytearray(good)
    v2[4] = 2  # the CRC no longer matches either: version is checked first
    bad_crc = bytearray(good)
    bad_crc[28] ^= 0x01  # one bit of the hash
    for damaged, expected in [(bad_magic, "magic"), (bytes(v2), "version"),
                              (bytes(bad_crc), "crc"),
                              (good[:-1], "short")]:
        got = reason(damaged)
        c.expect(got.startswith(expected), "image header %s refused as %s"
                 " (got %s)" % (expected, expected, got))
    c.expect(reason(good + b"\x00" * 4) == "accepted",
             "image header with 4 bytes appended still accepted")


def check_update_rules(c, data_payload, status_payload):
    """The receiver's own rules of section 4 on damaged copies of the
    vectors' payloads."""
    def refused(t, p):
        try:
            parse_message(t, p)
            return False
        except ValueError:
            return True
    c.expect(refused(0x81, data_payload[:4]), "UPD_DATA with no data refused")
    s = bytearray(status_payload)
    for off, value, what in [(3, 4, "state 4"), (20, 0, "window 0")]:
        bad = bytearray(s)
        bad[off] = value
        c.expect(refused(0x90, bytes(bad)), "UPD_STATUS with %s refused"
                 % what)
    bad = bytearray(s)
    bad[8:12] = (u32(s, 12) + 1).to_bytes(4, "little")
    c.expect(refused(0x90, bytes(bad)), "UPD_STATUS with stored > body_len"
             " refused")
    c.expect(refused(0x90, bytes(s[:UPD_STATUS_LEN - 1])),
             "UPD_STATUS of 21 bytes refused")
    c.expect(not refused(0x90, bytes(s) + b"\x07"),
             "UPD_STATUS with a byte appended still accepted")


def check_doc(path, c):
    text = open(path, encoding="utf-8").read()
    c.expect(crc32c(b"123456789") == 0xE3069283, "CRC-32C check value")
    for plain, enc in [(b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
                       (b"\x00", b"\x01\x01"),
                       (b"\x11" * 253 + b"\x00", b"\xfe" + b"\x11" * 253 + b"\x01"),
                       (b"\x11" * 254, b"\xff" + b"\x11" * 254),
                       (b"\x11" * 255, b"\xff" + b"\x11" * 254 + b"\x02\x11")]:
        c.expect(cobs_decode(enc) == plain, "COBS example %s" % enc[:4].hex())
        c.expect(cobs_encode(plain) == enc,
                 "COBS example %s encodes" % enc[:4].hex())
    c.expect(cobs_encode(b"") == b"\x01", "COBS of no input is one byte")
    check_layouts(text, c)
    vectors = re.findall(r"^(vector|update-vector) (\S+) (\S+) (.*)\n"
                         r"wire ([0-9a-f ]+)$", text, re.M)
    lines = re.findall(r"^(?:vector|update-vector) ", text, re.M)
    c.expect(len(lines) == len(vectors), "every vector line is followed by"
             " its wire line (%d lines, %d read)" % (len(lines), len(vectors)))
    plain = [v for v in vectors if v[0] == "vector"]
    upd = [v for v in vectors if v[0] == "update-vector"]
    c.expect(len(plain) >= 15, "at least 15 vectors (found %d)" % len(plain))
    c.count("vectors", len(plain))
    decoded = {}
    for kind, vid, tname, fields, wire in vectors:
        r = check_vector(c, kind, vid, tname, fields, wire)
        if kind == "update-vector":
            c.count("update vectors")
            if r is not None:
                decoded.setdefault(tname, []).append((r[1], wire))
    names = {v[2] for v in upd}
    missing = [NAMES[t] for t in sorted(NAMES)
               if t >= 0x80 and NAMES[t] not in names]
    c.expect(not missing, "an update-vector for every update message"
             " (missing %s)" % missing)
    if "UPD_BEGIN" in decoded and "UPD_DATA" in decoded:
        # Section 6: the image file is the UPD_BEGIN payload followed by
        # the UPD_DATA vector's body, whose SHA-256 is the header's hash.
        h = decoded["UPD_BEGIN"][0][0]
        body = decoded["UPD_DATA"][0][0]["data"]
        c.expect(hashlib.sha256(body).digest() == h["hash"],
                 "update vectors: hash is the SHA-256 of the UPD_DATA body")
        c.expect(h["body_len"] == len(body), "update vectors: body_len is"
                 " the length of the UPD_DATA body")
        begin_payload = split_frame_payload(decoded["UPD_BEGIN"][0][1])
        image = begin_payload + body
        c.expect(hashlib.sha256(image[IMAGE_HEADER_LEN:]).digest()
                 == parse_image_header(image[:IMAGE_HEADER_LEN])["hash"],
                 "update vectors: the image file's body matches its header")
        check_header_rules(c, begin_payload)
    if "UPD_DATA" in decoded and "UPD_STATUS" in decoded:
        check_update_rules(c, split_frame_payload(decoded["UPD_DATA"][0][1]),
                           split_frame_payload(decoded["UPD_STATUS"][0][1]))


def split_frame_payload(wire):
    """The payload of the one frame in a vector's wire bytes."""
    return next(split_stream(bytes.fromhex(wire))).payload


def check_recorded(binpath, chkpath, c):
    data = open(binpath, "rb").read()
    mine = ["ok %d %d %d" % (f.type, f.seq, len(f.payload))
            for f in split_stream(data) if isinstance(f, Frame)]
    theirs = [l.strip() for l in open(chkpath) if l.startswith("ok ")]
    c.expect(mine == theirs and len(mine) > 0,
             "recorded stream: %d good frames here, %d in the check file"
             % (len(mine), len(theirs)))


class Sim:
    """tether-sim under our control; always stopped on exit.  It runs in a
    process group of its own, because a test boot may replace or add to
    the process, and close() stops that whole group."""

    def __init__(self, path, args):
        self.proc = subprocess.Popen([path] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 5)
        if not ready:
            self.close()
            raise RuntimeError("tether-sim printed no pty path")
        self.pty = self.proc.stdout.readline().decode().strip()
        self.fd = os.open(self.pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)  # keep what is already queued

    def read_for(self, seconds):
        data = bytearray()
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return bytes(data)
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                data += os.read(self.fd, 65536)

    def signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def close(self):
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)
            self.fd = None
        self.signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        # Whatever else of the group is left gets 3 s, then SIGKILL.
        end = time.monotonic() + 3
        while self.signal_group(0) and time.monotonic() < end:
            time.sleep(0.05)
        self.signal_group(signal.SIGKILL)
        self.proc.stdout.close()


def check_sim(path, c):
    sim = Sim(path, ["--heap-period", "200", "--channels", "6",
                     "--rate", "500", "--seed", "3"])
    try:
        data = sim.read_for(2.0)
    finally:
        sim.close()
    items = list(split_stream(data))
    frames = [f for f in items if isinstance(f, Frame)]
    errors = [f for f in items if not isinstance(f, Frame)]
    c.expect(not errors, "sim: no damaged frames on a clean line (%r)"
             % errors[:5])
    c.expect(len(frames) > 20, "sim: frames arrived (%d)" % len(frames))
    if not frames:
        return
    c.expect(frames[0].type == 0x01 and frames[0].seq == 0,
             "sim: HELLO with seq 0 comes first")
    seqs = [f.seq for f in frames]
    c.expect(seqs == list(range(len(seqs))), "sim: seq numbers run on")
    hello = parse_message(frames[0].type, frames[0].payload)
    kinds = set()
    next_t0 = None
    for f in frames:
        try:
            m = parse_message(f.type, f.payload)
        except ValueError as e:
            c.expect(False, "sim: %s frame seq %d: %s"
                     % (NAMES.get(f.type), f.seq, e))
            continue
        kinds.add(NAMES[f.type])
        if f.type == 0x02:
            c.expect(all(v < 1 << hello["adc_bits"] for v in m["values"]),
                     "sim: ADC values fit adc_bits")
            if next_t0 is not None:
                c.expect(m["t0_us"] == next_t0,
                         "sim: batches tile time (t0 %d, expected %d)"
                         % (m["t0_us"], next_t0))
            next_t0 = (m["t0_us"] + m["scans"] * m["period_us"]) & 0xFFFFFFFF
        if f.type == 0x03:
            c.expect(m["total"] == hello["heap_total"],
                     "sim: HEAP total matches HELLO")
    c.expect({"HELLO", "LOG", "ADC", "HEAP", "STATS"} <= kinds,
             "sim: all periodic kinds seen (%s)" % sorted(kinds))


# ---- Live firmware update (section 4, "Firmware update") ----
# How long to wait for an answer.  "Timing" allows 5 s for BEGIN and END
# and 1 s for the others; these are twice that, because what is checked
# here is that the answers come and what they say, not how fast a loaded
# test machine delivers them.
UPD_SLOW_S, UPD_FAST_S = 10.0, 2.0
RESET_S = 5.0  # "resets within 200 ms", then the program starts
TELEMETRY = {0x02, 0x03, 0x08}  # ADC, HEAP, STATS: paused during an upload


class Stop(Exception):
    """The conversation cannot go on; the failure is already counted."""


class Peer:
    """The Linux end of a conversation with a tether-sim: it numbers what
    it sends and reads the MCU's frames one at a time, keeping count of
    what the document forbids along the way (telemetry during an upload,
    a second answer to one request, damaged frames)."""

    def __init__(self, sim, c):
        self.sim = sim
        self.c = c
        self.seq = 0
        self.buf = bytearray()
        self.damaged = []
        self.answered = set()   # seqs of requests already answered
        self.strays = []        # answers to nothing we sent, or twice
        self.paused = False     # an accepted upload is under way
        self.during_pause = []  # telemetry types seen while paused
        self.hellos = []        # HELLOs not yet consumed by wait_hello

    def send(self, t, payload=b""):
        seq = self.seq
        self.seq = (self.seq + 1) & 0xFFFF
        os.write(self.sim.fd, encode_frame(t, seq, payload))
        if t in UPD_REQUESTS:
            self.c.count("live update requests")
        return seq

    def next_frame(self, deadline):
        """The next good frame, or None once the deadline has passed."""
        while True:
            if 0 in self.buf:
                end = self.buf.index(0)
                block = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                for f in split_stream(block):
                    if isinstance(f, Frame):
                        self.note(f)
                        return f
                    self.damaged.append(f)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sim.fd], [], [], left)
            if ready:
                self.buf += os.read(self.sim.fd, 65536)

    def note(self, f):
        if self.paused and f.type in TELEMETRY:
            self.during_pause.append(NAMES[f.type])
        if f.type == 0x01:
            try:
                m = parse_message(f.type, f.payload)
            except ValueError as e:
                self.damaged.append("HELLO: %s" % e)
                return
            m["seq"] = f.seq
            self.hellos.append(m)

    def answer_of(self, f):
        """(seq answered, decoded answer) for an ACK, NACK or UPD_STATUS."""
        if f.type not in (0x06, 0x07, 0x90):
            return None, None
        m = parse_message(f.type, f.payload)
        m["name"] = NAMES[f.type]
        if f.type == 0x90:
            return m["req_seq"], m
        return m["cmd_seq"], m

    def answers(self, seqs, timeout):
        """The answers to the requests seqs, in order; a missing one is a
        failure that ends the conversation."""
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < len(seqs):
            f = self.next_frame(deadline)
            if f is None:
                missing = [s for s in seqs if s not in got]
                self.c.expect(False, "update: an answer to seq %r within"
                              " %.0f s" % (missing, timeout))
                raise Stop()
            try:
                seq, m = self.answer_of(f)
            except ValueError as e:
                self.c.expect(False, "update: answer does not decode: %s" % e)
                raise Stop()
            if seq is None:
                continue
            if seq not in seqs or seq in self.answered:
                self.strays.append((seq, m))
                continue
            self.answered.add(seq)
            got[seq] = m
        return [got[s] for s in seqs]

    def request(self, name, payload=b"", timeout=None):
        """Sends one request and returns its answer, which must carry the
        request's seq and type."""
        t = TYPES[name] if isinstance(name, str) else name
        if timeout is None:
            timeout = UPD_SLOW_S if t in (0x80, 0x82) else UPD_FAST_S
        seq = self.send(t, payload)
        m = self.answers([seq], timeout)[0]
        key = "req_type" if m["name"] == "UPD_STATUS" else "cmd_type"
        self.c.expect(m[key] == t, "update: the answer to 0x%02x carries"
                      " its type (%r)" % (t, m))
        return m

    def wait_hello(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.hellos:
            if self.next_frame(deadline) is None:
                self.c.expect(False, "update: a HELLO within %.0f s"
                              % timeout)
                raise Stop()
        return self.hellos.pop(0)

    def wait_telemetry(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(deadline)
            if f is None or f.type in TELEMETRY:
                return f is not None

    def listen(self, seconds):
        """The names of the frames that arrive in the next seconds."""
        seen = set()
        deadline = time.monotonic() + seconds
        while True:
            f = self.next_frame(deadline)
            if f is None:
                return seen
            seen.add(NAMES.get(f.type, "0x%02x" % f.type))


def status_is(c, m, what, error=None, state=None, **fields):
    """Checks an answer against an expected UPD_STATUS; returns it."""
    if not c.expect(m["name"] == "UPD_STATUS", "update: %s is answered"
                    " with UPD_STATUS, not %r" % (what, m)):
        raise Stop()
    wanted = dict(fields)
    if error is not None:
        wanted["error"] = error
    if state is not None:
        wanted["state"] = state
    for k, v in wanted.items():
        c.expect(m[k] == v, "update: %s: %s = %s, expected %s"
                 % (what, k, status_value(k, m[k]), status_value(k, v)))
    return m


def status_value(field, v):
    names = {"error": UPD_ERRORS, "state": UPD_STATES}.get(field)
    return "%d %s" % (v, names[v]) if names and v < len(names) else "%r" % v


def nack_is(c, m, what, errors):
    c.expect(m["name"] == "NACK" and m["error"] in errors,
             "update: %s is answered with NACK %r (got %r)"
             % (what, errors, m))


def upload(peer, c, header, body, chunk, window, drill=False):
    """Sends body in UPD_DATA frames of chunk bytes, keeping up to window
    of them unanswered, the way the document's sender does; with drill,
    halfway through it also resumes by BEGIN, sends a stale offset and
    loses a frame on purpose to go back to stored."""
    stored = 0
    last = None
    drilled = not drill
    while stored < len(body):
        if not drilled and stored >= len(body) // 2:
            drilled = True
            m = peer.request("UPD_BEGIN", header)
            status_is(c, m, "the same BEGIN mid-upload (resume)", UPD_OK,
                      UPD_RECEIVING, stored=stored, body_len=len(body))
            m = peer.request("UPD_DATA", u32le(0) + body[:chunk])
            status_is(c, m, "DATA at a stale offset", UPD_BAD_OFFSET,
                      UPD_RECEIVING, stored=stored)
            # The first frame of a window is lost on the line: the others
            # are ignored and say where to go back to.
            offs = [stored + chunk * i for i in range(1, window + 1)
                    if stored + chunk * i < len(body)]
            seqs = [peer.send(0x81, u32le(o) + body[o:o + chunk])
                    for o in offs]
            for m in peer.answers(seqs, UPD_FAST_S):
                status_is(c, m, "DATA after a lost frame", UPD_BAD_OFFSET,
                          stored=stored)
            c.count("go-back drills")
            continue
        offs = []
        o = stored
        while len(offs) < window and o < len(body):
            offs.append(o)
            o += chunk
        seqs = [peer.send(0x81, u32le(o) + body[o:o + chunk]) for o in offs]
        for o, m in zip(offs, peer.answers(seqs, UPD_FAST_S)):
            want = min(o + chunk, len(body))
            if (m["name"] != "UPD_STATUS" or m["error"] != UPD_OK
                    or m["state"] != UPD_RECEIVING or m["stored"] != want):
                c.expect(False, "update: DATA at %d of %d accepted, stored"
                         " %d (%r)" % (o, len(body), want, m))
                raise Stop()
            last = m
        stored = min(offs[-1] + chunk, len(body))
    # Each frame's answer was checked above, failing the run at the first
    # wrong one; counted as one check per upload, not one per frame.
    c.expect(last is not None and last["stored"] == len(body),
             "update: all %d body bytes stored (%r)" % (len(body), last))


def u32le(v):
    return v.to_bytes(4, "little")


def upload_and_verify(peer, c, header, body, st):
    m = peer.request("UPD_BEGIN", header)
    status_is(c, m, "a good BEGIN", UPD_OK, UPD_RECEIVING, stored=0,
              body_len=len(body))
    peer.paused = True
    upload(peer, c, header, body, st["chunk_max"], st["window"])
    m = peer.request("UPD_END")
    status_is(c, m, "END after all data", UPD_OK, UPD_VERIFIED,
              stored=len(body))


def boot_on_test(peer, c, image_fw, before_where):
    """UPD_BOOT, then the image on test: HELLO caps bit 5, boot bit 0."""
    peer.hellos.clear()
    m = peer.request("UPD_BOOT")
    status_is(c, m, "BOOT while verified", UPD_OK, UPD_BOOTING)
    hello = peer.wait_hello(RESET_S)
    peer.paused = False
    c.expect(hello["reset_cause"] == 3 and hello["seq"] == 0, "update:"
             " HELLO after BOOT has seq 0 and reset_cause 3 (%r)" % hello)
    c.expect(hello["caps"] & CAP_TESTING, "update: HELLO of the image on"
             " test has caps bit 5 (caps 0x%04x)" % hello["caps"])
    c.expect(hello["fw_version"] == image_fw, "update: HELLO reports the"
             " header's fw_version")
    m = peer.request("UPD_QUERY")
    status_is(c, m, "QUERY on test (a reset forgets the upload)", UPD_OK,
              UPD_IDLE, stored=0, body_len=0, fw_version=image_fw)
    c.expect(m["boot"] & BOOT_ON_TEST, "update: boot bit 0 on test (0x%02x)"
             % m["boot"])
    c.expect(m["boot"] & BOOT_WHERE != before_where, "update: the image on"
             " test runs from another place than the one before it")
    return m["boot"] & BOOT_WHERE


def hello_after_reboot(peer, c, what):
    peer.hellos.clear()
    m = peer.request("REBOOT")
    c.expect(m["name"] == "ACK", "update: REBOOT %s is ACKed (%r)"
             % (what, m))
    hello = peer.wait_hello(RESET_S)
    c.expect(hello["reset_cause"] == 3 and hello["seq"] == 0
             and not hello["caps"] & CAP_TESTING, "update: HELLO after"
             " REBOOT %s: seq 0, reset_cause 3, caps bit 5 clear (%r)"
             % (what, hello))
    return hello


def check_sim_no_update(path, c):
    """An MCU without caps bit 4 answers update requests with NACK
    UNSUPPORTED; one with it, with UPD_STATUS."""
    sim = Sim(path, ["--heap-period", "0", "--rate", "10"])
    try:
        peer = Peer(sim, c)
        hello = peer.wait_hello(RESET_S)
        c.expect(not hello["caps"] & CAP_TESTING, "update: a sim without"
                 " slots runs no image on test (caps 0x%04x)" % hello["caps"])
        m = peer.request("UPD_QUERY")
        if hello["caps"] & CAP_UPDATE:
            c.expect(m["name"] == "UPD_STATUS", "update: caps bit 4 set and"
                     " QUERY answered by UPD_STATUS (%r)" % m)
        else:
            nack_is(c, m, "QUERY without caps bit 4", [NACK_UNSUPPORTED])
            m = peer.request("UPD_BEGIN", bytes(IMAGE_HEADER_LEN))
            nack_is(c, m, "BEGIN without caps bit 4", [NACK_UNSUPPORTED])
    except Stop:
        pass
    except OSError as e:
        c.expect(False, "update: the sim without slots went away: %s" % e)
    finally:
        sim.close()


def check_sim_update(path, c):
    """A whole update conversation with a tether-sim that has update
    slots.  Board 1 is tether-sim, so a board-1 image's body is a
    tether-sim program: the one under test, which therefore also reports
    the header's fw_version and build_id when it runs on test."""
    with open(path, "rb") as f:
        program = f.read()
    with tempfile.TemporaryDirectory(prefix="wirecheck-") as flash:
        sim = Sim(path, ["--flash", flash, "--heap-period", "100",
                         "--rate", "200", "--channels", "2", "--seed", "5"])
        peer = Peer(sim, c)
        try:
            converse(peer, c, program)
        except Stop:
            pass
        except OSError as e:  # the pty went away: the sim died
            c.expect(False, "update: the conversation ended: %s" % e)
        finally:
            sim.close()
        c.expect(not peer.damaged, "update: no damaged frames (%r)"
                 % peer.damaged[:5])
        c.expect(not peer.strays, "update: exactly one answer per request"
                 " (strays %r)" % peer.strays[:3])
        c.expect(not peer.during_pause, "update: no ADC, HEAP or STATS"
                 " during an upload (%r)" % sorted(set(peer.during_pause)))


def converse(peer, c, program):
    hello = peer.wait_hello(RESET_S)
    if not c.expect(hello["caps"] & CAP_UPDATE and
                    not hello["caps"] & CAP_TESTING,
                    "update: HELLO with slots has caps bit 4, not bit 5"
                    " (0x%04x)" % hello["caps"]):
        raise Stop()
    st = peer.request("UPD_QUERY")
    status_is(c, st, "the first QUERY", UPD_OK, UPD_IDLE, stored=0,
              body_len=0, fw_version=hello["fw_version"])
    c.expect(1 <= st["chunk_max"] <= UPD_CHUNK_MAX and st["window"] >= 1
             and not st["boot"] & BOOT_ON_TEST, "update: chunk_max, window"
             " and boot of the first QUERY (%r)" % st)
    where0 = st["boot"] & BOOT_WHERE
    fw = hello["fw_version"]

    # Payloads that do not decode, and types of the range that are not
    # requests.
    nack_is(c, peer.request(0x87), "type 0x87", [NACK_UNKNOWN_TYPE])
    nack_is(c, peer.request(0x90, bytes(UPD_STATUS_LEN)),
            "UPD_STATUS sent to the MCU", [NACK_UNKNOWN_TYPE])
    nack_is(c, peer.request("UPD_BEGIN", bytes(IMAGE_HEADER_LEN - 1)),
            "BEGIN of 63 bytes", [NACK_BAD_LENGTH])
    nack_is(c, peer.request("UPD_DATA", bytes(3)), "DATA of 3 bytes",
            [NACK_BAD_LENGTH])
    # 4 bytes is both "under 5" (BAD_LENGTH) and "no data" (BAD_VALUE).
    nack_is(c, peer.request("UPD_DATA", bytes(4)), "DATA with no data",
            [NACK_BAD_LENGTH, NACK_BAD_VALUE])

    # Out of order with no upload.
    status_is(c, peer.request("UPD_DATA", u32le(0) + b"x"),
              "DATA without an upload", UPD_BAD_STATE, UPD_IDLE)
    status_is(c, peer.request("UPD_CONFIRM"), "CONFIRM not on test",
              UPD_NOT_ON_TEST, UPD_IDLE)

    h = dict(magic=IMAGE_MAGIC, hdr_version=1, board=hello["board"],
             flags=0, fw_version=fw, build_id=hello["build_id"],
             body_len=len(program), load_addr=0, entry=0,
             hash=hashlib.sha256(program).digest())
    header = encode_image_header(h)

    # Headers refused; none starts an upload.
    v2 = encode_image_header(dict(h, hdr_version=2))
    for bad, err, what in [
            (b"TTIN" + header[4:], UPD_BAD_HEADER, "bad magic"),
            (v2, UPD_BAD_HEADER, "header version 2"),
            (header[:-1] + bytes([header[-1] ^ 1]), UPD_BAD_HEADER,
             "bad header CRC"),
            (encode_image_header(dict(h, board=h["board"] % 4 + 1)),
             UPD_WRONG_BOARD, "another board"),
            (encode_image_header(dict(h, body_len=0)), UPD_TOO_LARGE,
             "an empty body"),
            (encode_image_header(dict(h, body_len=0xFFFFFFF0)),
             UPD_TOO_LARGE, "a body larger than a slot")]:
        status_is(c, peer.request("UPD_BEGIN", bad), "BEGIN with " + what,
                  err, UPD_IDLE, stored=0, body_len=0)

    # An upload, with every out-of-order request the rules name.  Around
    # its BEGIN the line is watched for a while: telemetry before, none
    # after (the pause), so that the pause check is not vacuous.
    seen = peer.listen(0.5)
    c.expect(seen & {"ADC", "HEAP", "STATS"}, "update: telemetry flows"
             " before the upload (%s)" % sorted(seen))
    m = peer.request("UPD_BEGIN", header)
    status_is(c, m, "a good BEGIN", UPD_OK, UPD_RECEIVING, stored=0,
              body_len=len(program))
    peer.paused = True
    peer.listen(0.5)
    status_is(c, peer.request("UPD_DATA", u32le(1) + program[1:9]),
              "DATA not at stored", UPD_BAD_OFFSET, UPD_RECEIVING, stored=0)
    status_is(c, peer.request("UPD_END"), "END before all data",
              UPD_BAD_STATE, UPD_RECEIVING)
    status_is(c, peer.request("UPD_BOOT"), "BOOT before END",
              UPD_BAD_STATE, UPD_RECEIVING)
    seq = peer.send(TYPES["GET_HELLO"])
    m = peer.answers([seq], UPD_FAST_S)[0]
    c.expect(m["name"] == "ACK", "update: GET_HELLO still answered during"
             " an upload (%r)" % m)
    peer.wait_hello(UPD_FAST_S)
    upload(peer, c, header, program, st["chunk_max"], st["window"],
           drill=True)
    status_is(c, peer.request("UPD_DATA", u32le(len(program)) + b"x"),
              "DATA past body_len", UPD_TOO_LARGE, stored=len(program))
    status_is(c, peer.request("UPD_END"), "END after all data", UPD_OK,
              UPD_VERIFIED, stored=len(program))
    status_is(c, peer.request("UPD_END"), "END again while verified",
              UPD_OK, UPD_VERIFIED)
    status_is(c, peer.request("UPD_BEGIN", header), "the same BEGIN when"
              " verified", UPD_OK, UPD_VERIFIED, stored=len(program))
    status_is(c, peer.request("UPD_BEGIN", v2), "a bad BEGIN during an"
              " upload", UPD_BAD_HEADER)
    status_is(c, peer.request("UPD_QUERY"), "QUERY after a bad BEGIN (the"
              " upload as it was)", UPD_OK, UPD_VERIFIED,
              stored=len(program))
    status_is(c, peer.request("UPD_ABORT"), "ABORT", state=UPD_IDLE)
    peer.paused = False
    status_is(c, peer.request("UPD_QUERY"), "QUERY after ABORT", UPD_OK,
              UPD_IDLE, stored=0, body_len=0, fw_version=fw)
    c.expect(peer.wait_telemetry(2.0), "update: telemetry resumes once the"
             " upload has ended")

    # A body that does not match its header's hash.
    small = program[:3 * st["chunk_max"] + 17]
    liar = encode_image_header(dict(h, body_len=len(small),
                                    hash=hashlib.sha256(b"x").digest()))
    status_is(c, peer.request("UPD_BEGIN", liar), "BEGIN of a small image",
              UPD_OK, UPD_RECEIVING, stored=0, body_len=len(small))
    peer.paused = True
    upload(peer, c, liar, small, st["chunk_max"], st["window"])
    m = peer.request("UPD_END")
    peer.paused = False
    status_is(c, m, "END of a body with the wrong hash", UPD_BAD_HASH,
              UPD_IDLE, fw_version=fw)
    c.expect(m["boot"] == st["boot"], "update: bad_hash leaves the running"
             " image as it was")

    # Test boot, then REBOOT before CONFIRM: back to the image before.
    upload_and_verify(peer, c, header, program, st)
    boot_on_test(peer, c, fw, where0)
    status_is(c, peer.request("UPD_BEGIN", header), "BEGIN while on test",
              UPD_BAD_STATE, UPD_IDLE)
    hello_after_reboot(peer, c, "before CONFIRM")
    m = peer.request("UPD_QUERY")
    status_is(c, m, "QUERY after a test image was reset", UPD_OK, UPD_IDLE)
    c.expect(m["boot"] & (BOOT_ON_TEST | BOOT_REVERTED) == BOOT_REVERTED
             and m["boot"] & BOOT_WHERE == where0, "update: reverted to"
             " the image before, boot bit 1 (0x%02x)" % m["boot"])
    status_is(c, peer.request("UPD_CONFIRM"), "CONFIRM after revert",
              UPD_NOT_ON_TEST)

    # Test boot again, then CONFIRM: the image stays.
    upload_and_verify(peer, c, header, program, st)
    where1 = boot_on_test(peer, c, fw, where0)
    m = peer.request("UPD_CONFIRM")
    status_is(c, m, "CONFIRM on test", UPD_OK, UPD_IDLE)
    c.expect(not m["boot"] & BOOT_ON_TEST and m["boot"] & BOOT_WHERE
             == where1, "update: confirmed image no longer on test (0x%02x)"
             % m["boot"])
    status_is(c, peer.request("UPD_CONFIRM"), "CONFIRM again",
              UPD_NOT_ON_TEST, UPD_IDLE)
    seq = peer.send(TYPES["GET_HELLO"])
    peer.answers([seq], UPD_FAST_S)
    hello = peer.wait_hello(UPD_FAST_S)
    c.expect(not hello["caps"] & CAP_TESTING, "update: HELLO after CONFIRM"
             " has caps bit 5 clear")
    hello_after_reboot(peer, c, "after CONFIRM")
    m = peer.request("UPD_QUERY")
    c.expect(m["boot"] & (BOOT_ON_TEST | BOOT_WHERE) == where1,
             "update: the confirmed image boots from now on (0x%02x)"
             % m["boot"])
    c.count("live test boots", 2)


def measure_efficiency(path, seconds):
    sim = Sim(path, ["--baud", "115200", "--rate", "2000", "--channels",
                     "6"])
    try:
        sim.read_for(0.5)  # let the pty buffer drain to the paced rate
        data = sim.read_for(seconds)
    finally:
        sim.close()
    samples = 0
    for f in split_stream(data):
        if isinstance(f, Frame) and f.type == 0x02:
            m = parse_message(f.type, f.payload)
            samples += len(m["values"])
    rate = samples / seconds
    print("line efficiency at 115200: %.0f samples/s over %.0f s, %d bytes;"
          " %.3f of 5,760" % (rate, seconds, len(data), rate / 5760))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--doc")
    ap.add_argument("--sim")
    ap.add_argument("--recorded", nargs=2, metavar=("BIN", "CHK"))
    ap.add_argument("--efficiency", type=float, metavar="SECONDS")
    a = ap.parse_args()
    c = Checks()
    if a.efficiency:
        measure_efficiency(a.sim, a.efficiency)
        return 0
    if a.doc:
        check_doc(a.doc, c)
    if a.recorded:
        check_recorded(a.recorded[0], a.recorded[1], c)
    if a.sim:
        check_sim(a.sim, c)
        check_sim_no_update(a.sim, c)
        check_sim_update(a.sim, c)
    covered = ", ".join("%s: %d" % kv for kv in c.counts.items())
    print("wirecheck: %d passed, %d failed%s" % (c.passed, c.failed,
          " (%s)" % covered if covered else ""))
    return 0 if c.failed == 0 and c.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
