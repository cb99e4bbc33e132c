#!/usr/bin/env python3
"""check-win32-sources.py -- keep the Visual Studio build in step with
Makefile.am.

Makefile.am is the source of truth.  This script reads its source lists
(libdkv_core_la_SOURCES as the Windows branch of `if DKV_WIN32` sees it,
tests_unit_runner_SOURCES and those of the convenience libraries the runner
links, the installed headers) and compares them with the
ClCompile/ClInclude items of win32/libdkv.vcxproj and win32/dkv-tests.vcxproj
(and of the program projects in PROGRAM_PROJECTS: dkv-node.vcxproj,
dkv-manager.vcxproj and dkv.vcxproj).
It also checks that:
  - every win32 XML file is well-formed, and dkv.sln names every project
    with the GUID the project declares;
  - win32/config-win32.h mentions exactly the DKV_HAVE_* (and other DKV_*)
    macros configure.ac can define;
  - every C file under src/ platform/ tests/ examples/ bench/ is listed in
    some *_SOURCES variable (or EXTRA_DIST) of Makefile.am, so nothing is
    left out of the build or the tarball.

Usage: check-win32-sources.py [--fix] [TOP_SRCDIR]
  --fix   rewrite the vcxproj source item groups from Makefile.am.
Exit status 0 when everything matches, 1 with a diff otherwise.
Standard library only.
"""
import difflib
import os
import re
import sys
import xml.etree.ElementTree as ET

MSB = "{http://schemas.microsoft.com/developer/msbuild/2003}"


# ------------------------------------------------------------ Makefile.am

