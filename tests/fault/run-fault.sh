#!/bin/sh
# run-fault.sh -- being written.
exit 77
