#!/usr/bin/env python3
"""A minimal RTSP server for tests: one publisher (ffmpeg -f rtsp -rtsp_transport tcp, ANNOUNCE/RECORD) and
any number of readers (DESCRIBE/SETUP/PLAY), RTP interleaved over the RTSP TCP connection both ways.

ffmpeg's RTSP muxer only publishes to a server, and its `-rtsp_flags listen` makes it a server for one
*publisher*, never for readers; Debian has no RTSP server a test could start. This relay is the missing
middle: it keeps the publisher's SDP and copies its RTP packets to every playing reader.

When the publisher goes away the readers' connections stay open but silent, as a camera whose encoder hung:
a reader must notice through its own watchdog. DESCRIBE without a publisher answers 404, as a camera that
is down. Usage: rtsp_relay.py PORT_FILE (the port chosen is written there once listening).
"""
import socket
import sys
import threading

lock = threading.Lock()
state = {"sdp": None, "readers": set(), "silenced": []}


def read_message(f):
    """One RTSP request (method, url, headers, body) or an interleaved packet ('$', channel, data)."""
    first = f.read(1)
    if not first:
        return None
    if first == b"$":
        head = f.read(3)
        if len(head) < 3:
            return None
        size = (head[1] << 8) | head[2]
        return ("$", head[0], f.read(size))
    line = first + f.readline()
    while line in (b"\r\n", b"\n"):
        line = f.readline()
        if not line:
            return None
    parts = line.decode("latin-1").split()
    headers = {}
    while True:
        h = f.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "", headers, body)


def reply(conn, headers, status="200 OK", extra=None, body=b""):
    out = "RTSP/1.0 %s\r\nCSeq: %s\r\n" % (status, headers.get("cseq", "0"))
    for k, v in (extra or {}).items():
        out += "%s: %s\r\n" % (k, v)
    if body:
        out += "Content-Length: %d\r\n" % len(body)
    conn.sendall(out.encode("latin-1") + b"\r\n" + body)


def serve(conn):
    f = conn.makefile("rb")
    publisher = False
    try:
        while True:
            msg = read_message(f)
            if msg is None:
                break
            if msg[0] == "$":
                if publisher:  # the publisher's RTP / RTCP: to every playing reader
                    packet = b"$" + bytes([msg[1]]) + len(msg[2]).to_bytes(2, "big") + msg[2]
                    with lock:
                        readers = list(state["readers"])
                    for r in readers:
                        try:
                            r.sendall(packet)
                        except OSError:
                            with lock:
                                state["readers"].discard(r)
                continue  # a reader's RTCP receiver reports
            method, url, headers, body = msg
            session = {"Session": "12345678"}
            if method == "OPTIONS":
                reply(conn, headers, extra={"Public": "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, "
                                                      "TEARDOWN, GET_PARAMETER"})
            elif method == "ANNOUNCE":
                publisher = True
                with lock:
                    state["sdp"] = body
                reply(conn, headers)
            elif method == "DESCRIBE":
                with lock:
                    sdp = state["sdp"]
                if sdp is None:
                    reply(conn, headers, "404 Not Found")
                else:
                    reply(conn, headers, extra={"Content-Base": url.rstrip("/") + "/",
                                                "Content-Type": "application/sdp"}, body=sdp)
            elif method == "SETUP":
                transport = headers.get("transport", "")
                if "TCP" not in transport.upper():
                    reply(conn, headers, "461 Unsupported Transport")  # readers then ask for TCP
                    continue
                reply(conn, headers, extra=dict(session, Transport=transport))
            elif method == "PLAY":
                with lock:
                    state["readers"].add(conn)
                reply(conn, headers, extra=session)
            elif method == "TEARDOWN":
                reply(conn, headers, extra=session)
                break
            else:  # RECORD, GET_PARAMETER keep-alives, ...
                reply(conn, headers, extra=session)
    except OSError:
        pass
    finally:
        if publisher:
            with lock:
                state["sdp"] = None
                # The readers stay connected and hear nothing more, like a hung camera (a later publisher's
                # packets go only to readers that connect again).
                state["silenced"].extend(state["readers"])
                state["readers"].clear()
        else:
            with lock:
                state["readers"].discard(conn)
            conn.close()


def main():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    with open(sys.argv[1] + ".tmp", "w") as out:
        out.write(str(server.getsockname()[1]))
    import os
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
