#!/usr/bin/env python3
"""pkg-lists.py -- compares a package description's file list with a
staged `make install` tree (tests/packaging/test-rpm-spec.sh and
test-freebsd-port.sh).

  pkg-lists.py rpm SPEC_EXPANDED TREE [EXTRA...]
      SPEC_EXPANDED: `rpmspec -P`'s output.  TREE: the staged install
      already moved to the package's paths (/usr/bin, /usr/lib64, ...).
      EXTRA: absolute paths the spec's %install adds (units, settings);
      a trailing "/" marks a directory.  Every %files entry must match
      something, every staged file and EXTRA must be packaged exactly
      once.
  pkg-lists.py plist PKG_PLIST TREE [EXTRA...]
      PKG_PLIST: the port's pkg-plist.  TREE: the staged install moved
      to PREFIX-relative paths (TREE/bin/dkv, TREE/libdata/...).  EXTRA:
      PREFIX-relative files the port adds (the sample settings, docs)
      and absolute directories ("/var/db/dkv/").  Same checks.

Prints one line per check, "PASS: ..." or "FAIL: ...".  Exit status 0.
"""
import fnmatch
import os
import re
import sys

SECTIONS = re.compile(r"^%(package|description|prep|build|install|check|"
                      r"clean|pre|post|preun|postun|pretrans|posttrans|"
                      r"trigger\w*|filetriggerin|filetriggerun|files|"
                      r"changelog|verifyscript|generate_buildrequires)"
                      r"(\s|$)")


def report(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what)


def tree_files(tree):
    """Files and symbolic links under TREE, as absolute package paths."""
    out = set()
    for root, dirs, names in os.walk(tree):
        for name in names + [d for d in dirs
                             if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, name)
            out.add("/" + os.path.relpath(full, tree).replace(os.sep, "/"))
    return out


def rpm_entries(text):
    """The %files entries of an expanded spec: (package, kind, path) with
    kind "file" (a path or glob: a directory means its whole tree), "dir"
    (%dir: the directory alone) or "doc" (%doc/%license: source files)."""
    entries = []
    package = None
    for line in text.splitlines():
        m = SECTIONS.match(line)
        if m:
            package = None
            if m.group(1) == "files":
                words = line.split()[1:]
                words = [w for w in words if not w.startswith("-")]
                package = words[0] if words else "main"
            continue
        if package is None:
            continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind = "file"
        # Directives: %attr(...), %config(...), %verify(...), %defattr,
        # %ghost, %dir, %doc, %license.
        while line.startswith("%"):
            m = re.match(r"%(\w+)(\([^)]*\))?\s*", line)
            if not m:
                break
            word = m.group(1)
            if word == "dir":
                kind = "dir"
            elif word in ("doc", "license"):
                kind = "doc"
            elif word == "defattr":
                line = ""
                break
            line = line[m.end():]
        if not line:
            continue
        for path in line.split():
            entries.append((package, kind, path))
    return entries


def covers(entry_path, kind, path):
    """True when a %files entry covers PATH."""
    if kind == "dir":
        return path.rstrip("/") == entry_path.rstrip("/")
    if fnmatch.fnmatchcase(path, entry_path):
        return True
    # A directory entry takes its whole tree.
    parts = path.split("/")
    for i in range(1, len(parts)):
        if fnmatch.fnmatchcase("/".join(parts[:i]), entry_path):
            return True
    return False


def compare(entries, expected, label):
    """Every entry matches something, everything is packaged once."""
    for package, kind, path in entries:
        hits = [p for p in expected if covers(path, kind, p)]
        report(bool(hits), "%s: %s (%s) matches an installed file"
               % (label, path, package))
    for p in sorted(expected):
        owners = ["%s %s" % (pkg, path) for pkg, kind, path in entries
                  if covers(path, kind, p)]
        if len(owners) == 1:
            report(True, "%s: %s packaged" % (label, p))
        elif not owners:
            report(False, "%s: %s installed but not packaged" % (label, p))
        else:
            report(False, "%s: %s packaged twice: %s"
                   % (label, p, ", ".join(owners)))


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("rpm", "plist"):
        sys.stderr.write(__doc__)
        return 2
    mode, listfile, tree = sys.argv[1:4]
    extra = sys.argv[4:]
    text = open(listfile, encoding="utf-8").read()
    if mode == "rpm":
        entries = [e for e in rpm_entries(text) if e[1] != "doc"]
        report(bool(entries), "rpm: the spec has %files entries")
        expected = tree_files(tree) | set(e.rstrip("/") for e in extra)
        compare(entries, expected, "rpm")
        return 0
    # pkg-plist: one PREFIX-relative file per line; @dir, @sample and
    # the %%PORTDOCS%% / %%PORTEXAMPLES%% prefixes; other @keywords are
    # instructions, not files.
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("@comment"):
            continue
        line = re.sub(r"^(%%[A-Z_]+%%)+", "", line)
        m = re.match(r"@(\w+)(\([^)]*\))?\s+(.*)$", line)
        if m:
            if m.group(1) in ("dir", "dirrm", "dirrmtry"):
                entries.append(("plist", "dir", m.group(3)))
            elif m.group(1) == "sample":
                # @sample FILE.sample [TARGET]: the package has FILE.sample.
                entries.append(("plist", "file", m.group(3).split()[0]))
            continue
        if line.startswith("@"):
            continue
        entries.append(("plist", "file", line))
    entries = [(p, k, path if path.startswith("/") else "/" + path)
               for p, k, path in entries]
    report(bool(entries), "plist: pkg-plist lists files")
    expected = tree_files(tree)
    expected |= set("/" + e.strip("/") for e in extra)
    compare(entries, expected, "plist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
