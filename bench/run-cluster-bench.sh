#!/bin/sh
# run-cluster-bench.sh -- being written.
exit 0
