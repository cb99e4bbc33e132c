#!/usr/bin/env python3
# admintest.py -- helpers for the dkv-manager end-to-end tests
# (tests/admin/test-admin-*.sh); stdlib only.
#
#   admintest.py ports N [HOST]   a base port B with B..B+N-1 free on HOST
#                                 (default 127.0.0.1) and on the wildcard
#                                 address, never in 7800-7899; prints B
#   admintest.py val FILE PATH    prints the value at PATH (dot-separated
#                                 keys and list indexes) of the JSON in
#                                 FILE (several documents: a list; a list
#                                 met by a key: its first element); strings
#                                 raw, null as "null", others as JSON
#   admintest.py parse FILE       exit 0 when FILE is JSON (one or more
#                                 documents), 1 with a message otherwise
#   admintest.py get URL PATH     GET URL (JSON), print the value at PATH
#   admintest.py hold PORT SEC [HOST]   listen on HOST:PORT for SEC seconds
import json
import random
import socket
import sys
import time
import urllib.request


def load_text(text):
    dec = json.JSONDecoder()
    docs, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)
    if not docs:
        raise ValueError("no JSON document")
    return docs[0] if len(docs) == 1 else docs


def follow(doc, path):
    if path == ".":
        return doc
    for part in path.split("."):
        if isinstance(doc, list):
            if part.lstrip("-").isdigit():
                doc = doc[int(part)]
                continue
            doc = doc[0]
        doc = doc[part]
    return doc


def show(v):
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    return json.dumps(v)


def free(port, host):
    for h in (host, "0.0.0.0"):
        s = socket.socket()
        try:
            s.bind((h, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def ports(n, host):
    rnd = random.Random()
    for _ in range(2000):
        base = rnd.randrange(20000, 32000)
        if base + n > 7800 and base < 7900:
            continue
        if all(free(base + i, host) for i in range(n)):
            return base
    raise SystemExit("admintest: no %d free consecutive ports" % n)


def main():
    cmd = sys.argv[1]
    if cmd == "ports":
        host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
        print(ports(int(sys.argv[2]), host))
    elif cmd == "val":
        try:
            doc = load_text(open(sys.argv[2], encoding="utf-8").read())
            print(show(follow(doc, sys.argv[3])))
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            print("admintest: %s: no %s (%r)" % (sys.argv[2], sys.argv[3],
                                                e), file=sys.stderr)
            return 1
    elif cmd == "parse":
        try:
            load_text(open(sys.argv[2], encoding="utf-8").read())
        except (OSError, ValueError) as e:
            print("admintest: %s is not JSON: %s" % (sys.argv[2], e))
            return 1
    elif cmd == "get":
        try:
            with urllib.request.urlopen(sys.argv[2], timeout=5) as r:
                doc = load_text(r.read().decode("utf-8"))
            print(show(follow(doc, sys.argv[3])))
        except Exception as e:   # noqa: BLE001 -- any failure is a miss
            print("admintest: GET %s: %s: %r" % (sys.argv[2], sys.argv[3],
                                                 e), file=sys.stderr)
            return 1
    elif cmd == "hold":
        host = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
        s = socket.socket()
        s.bind((host, int(sys.argv[2])))
        s.listen(1)
        time.sleep(float(sys.argv[3]))
    else:
        print("admintest: unknown command " + cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
