#!/usr/bin/env python3
"""check-psmodules.py -- static checks of dkv's PowerShell modules
(win32/powershell/Clustron.DKV.{AdminShell,ClientShell}), which cannot be
run here (no PowerShell):

  - every function in a manifest's FunctionsToExport is defined in the
    module (and listed by its Export-ModuleMember), and the other way round;
  - every cmdlet of the reference's AdminShell and ClientShell pages is
    exported by the right module;
  - braces, parentheses, brackets and quotes balance (a small PowerShell
    tokenizer: strings, here-strings, comments, backtick escapes);
  - each exported function runs the dkv command of its own name;
  - ValidateRange bounds are of one type (1L with [long]::MaxValue);
  - the private helper block is the same in both modules;
  - with a built dkv (DKV=path, not a .exe): every dkv command is exported
    by a module, and every parameter of a function is a parameter (or
    alias) of that dkv command.

Usage: check-psmodules.py [--self-test] [--dkv PATH] [MODULES_DIR]
Exit 0 when all holds, 1 with one line per problem otherwise.
"""
import os
import re
import subprocess
import sys
import tempfile

ADMIN_CMDLETS = [
    "Connect-DkvManager", "New-DkvStore", "Get-DkvStore", "Add-DkvInstance",
    "Start-DkvStore", "Stop-DkvStore", "Watch-DkvStoreMetrics",
]
ADMIN_EXTRA = ["Get-DkvAdminKey"]
CLIENT_CMDLETS = [
    "Connect-DkvStore", "Disconnect-DkvStore", "Get-DkvConnection",
    "Test-DkvConnection", "Get-DkvItem", "Get-DkvItems", "Set-DkvItem",
    "Set-DkvItems", "Remove-DkvItem", "Remove-DkvItems", "Refresh-DkvItem",
    "Set-DkvItemExpiration", "Get-DkvItemMetadata", "Test-DkvItem",
    "Get-DkvCounter", "Set-DkvCounter", "Increment-DkvCounter",
    "Decrement-DkvCounter", "Grant-DkvLease", "Refresh-DkvLease",
    "Revoke-DkvLease", "Test-DkvLease", "Watch-DkvKey", "Watch-DkvPrefix",
    "Test-DkvLatency", "Test-DkvThroughput", "Benchmark-DkvStore",
    "Stress-DkvStore",
]
MODULES = {
    "Clustron.DKV.AdminShell": ADMIN_CMDLETS + ADMIN_EXTRA,
    "Clustron.DKV.ClientShell": CLIENT_CMDLETS,
}
HELPERS_BEGIN = "# BEGIN DKV HELPERS"
HELPERS_END = "# END DKV HELPERS"
# PowerShell-side parameters that are not passed to dkv as they are.
PS_ONLY_PARAMS = {"WhatIf", "Confirm"}
CONSTANTS = {"true", "false", "null"}


# ------------------------------------------------------------- tokenizer

def mask(text):
    """TEXT with strings and comments blanked (newlines kept), and the
    problems found: unterminated strings, comments or here-strings."""
    out = []
    problems = []
    i = 0
    n = len(text)
    line = 1

    def blank(s):
        return "".join("\n" if c == "\n" else " " for c in s)

    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            out.append(c)
            i += 1
        elif c == "`" and i + 1 < n:
            out.append("  " if text[i + 1] != "\n" else " \n")
            if text[i + 1] == "\n":
                line += 1
            i += 2
        elif text.startswith("<#", i):
            end = text.find("#>", i + 2)
            if end < 0:
                problems.append("line %d: unterminated <# comment" % line)
                end = n - 2
            seg = text[i:end + 2]
            line += seg.count("\n")
            out.append(blank(seg))
            i = end + 2
        elif c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(text[i:end]))
            i = end
        elif c == "@" and i + 1 < n and text[i + 1] in "'\"" and \
                text[i + 2:i + 3] in ("\n", "\r"):
            q = text[i + 1]
            m = re.compile(r"\n" + re.escape(q) + "@").search(text, i + 2)
            if m is None:
                problems.append("line %d: unterminated here-string" % line)
                end = n
            else:
                end = m.end()
            seg = text[i:end]
            line += seg.count("\n")
            out.append(blank(seg))
            i = end
        elif c in "'\"":
            j = i + 1
            start_line = line
            closed = False
            while j < n:
                d = text[j]
                if c == '"' and d == "`":
                    j += 2
                    continue
                if d == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    closed = True
                    break
                j += 1
            if not closed:
                problems.append("line %d: unterminated %s string" %
                                (start_line, "single-quoted" if c == "'"
                                 else "double-quoted"))
                j = n - 1
            seg = text[i:j + 1]
            line += seg.count("\n")
            out.append(c + blank(seg[1:-1]) + c if len(seg) >= 2
                       else blank(seg))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out), problems


