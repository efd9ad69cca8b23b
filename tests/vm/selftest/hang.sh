#!/bin/sh
# Hangs, with a child in the background: the timeout must kill both.
echo "about to hang"
sleep 600 &
sleep 600
