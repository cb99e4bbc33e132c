#!/bin/sh
# test-cli-node.sh -- tests/cli/test-cli.sh against a real dkv-node (from
# the build tree, loopback, port picked by the node), so every ClientShell
# command is also checked over the client protocol.  Run by `make check`.
here=$(cd "$(dirname "$0")" && pwd)
DKV_CLI_NODE=1
export DKV_CLI_NODE
exec sh "$here/test-cli.sh" "$@"
