#!/bin/sh
# checksrc.sh -- dkv's source check (in the spirit of curl's checksrc).
#
# Bans, in every C file of src/ platform/ tests/ examples/ bench/:
#   sprintf vsprintf strcpy strcat strtok atoi gets
# and, in src/ and platform/ only, raw malloc calloc realloc free outside
# src/common/alloc.c (use pools, or dkv_malloc and friends).
# Comments and string literals are ignored.  A line may opt out with the
# comment  /* checksrc: allow */  (say why next to it).
#
# Usage: scripts/checksrc.sh [FILE...]   (default: every C file)
# Exit status 0 when clean, 1 with a list of violations.  Run by
# `make check` (TESTS) and `make checksrc`.
set -eu
top=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
command -v python3 >/dev/null 2>&1 || {
    echo "checksrc: python3 not found; skipped"; exit 77; }
exec python3 - "$top" "$@" <<'PYEOF'
import os, re, sys

top = sys.argv[1]
files = sys.argv[2:]
DIRS = ["src", "platform", "tests", "examples", "bench"]
ALLOC_DIRS = ("src/", "platform/")
ALLOC_FILE = "src/common/alloc.c"

BANNED = re.compile(r"(?<![\w.>])(v?sprintf|strcpy|strcat|strtok|atoi|gets)"
                    r"\s*\(")
RAW_ALLOC = re.compile(r"(?<![\w.>])(malloc|calloc|realloc|free)\s*\(")
ALLOW = "checksrc: allow"

def strip(text):
    """Blank out comments and string/char literals, keeping line breaks
    and the allow markers' lines recognisable."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + (c if j - i > 1 else ""))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)

if not files:
    for d in DIRS:
        for root, _, names in os.walk(os.path.join(top, d)):
            for name in sorted(names):
                if name.endswith((".c", ".h")):
                    files.append(os.path.join(root, name))
files.sort()

bad = 0
for path in files:
    rel = os.path.relpath(path, top).replace(os.sep, "/")
    try:
        raw = open(path, encoding="utf-8", errors="replace").read()
    except OSError as e:
        print("checksrc: %s: %s" % (rel, e)); bad += 1; continue
    raw_lines = raw.split("\n")
    for no, line in enumerate(strip(raw).split("\n"), 1):
        if ALLOW in raw_lines[no - 1]:
            continue
        for m in BANNED.finditer(line):
            print("%s:%d: banned function %s()" % (rel, no, m.group(1)))
            bad += 1
        if rel.startswith(ALLOC_DIRS) and rel != ALLOC_FILE:
            for m in RAW_ALLOC.finditer(line):
                print("%s:%d: raw %s() outside %s: use a pool or dkv_%s()"
                      % (rel, no, m.group(1), ALLOC_FILE, m.group(1)))
                bad += 1
        if "\t" in raw_lines[no - 1]:
            print("%s:%d: tab character (indent with 4 spaces)" % (rel, no))
            bad += 1
        if len(raw_lines[no - 1]) > 80:
            print("%s:%d: line longer than 80 columns" % (rel, no))
            bad += 1
print("checksrc: %d file(s), %d problem(s)" % (len(files), bad))
sys.exit(1 if bad else 0)
PYEOF