def balance(text):
    """Problems with (), [], {} and quotes in TEXT."""
    masked, problems = mask(text)
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    line = 1
    for c in masked:
        if c == "\n":
            line += 1
        elif c in "([{":
            stack.append((c, line))
        elif c in ")]}":
            if not stack or stack[-1][0] != pairs[c]:
                problems.append("line %d: unbalanced '%s'" % (line, c))
                return problems
            stack.pop()
    for c, ln in stack:
        problems.append("line %d: '%s' never closed" % (ln, c))
    return problems


# ---------------------------------------------------------------- parsing

def manifest_exports(psd1):
    m = re.search(r"FunctionsToExport\s*=\s*@\((.*?)\)", psd1, re.S)
    if m is None:
        return None
    return re.findall(r"'([^']+)'", m.group(1))


def manifest_root(psd1):
    m = re.search(r"RootModule\s*=\s*'([^']+)'", psd1)
    return m.group(1) if m else None


def functions(psm1):
    """{name: body text} of the top-level functions of PSM1."""
    masked, _ = mask(psm1)
    out = {}
    for m in re.finditer(r"(?m)^function\s+([A-Za-z][\w-]*)\s*\{", masked):
        depth = 0
        for j in range(m.end() - 1, len(masked)):
            if masked[j] == "{":
                depth += 1
            elif masked[j] == "}":
                depth -= 1
                if depth == 0:
                    break
        out[m.group(1)] = (psm1[m.start():j + 1], masked[m.start():j + 1])
    return out


def module_member_exports(psm1):
    m = re.search(r"Export-ModuleMember\s+-Function\s+@\((.*?)\)", psm1,
                  re.S)
    return re.findall(r"'([^']+)'", m.group(1)) if m else None


def strip_brackets(s):
    """S without its [...] parts (nested)."""
    out = []
    depth = 0
    for c in s:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def param_names(masked_body):
    """The parameter names of a function (from its masked text)."""
    m = re.search(r"\bparam\s*\(", masked_body)
    if m is None:
        return []
    depth = 0
    for j in range(m.end() - 1, len(masked_body)):
        if masked_body[j] == "(":
            depth += 1
        elif masked_body[j] == ")":
            depth -= 1
            if depth == 0:
                break
    block = strip_brackets(masked_body[m.end():j])
    return [v for v in re.findall(r"\$([A-Za-z]\w*)", block)
            if v.lower() not in CONSTANTS]


# ----------------------------------------------------------------- checks

def check_module(name, psd1, psm1, expected):
    problems = []
    where = name + ".psm1"
    for p in balance(psm1):
        problems.append("%s: %s" % (where, p))
    for p in balance(psd1):
        problems.append("%s.psd1: %s" % (name, p))
    exports = manifest_exports(psd1)
    if exports is None:
        return problems + ["%s.psd1: no FunctionsToExport" % name]
    if manifest_root(psd1) != name + ".psm1":
        problems.append("%s.psd1: RootModule is not %s.psm1" % (name, name))
    # ValidateRange wants its bounds of one type: 1 with [long]::MaxValue
    # fails when the function is called (write 1L).
    for m in re.finditer(r"ValidateRange\(\s*-?\d+\s*,\s*\[long\]", psm1):
        problems.append("%s: line %d: ValidateRange mixes int and long "
                        "bounds (write 1L)" % (where,
                                               psm1.count("\n", 0,
                                                          m.start()) + 1))
    funcs = functions(psm1)
    for f in exports:
        if f not in funcs:
            problems.append("%s: exported function %s is not defined" %
                            (where, f))
        elif "'%s'" % f not in funcs[f][0]:
            problems.append("%s: %s does not run dkv %s" % (where, f, f))
    for f in expected:
        if f not in exports:
            problems.append("%s.psd1: cmdlet %s is not exported" % (name, f))
    members = module_member_exports(psm1)
    if members is None:
        problems.append("%s: no Export-ModuleMember -Function" % where)
    elif sorted(members) != sorted(exports):
        problems.append("%s: Export-ModuleMember %s differs from the "
                        "manifest's FunctionsToExport" % (where, sorted(
                            set(members) ^ set(exports))))
    return problems


