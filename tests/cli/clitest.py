#!/usr/bin/env python3
# clitest.py -- JSON checks for tests/cli/test-cli.sh (stdlib only).
#
#   clitest.py FILE PATH OP VALUE
#
# Loads FILE (the -Json output of one dkv command; several JSON documents,
# one after another, are read as a list), follows PATH (dot-separated
# object keys and list indexes, "." for the document itself) and compares
# with VALUE: OP is eq (JSON literal or plain string), ne, ge, gt, le,
# len (list length), has (the object has the key), keys (comma list of the
# object's keys, in order).  Exit 0 when it holds, 1 (with a message)
# when not.
import json
import sys


def load(path):
    text = open(path, encoding="utf-8").read()
    dec = json.JSONDecoder()
    docs, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)
    return docs[0] if len(docs) == 1 else docs


def follow(doc, path):
    if path == ".":
        return doc
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def literal(v):
    try:
        return json.loads(v)
    except ValueError:
        return v


def main():
    f, path, op, want = sys.argv[1:5]
    try:
        got = follow(load(f), path)
    except (KeyError, IndexError, ValueError) as e:
        print("clitest: %s: cannot read %s: %r" % (f, path, e))
        return 1
    if op == "eq":
        ok = got == literal(want)
    elif op == "ne":
        ok = got != literal(want)
    elif op in ("ge", "gt", "le"):
        w = float(want)
        ok = {"ge": got >= w, "gt": got > w, "le": got <= w}[op]
    elif op == "len":
        ok = len(got) == int(want)
    elif op == "has":
        ok = want in got
    elif op == "keys":
        ok = list(got.keys()) == want.split(",")
    else:
        print("clitest: unknown op " + op)
        return 2
    if not ok:
        print("clitest: %s: %s is %r; expected %s %s" % (f, path, got, op,
                                                        want))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
