#!/usr/bin/env python3
"""fw-net.py -- the network side of test-firewall-netns.sh.

  fw-net.py listen ADDR LIFETIME PORT...
      Listens on ADDR:PORT for every PORT, accepts connections and closes
      them at once, for at most LIFETIME seconds (then exits).  Prints
      "listening" once every port is bound.
  fw-net.py probe HOST TIMEOUT PORT...
      Connects to HOST:PORT for every PORT at the same time, each with a
      TIMEOUT second limit, and prints "PORT:open" or "PORT:closed" for
      each, in the order given, on one line.
"""
import selectors
import socket
import sys
import threading
import time


def listen(addr, lifetime, ports):
    """Serves the ports until LIFETIME seconds have passed."""
    sel = selectors.DefaultSelector()
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(16)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    print("listening", flush=True)
    end = time.monotonic() + lifetime
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            try:
                conn, _ = key.fileobj.accept()
                conn.close()
            except OSError:
                pass
    return 0


def probe(host, timeout, ports):
    """Prints which ports accept a TCP connection."""
    result = {}

    def one(port):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[port] = "open"
        except OSError:
            result[port] = "closed"

    threads = [threading.Thread(target=one, args=(p,)) for p in ports]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    print(" ".join("%d:%s" % (p, result.get(p, "closed")) for p in ports))
    return 0


def main(argv):
    """Dispatches on the subcommand."""
    if len(argv) < 5 or argv[1] not in ("listen", "probe"):
        sys.stderr.write(__doc__)
        return 2
    ports = [int(p) for p in argv[4:]]
    if argv[1] == "listen":
        return listen(argv[2], float(argv[3]), ports)
    return probe(argv[2], float(argv[3]), ports)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
