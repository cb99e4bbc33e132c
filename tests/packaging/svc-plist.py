#!/usr/bin/env python3
"""svc-plist.py -- checks the launchd job org.dkv.manager.plist for
test-launchd.sh: it loads with plistlib, its keys have the types launchd
wants, and its names and paths are the macOS column of the table in
docs/internals/operations.md ("Names and paths").

    svc-plist.py PLIST OPERATIONS_MD [UNIT]

UNIT, dkv-manager.service, gives LimitNOFILE to compare the file limit
with.  Prints "ok WHAT" or "FAIL WHAT" per check and a last line
"N checks, M failed"; exit status 1 when a check failed.
"""
import plistlib
import re
import sys

results = []


def check(what, cond):
    results.append((what, bool(cond)))
    print("%s %s" % ("ok" if cond else "FAIL", what))


def macos_column(md_path):
    """The macOS cells of the "Names and paths" table, by row name, with
    the backquotes removed."""
    rows = {}
    col = None
    with open(md_path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("|"):
                if col is not None and rows:
                    break
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if col is None:
                if "macOS" in cells:
                    col = cells.index("macOS")
                continue
            if set(cells[0]) <= set("- "):
                continue
            if col < len(cells):
                rows[cells[0]] = cells[col].replace("`", "")
    return rows


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1], "rb") as f:
            job = plistlib.load(f)
    except Exception as e:   # noqa: BLE001 -- any failure is the answer
        check("the plist loads (%s)" % e, False)
        job = None
    else:
        check("the plist loads", isinstance(job, dict))
    doc = macos_column(sys.argv[2])
    check("operations.md has the macOS column", doc.get("service"))
    if not isinstance(job, dict):
        return finish()

    def typed(key, kind):
        ok = isinstance(job.get(key), kind)
        if kind is int:
            ok = ok and not isinstance(job.get(key), bool)
        check("%s is a %s" % (key, kind.__name__), ok)
        return job.get(key) if ok else None

    label = typed("Label", str)
    check("Label is the service of operations.md (%s)" % doc.get("service"),
          label is not None and label == doc.get("service"))
    args = typed("ProgramArguments", list) or []
    check("ProgramArguments are strings",
          args and all(isinstance(a, str) for a in args))
    prog_dir = doc.get("programs", "").replace("...", "")
    check("the program is dkv-manager in %s" % prog_dir,
          args and args[0] == prog_dir + "dkv-manager")
    conf = doc.get("manager settings")
    check("--config %s" % conf,
          "--config" in args and args.index("--config") + 1 < len(args)
          and args[args.index("--config") + 1] == conf)
    check("no Program key beside ProgramArguments", "Program" not in job)
    user = doc.get("runs as")
    check("UserName is %s" % user, typed("UserName", str) == user)
    check("GroupName is %s" % user, typed("GroupName", str) == user)
    check("RunAtLoad is true", typed("RunAtLoad", bool) is True)
    keep = typed("KeepAlive", dict)
    check("KeepAlive restarts on failure only",
          keep == {"SuccessfulExit": False})
    exit_to = typed("ExitTimeOut", int)
    # The nodes stop in parallel: 10 s each by default, then a kill and
    # up to 10 s more.
    check("ExitTimeOut leaves the nodes time to stop (>= 30)",
          exit_to is not None and exit_to >= 30)
    log = doc.get("manager log")
    check("StandardErrorPath is %s" % log,
          typed("StandardErrorPath", str) == log)
    check("StandardOutPath is %s" % log, typed("StandardOutPath", str) == log)
    soft = typed("SoftResourceLimits", dict) or {}
    nofile = soft.get("NumberOfFiles")
    check("SoftResourceLimits NumberOfFiles is an integer",
          isinstance(nofile, int) and not isinstance(nofile, bool))
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            m = re.search(r"^LimitNOFILE=(\d+)$", f.read(), re.M)
        check("NumberOfFiles equals the unit's LimitNOFILE",
              m is not None and nofile == int(m.group(1)))
    if "Umask" in job:
        check("Umask keeps files from others (027 or stricter)",
              isinstance(job["Umask"], int) and job["Umask"] & 0o027
              == 0o027)
    return finish()


def finish():
    failed = sum(1 for _, ok in results if not ok)
    print("%d checks, %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