def parse_makefile_am(path, conds):
    """Variables of an automake file as lists of words, following
    `if COND`/`else`/`endif` with the truth values in CONDS (a missing
    condition counts as false) and `+=`.  With CONDS None, every branch is
    taken (the union of all configurations)."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)
    variables = {}
    stack = []
    for raw in text.split("\n"):
        if raw.startswith("\t"):
            continue  # recipe line
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^if\s+(!?)(\w+)$", line)
        if m:
            if conds is None:
                stack.append(True)
            else:
                val = conds.get(m.group(2), False)
                stack.append(not val if m.group(1) else val)
            continue
        if line == "else" or line.startswith("else "):
            if conds is not None:
                stack[-1] = not stack[-1]
            continue
        if line == "endif" or line.startswith("endif "):
            stack.pop()
            continue
        if not all(stack):
            continue
        m = re.match(r"^(\w+)\s*(\+?=)\s*(.*)$", line)
        if m:
            name, op, value = m.groups()
            words = value.split()
            if op == "+=":
                variables.setdefault(name, []).extend(words)
            else:
                variables[name] = words
    return variables


def expand(words, variables, depth=0):
    out = []
    for w in words:
        m = re.match(r"^\$[({](\w+)[)}]$", w)
        if m and m.group(1) in variables and depth < 10:
            out.extend(expand(variables[m.group(1)], variables, depth + 1))
        else:
            out.append(w)
    return out


def sources(variables, name):
    return [w for w in expand(variables.get(name, []), variables)
            if w.endswith((".c", ".h"))]


def linked_libs(variables, prefix):
    """The *_SOURCES variables of the convenience libraries (noinst .la)
    that PREFIX (a canonical program name such as dkv_node) links through
    PREFIX_LDADD, except libdkv-core.la, which the Visual Studio projects
    get from libdkv.vcxproj."""
    noinst = expand(variables.get("noinst_LTLIBRARIES", []), variables)
    out = []
    for w in expand(variables.get(prefix + "_LDADD", []), variables):
        if w.endswith(".la") and w in noinst and w != "libdkv-core.la":
            out.append(re.sub(r"[^A-Za-z0-9]", "_", w) + "_SOURCES")
    return out


def program_sources(variables, prefix):
    """The sources a Visual Studio project of program PREFIX compiles:
    its own and those of the convenience libraries it links."""
    return [p for n in [prefix + "_SOURCES"] + linked_libs(variables, prefix)
            for p in sources(variables, n)]


# ------------------------------------------------------------- vcxproj

def norm_vs_path(p):
    """A vcxproj Include path (relative to win32/) as a tree path."""
    p = p.replace("\\", "/")
    return os.path.normpath(os.path.join("win32", p)).replace(os.sep, "/")


def vs_items(tree, kind):
    return [norm_vs_path(e.get("Include"))
            for e in tree.iter(MSB + kind) if e.get("Include")]


def compare(what, expected, got, problems):
    exp, have = sorted(set(expected)), sorted(set(got))
    if exp != have:
        diff = "\n".join(difflib.unified_diff(
            exp, have, "Makefile.am", what, lineterm=""))
        problems.append("%s differs from Makefile.am:\n%s" % (what, diff))
    for dup in sorted({x for x in got if got.count(x) > 1}):
        problems.append("%s lists %s twice" % (what, dup))


def item_block(kind, paths, indent="  "):
    lines = []
    for p in sorted(set(paths)):
        rel = os.path.relpath(p, "win32").replace("/", "\\")
        lines.append('%s%s<%s Include="%s" />' % (indent, indent, kind, rel))
    return "\n".join(lines)


def fix_project(path, groups):
    """Rewrite the item groups labelled in GROUPS ({label: (kind, paths)})."""
    text = open(path, encoding="utf-8").read()
    for label, (kind, paths) in groups.items():
        pat = re.compile(r'(<ItemGroup Label="%s">)(.*?)(</ItemGroup>)'
                         % re.escape(label), re.S)
        if not pat.search(text):
            sys.exit("%s: no <ItemGroup Label=\"%s\"> to fix" % (path, label))
        block = item_block(kind, paths)
        text = pat.sub(lambda m: m.group(1) + "\n" + block
                       + ("\n" if block else "") + "  " + m.group(3),
                       text, count=1)
    with open(path, "w", encoding="utf-8", newline="\r\n") as f:
        f.write(text.replace("\r\n", "\n"))


# Program projects: each vcxproj compiles the sources of a program of
# Makefile.am (as the Windows branch sees it): the program's own and those
# of the convenience libraries its _LDADD links besides libdkv-core (which
# the projects get from libdkv.vcxproj).  Each must exist; checked, and its
# source item groups rewritten by --fix.
PROGRAM_PROJECTS = [
    ("win32/dkv-node.vcxproj", "dkv_node"),
    ("win32/dkv-manager.vcxproj", "dkv_manager"),
    ("win32/dkv.vcxproj", "dkv"),
]


# ------------------------------------------------------------------ main

def main(argv):
    fix = "--fix" in argv
    args = [a for a in argv if a != "--fix"]
    top = args[0] if args else os.environ.get(
        "top_srcdir", os.path.join(os.path.dirname(__file__), ".."))
    top = os.path.abspath(top)
    os.chdir(top)
    problems = []

    win = parse_makefile_am("Makefile.am", {"DKV_WIN32": True})
    every = parse_makefile_am("Makefile.am", None)

    lib_src = sources(win, "libdkv_core_la_SOURCES")
    # The runner's own sources and those of the libraries it links
    # (libdkv-node, libdkv-admin, ...), as for the program projects.
    test_src = program_sources(win, "tests_unit_runner")
    public = sources(win, "include_HEADERS") + sources(
        win, "dkvinclude_HEADERS")
    if not lib_src or not test_src or not public:
        problems.append("Makefile.am: cannot find libdkv_core_la_SOURCES, "
                        "tests_unit_runner_SOURCES or the header lists")

    lib_proj = "win32/libdkv.vcxproj"
    test_proj = "win32/dkv-tests.vcxproj"
    if fix:
        fix_project(lib_proj, {
            "Sources": ("ClCompile", [p for p in lib_src if p.endswith(".c")]),
            "Headers": ("ClInclude", [p for p in lib_src if p.endswith(".h")]),
            "PublicHeaders": ("ClInclude", public)})
        fix_project(test_proj, {
            "Sources": ("ClCompile",
                        [p for p in test_src if p.endswith(".c")]),
            "Headers": ("ClInclude",
                        [p for p in test_src if p.endswith(".h")])})
        print("check-win32-sources: rewrote the source lists of %s and %s"
              % (lib_proj, test_proj))

    programs = {}
    for proj, prefix in PROGRAM_PROJECTS:
        names = [prefix + "_SOURCES"] + linked_libs(win, prefix)
        for n in names:
            if not sources(win, n):
                problems.append("Makefile.am: cannot find %s (for %s)"
                                % (n, proj))
        if not os.path.exists(proj):
            problems.append("%s is missing (it builds %s)"
                            % (proj, ", ".join(names)))
        else:
            programs[proj] = program_sources(win, prefix)
            if fix:
                fix_project(proj, {
                    "Sources": ("ClCompile", [p for p in programs[proj]
                                              if p.endswith(".c")]),
                    "Headers": ("ClInclude", [p for p in programs[proj]
                                              if p.endswith(".h")])})
                print("check-win32-sources: rewrote the source lists of %s"
                      % proj)

    # Well-formed XML.
    trees = {}
    for path in [lib_proj, test_proj] + sorted(programs):
        try:
            trees[path] = ET.parse(path)
        except (ET.ParseError, OSError) as e:
            problems.append("%s: not well-formed XML: %s" % (path, e))

    if lib_proj in trees:
        t = trees[lib_proj]
        compare(lib_proj + " ClCompile",
                [p for p in lib_src if p.endswith(".c")],
                vs_items(t, "ClCompile"), problems)
        compare(lib_proj + " ClInclude",
                [p for p in lib_src if p.endswith(".h")] + public,
                vs_items(t, "ClInclude"), problems)
    if test_proj in trees:
        t = trees[test_proj]
        compare(test_proj + " ClCompile",
                [p for p in test_src if p.endswith(".c")],
                vs_items(t, "ClCompile"), problems)
        compare(test_proj + " ClInclude",
                [p for p in test_src if p.endswith(".h")],
                vs_items(t, "ClInclude"), problems)

    for proj, srcs in sorted(programs.items()):
        if proj in trees:
            compare(proj + " ClCompile",
                    [p for p in srcs if p.endswith(".c")],
                    vs_items(trees[proj], "ClCompile"), problems)
            compare(proj + " ClInclude",
                    [p for p in srcs if p.endswith(".h")],
                    vs_items(trees[proj], "ClInclude"), problems)

    # Every listed file exists.
    for p in sorted(set(lib_src + test_src + public
                        + [x for v in programs.values() for x in v])):
        if not os.path.exists(p):
            problems.append("Makefile.am lists %s, which does not exist" % p)

    # The solution names every project with its GUID.
    try:
        sln = open("win32/dkv.sln", encoding="utf-8-sig").read()
        for path, t in trees.items():
            g = t.find(".//" + MSB + "ProjectGuid")
            name = os.path.basename(path)
            if g is None:
                problems.append("%s has no ProjectGuid" % path)
                continue
            if not re.search(r'"%s",\s*"%s"' % (re.escape(name),
                                                 re.escape(g.text.strip())),
                             sln, re.I):
                problems.append("win32/dkv.sln does not reference %s with "
                                "its GUID %s" % (name, g.text.strip()))
    except OSError as e:
        problems.append("win32/dkv.sln: %s" % e)

    # config-win32.h mirrors configure.ac.
    ac = open("configure.ac", encoding="utf-8").read()
    ac_macros = set(re.findall(r"AC_DEFINE\(\[?(DKV_\w+)", ac))
    for kind, arg in re.findall(r"^\s*DKV_CHECK_(FUNC|HEADER)\(\[([^\]]+)\]",
                                ac, re.M):
        ac_macros.add("DKV_HAVE_" + re.sub(r"[^A-Za-z0-9]", "_", arg).upper())
    ac_macros = {m for m in ac_macros if m != "DKV_HAVE_"}
    try:
        cw = open("win32/config-win32.h", encoding="utf-8").read()
        cw_macros = set(re.findall(r"#\s*(?:define|undef)\s+(DKV_\w+)", cw))
        cw_macros.discard("DKV_CONFIG_WIN32_H")
        compare("win32/config-win32.h macros", sorted(ac_macros),
                sorted(cw_macros), problems)
    except OSError as e:
        problems.append("win32/config-win32.h: %s" % e)

    # Every C file of the tree is built or distributed.
    listed = set()
    for name, words in every.items():
        if name.endswith("_SOURCES") or name.endswith("_HEADERS") \
                or name == "EXTRA_DIST":
            listed.update(expand(words, every))
    for d in ("src", "platform", "tests", "examples", "bench"):
        for root, _, names in os.walk(d):
            for n in names:
                if n.endswith((".c", ".h")):
                    p = os.path.join(root, n).replace(os.sep, "/")
                    if p not in listed and not any(
                            p.startswith(x.rstrip("/") + "/")
                            for x in listed):
                        problems.append("%s is in no *_SOURCES list of "
                                        "Makefile.am (not built, not "
                                        "distributed)" % p)

    for p in problems:
        print("check-win32-sources: " + p)
    print("check-win32-sources: %d library, %d test, %d public header "
          "file(s); %d problem(s)" % (len(set(lib_src)), len(set(test_src)),
                                      len(set(public)), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
