#!/bin/sh
# autogen.sh -- regenerate the build system from a git checkout
# (configure, Makefile.in, build-aux/, m4/).  Then: ./configure && make.
set -e
cd "$(dirname "$0")"
exec autoreconf -fi
