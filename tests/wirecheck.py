#!/usr/bin/env python3
"""An independent decoder of the tether wire protocol.

Written from proto/PROTOCOL.md alone, sharing no code with proto/, to show
that the document is complete and that what tether-sim sends is what the
document says. It checks:

  --doc FILE        every test vector in the document: COBS, CRC-32C,
                    header and fields, plus the CRC check value and the COBS
                    examples of section 3;
  --sim PATH        a live tether-sim: every frame on its pty decodes, seq
                    numbers run on, batches tile time, heap figures agree;
  --recorded B C    a recorded stream B decodes to the good frames listed in
                    its check file C;
  --efficiency      (with --sim) ADC samples per second through the sim
                    paced at 115200 baud, against the 5,760 a line of pure
                    samples would carry.

Exits 0 when every check passes and prints 'N passed, 0 failed'.
"""

import argparse
import os
import re
import select
import shlex
import signal
import subprocess
import sys
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
         0x46: "SET_SCENARIO"}


def need(p, n, what):
    if len(p) < n:
        raise ValueError("%s payload of %d bytes, needs %d" % (what, len(p), n))


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
    return {}  # GET_HELLO, REBOOT


# ---- Checks ----
class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def expect(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s" % what)


def parse_value(v):
    """A number, a comma-separated list of numbers, or else text."""
    try:
        if "," in v:
            return [int(x, 0) for x in v.split(",")]
        return int(v, 0)
    except ValueError:
        return v


def check_doc(path, c):
    text = open(path, encoding="utf-8").read()
    c.expect(crc32c(b"123456789") == 0xE3069283, "CRC-32C check value")
    for plain, enc in [(b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
                       (b"\x00", b"\x01\x01"),
                       (b"\x11" * 253 + b"\x00", b"\xfe" + b"\x11" * 253 + b"\x01"),
                       (b"\x11" * 254, b"\xff" + b"\x11" * 254),
                       (b"\x11" * 255, b"\xff" + b"\x11" * 254 + b"\x02\x11")]:
        c.expect(cobs_decode(enc) == plain, "COBS example %s" % enc[:4].hex())
    vectors = re.findall(r"^vector (\S+) (\S+) (.*)\nwire ([0-9a-f ]+)$",
                         text, re.M)
    c.expect(len(vectors) >= 15, "at least 15 vectors (found %d)" % len(vectors))
    for vid, tname, fields, wire in vectors:
        w = bytes.fromhex(wire)
        what = "vector %s" % vid
        c.expect(w[-1] == 0 and 0 not in w[:-1], what + ": one delimiter")
        frames = list(split_stream(w))
        if not (len(frames) == 1 and isinstance(frames[0], Frame)):
            c.expect(False, what + ": decodes to one good frame: %r" % frames)
            continue
        f = frames[0]
        c.expect(NAMES.get(f.type) == tname, what + ": type")
        want = dict(kv.split("=", 1) for kv in shlex.split(fields))
        want = {k: parse_value(v) for k, v in want.items()}
        c.expect(f.seq == want.pop("seq"), what + ": seq")
        got = parse_message(f.type, f.payload)
        for k, v in want.items():
            c.expect(got.get(k) == v, "%s: %s = %r, document says %r"
                     % (what, k, got.get(k), v))


def check_recorded(binpath, chkpath, c):
    data = open(binpath, "rb").read()
    mine = ["ok %d %d %d" % (f.type, f.seq, len(f.payload))
            for f in split_stream(data) if isinstance(f, Frame)]
    theirs = [l.strip() for l in open(chkpath) if l.startswith("ok ")]
    c.expect(mine == theirs and len(mine) > 0,
             "recorded stream: %d good frames here, %d in the check file"
             % (len(mine), len(theirs)))


class Sim:
    """tether-sim under our control; always stopped on exit."""

    def __init__(self, path, args):
        self.proc = subprocess.Popen([path] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
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

    def close(self):
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)
            self.fd = None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


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
    print("wirecheck: %d passed, %d failed" % (c.passed, c.failed))
    return 0 if c.failed == 0 and c.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