def helper_block(psm1):
    a = psm1.find(HELPERS_BEGIN)
    b = psm1.find(HELPERS_END)
    return psm1[a:b] if 0 <= a < b else None


def dkv_commands(dkv):
    out = subprocess.run([dkv, "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    return re.findall(r"(?m)^  ([A-Z][a-z]+-Dkv\w+)", out)


def dkv_params(dkv, command):
    """{name or alias (lower case)} of COMMAND's parameters."""
    out = subprocess.run([dkv, "help", command], capture_output=True,
                         text=True, timeout=30).stdout
    names = set(n.lower() for n in re.findall(r"(?m)^    -(\w+)", out))
    names |= set(n.lower() for n in re.findall(r"Alias: -(\w+)", out))
    return names


def check_against_dkv(modules, dkv, params_of=dkv_params,
                      commands_of=dkv_commands):
    problems = []
    exported = {}
    for name, (psd1, psm1) in modules.items():
        for f in manifest_exports(psd1) or []:
            exported[f] = (name, psm1)
    for c in commands_of(dkv):
        if c not in exported:
            problems.append("dkv command %s is exported by no module" % c)
    for f, (name, psm1) in sorted(exported.items()):
        funcs = functions(psm1)
        if f not in funcs:
            continue
        known = params_of(dkv, f)
        if not known:
            problems.append("%s: dkv does not know the command %s" %
                            (name, f))
            continue
        for p in param_names(funcs[f][1]):
            if p in PS_ONLY_PARAMS:
                continue
            if p.lower() not in known:
                problems.append("%s: %s -%s is not a parameter of dkv %s"
                                % (name, f, p, f))
    return problems


def load(moddir):
    modules = {}
    problems = []
    for name in MODULES:
        d = os.path.join(moddir, name)
        try:
            with open(os.path.join(d, name + ".psd1"), encoding="utf-8") as f:
                psd1 = f.read()
            with open(os.path.join(d, name + ".psm1"), encoding="utf-8") as f:
                psm1 = f.read()
        except OSError as e:
            problems.append("%s: %s" % (name, e))
            continue
        modules[name] = (psd1, psm1)
    return modules, problems


def check_all(moddir, dkv=None):
    modules, problems = load(moddir)
    for name, (psd1, psm1) in modules.items():
        problems += check_module(name, psd1, psm1, MODULES[name])
    blocks = [helper_block(psm1) for _, psm1 in modules.values()]
    if any(b is None for b in blocks):
        problems.append("a module lacks the helper block markers")
    elif len(set(blocks)) > 1:
        problems.append("the helper blocks of the modules differ")
    if dkv is not None:
        problems += check_against_dkv(modules, dkv)
    return problems


# -------------------------------------------------------------- self-test

GOOD_PSD1 = """@{
    RootModule = 'M.psm1'
    FunctionsToExport = @('Get-DkvItem', 'Set-DkvItem')
}
"""
GOOD_PSM1 = """# a comment with an unbalanced ( and a quote '
function Get-DkvItem {
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [ValidateRange(1L, [long]::MaxValue)]
        [string] $Key
    )
    $s = "it's `"fine`" {"
    $t = 'say ''hi'' )'
    $h = @'
here { ( [
'@
    Invoke-DkvJson (ConvertTo-DkvArgumentList 'Get-DkvItem' $PSBoundParameters)
}

function Set-DkvItem {
    param([string] $Key, [object] $Value)
    Invoke-DkvJson 'Set-DkvItem'
}
Export-ModuleMember -Function @('Get-DkvItem', 'Set-DkvItem')
"""


def self_test():
    failures = []

    def expect(cond, what):
        if not cond:
            failures.append(what)

    want = ["Get-DkvItem", "Set-DkvItem"]
    expect(check_module("M", GOOD_PSD1, GOOD_PSM1, want) == [],
           "a good module is refused: %s" %
           check_module("M", GOOD_PSD1, GOOD_PSM1, want))
    # Unbalanced brace, bracket, parenthesis, and unterminated strings.
    for bad, what in [
            (GOOD_PSM1.replace("[CmdletBinding()]", "[CmdletBinding(]"),
             "unbalanced"),
            (GOOD_PSM1.replace("$Key\n    )", "$Key\n    "), "unbalanced"),
            (GOOD_PSM1.replace("{\n    ", "{ {\n    ", 1), "never closed"),
            (GOOD_PSM1 + "$u = 'open\n", "unterminated single-quoted"),
            (GOOD_PSM1.replace('{"\n', '{\n'), "unterminated double-quoted"),
            (GOOD_PSM1.replace('`"fine`"', '`"fine"'),
             "unterminated double-quoted"),
            (GOOD_PSM1.replace("\n'@\n", "\n '@\n"), "here-string"),
            (GOOD_PSM1 + "}\n", "unbalanced"),
            (GOOD_PSM1.replace("(1L,", "(1,"), "mixes int and long")]:
        got = check_module("M", GOOD_PSD1, bad, want)
        expect(any(what in p for p in got),
               "not detected (%s): %s" % (what, got))
    # A function exported but not defined; one missing from the exports.
    got = check_module("M", GOOD_PSD1.replace("'Set-DkvItem'",
                                              "'Set-DkvItem', 'Get-X'"),
                       GOOD_PSM1, want)
    expect(any("Get-X is not defined" in p for p in got), "undefined: %s"
           % got)
    got = check_module("M", GOOD_PSD1.replace(", 'Set-DkvItem'", ""),
                       GOOD_PSM1, want)
    expect(any("Set-DkvItem is not exported" in p for p in got),
           "unexported: %s" % got)
    # A function that runs another command.
    got = check_module("M", GOOD_PSD1, GOOD_PSM1.replace(
        "Invoke-DkvJson 'Set-DkvItem'", "Invoke-DkvJson 'Get-DkvItem'"),
        want)
    expect(any("does not run dkv Set-DkvItem" in p for p in got),
           "wrong command: %s" % got)
    # Parameters: found (not $true, not [long]), and checked against dkv.
    funcs = functions(GOOD_PSM1)
    expect(param_names(funcs["Get-DkvItem"][1]) == ["Key"],
           "params: %s" % param_names(funcs["Get-DkvItem"][1]))
    expect(param_names(funcs["Set-DkvItem"][1]) == ["Key", "Value"],
           "params: %s" % param_names(funcs["Set-DkvItem"][1]))
    mods = {"M": (GOOD_PSD1, GOOD_PSM1)}
    got = check_against_dkv(
        mods, "dkv", params_of=lambda d, c: {"key"},
        commands_of=lambda d: ["Get-DkvItem", "Set-DkvItem", "Get-DkvNew"])
    expect(any("Set-DkvItem -Value is not" in p for p in got) and
           any("Get-DkvNew is exported by no module" in p for p in got) and
           len(got) == 2, "dkv cross-check: %s" % got)
    # The real tree is checked on files: a damaged copy is refused.
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "win32", "powershell")
    if os.path.isdir(here):
        with tempfile.TemporaryDirectory() as tmp:
            for name in MODULES:
                os.makedirs(os.path.join(tmp, name))
                for ext in (".psd1", ".psm1"):
                    with open(os.path.join(here, name, name + ext),
                              encoding="utf-8") as f:
                        text = f.read()
                    if name.endswith("ClientShell") and ext == ".psm1":
                        text = text.replace("function Watch-DkvKey {",
                                            "function Watch-DkvKeyX {", 1)
                    with open(os.path.join(tmp, name, name + ext), "w",
                              encoding="utf-8") as f:
                        f.write(text)
            got = check_all(tmp)
            expect(any("Watch-DkvKey is not defined" in p for p in got),
                   "damaged tree: %s" % got)
    for f in failures:
        print("self-test: " + f)
    return 1 if failures else 0


def main(argv):
    args = argv[1:]
    dkv = os.environ.get("DKV") or None
    if args and args[0] == "--self-test":
        return self_test()
    if len(args) >= 2 and args[0] == "--dkv":
        dkv = args[1]
        args = args[2:]
    moddir = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "win32",
        "powershell")
    if dkv is not None and (dkv.endswith(".exe") or
                            not os.access(dkv, os.X_OK)):
        print("check-psmodules: %s not runnable here; dkv cross-check "
              "skipped" % dkv)
        dkv = None
    problems = check_all(moddir, dkv)
    for p in problems:
        print("check-psmodules: " + p)
    if not problems:
        print("check-psmodules: %d modules OK%s" % (
            len(MODULES), "" if dkv is None else " (checked against %s)"
            % dkv))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
