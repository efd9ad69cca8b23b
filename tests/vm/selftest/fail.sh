#!/bin/sh
echo "this script fails on purpose"
exit 3
