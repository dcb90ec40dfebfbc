#!/usr/bin/env python3
"""Independent reader for TensorBoard event files, used by tensorboard_test.cpp.

Pure Python (struct + its own CRC-32C), so it checks vigil's writer without sharing any of its code and runs
with any python3. Validates both CRCs of every TFRecord and decodes each tensorflow.Event to JSON:
  {"file_version": "brain.Event:2", "first_wall_time": t,
   "scalars": [{"tag": ..., "step": ..., "value": ..., "wall_time": ...}, ...]}
Exits 1 with a message naming the record on any framing, CRC or protobuf error.
Usage: read_events.py FILE [--allow-truncated-tail]
"""
import json
import struct
import sys


def _make_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end of the message")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf):
    """Yields (field_number, wire_type, value) for one protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        if pos > len(buf):
            raise ValueError("field %d runs past the end of the message" % number)
        yield number, wire, value


def decode_value(buf):
    out = {}
    for number, wire, value in fields(buf):
        if number == 1 and wire == 2:
            out["tag"] = value.decode("utf-8")
        elif number == 2 and wire == 5:
            out["value"] = struct.unpack("<f", value)[0]
    return out


def decode_event(buf):
    event = {"wall_time": 0.0, "step": 0, "values": []}
    for number, wire, value in fields(buf):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            event["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:
            for n, w, v in fields(value):
                if n == 1 and w == 2:
                    event["values"].append(decode_value(v))
        else:
            raise ValueError("unexpected field %d (wire type %d) in Event" % (number, wire))
    return event


def read_records(data, allow_truncated_tail):
    pos, index = 0, 0
    while pos < len(data):
        if len(data) - pos < 12:
            if allow_truncated_tail:
                return
            raise ValueError("record %d: truncated header" % index)
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != length_crc:
            raise ValueError("record %d: length CRC mismatch" % index)
        body = data[pos + 12:pos + 12 + length]
        footer = data[pos + 12 + length:pos + 16 + length]
        if len(body) != length or len(footer) != 4:
            if allow_truncated_tail:
                return
            raise ValueError("record %d: truncated data" % index)
        if masked(body) != struct.unpack("<I", footer)[0]:
            raise ValueError("record %d: data CRC mismatch" % index)
        yield index, body
        pos += 16 + length
        index += 1


def main(argv):
    path = argv[1]
    allow = "--allow-truncated-tail" in argv[2:]
    with open(path, "rb") as f:
        data = f.read()
    out = {"scalars": []}
    try:
        for index, body in read_records(data, allow):
            event = decode_event(body)
            if index == 0:
                if "file_version" not in event:
                    raise ValueError("record 0: expected a file_version event")
                out["file_version"] = event["file_version"]
                out["first_wall_time"] = event["wall_time"]
                continue
            for v in event["values"]:
                out["scalars"].append({"tag": v.get("tag"), "step": event["step"], "value": v.get("value"),
                                       "wall_time": event["wall_time"]})
    except ValueError as e:
        sys.stderr.write("%s: %s\n" % (path, e))
        return 1
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
