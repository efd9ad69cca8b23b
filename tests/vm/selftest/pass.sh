#!/bin/sh
echo "this script passes"
exit 0
