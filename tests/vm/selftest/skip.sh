#!/bin/sh
echo "not applicable here"
exit 77
