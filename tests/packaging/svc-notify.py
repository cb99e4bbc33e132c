#!/usr/bin/env python3
"""svc-notify.py -- plays systemd's side of the sd_notify protocol for
test-systemd-units.sh: binds a unix datagram socket and logs every
datagram that arrives, one line each.  When a datagram holds READY=1 it
at once reads the manager's --port-file and connects to that port on
127.0.0.1 (then GET /health), to show the port listened before READY=1
was sent.

    svc-notify.py ADDRESS LOG PORTFILE [SECONDS]

ADDRESS is a path or "@name" (Linux abstract namespace).  LOG gets:
    listening
    msg <seconds since start> <the datagram's lines joined by '|'>
    connect ok PORT | connect fail REASON
    health STATUS | health fail REASON
It exits after SECONDS (default 120) or on SIGTERM.
"""
import http.client
import os
import signal
import socket
import sys
import time


def log(out, line):
    out.write(line + "\n")
    out.flush()


def check_port(out, portfile):
    try:
        with open(portfile, encoding="ascii") as f:
            port = int(f.read().strip())
    except (OSError, ValueError) as e:
        log(out, "connect fail no port file: %s" % e)
        return
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        log(out, "connect ok %d" % port)
    except OSError as e:
        log(out, "connect fail %s" % e)
        return
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/health")
        log(out, "health %d" % conn.getresponse().status)
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        log(out, "health fail %s" % e)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    addr, logfile, portfile = sys.argv[1:4]
    limit = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if addr.startswith("@"):
        sock.bind("\0" + addr[1:])
    else:
        if os.path.exists(addr):
            os.unlink(addr)
        sock.bind(addr)
    start = time.monotonic()
    with open(logfile, "a", encoding="utf-8") as out:
        log(out, "listening")
        while True:
            left = limit - (time.monotonic() - start)
            if left <= 0:
                break
            sock.settimeout(min(left, 1.0))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                continue
            text = data.decode("utf-8", "replace")
            lines = [x for x in text.split("\n") if x]
            log(out, "msg %.3f %s" % (time.monotonic() - start,
                                      "|".join(lines)))
            if "READY=1" in lines:
                check_port(out, portfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
