#!/bin/sh
# check-win32-sources.sh -- run check-win32-sources.py (the Visual Studio
# projects in win32/ must list the sources Makefile.am lists; config-win32.h
# must mirror configure.ac).  Run by `make check` and by scripts/run.sh
# (stage win32check).  Skipped (exit 77) when python3 is missing.
#   scripts/check-win32-sources.sh [--fix]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=${top_srcdir:-$here/..}
command -v python3 >/dev/null 2>&1 || {
    echo "check-win32-sources: python3 not found; skipped"; exit 77; }
exec python3 "$here/check-win32-sources.py" "$@" "$top"
