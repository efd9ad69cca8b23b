# Helpers for the session tests (31-, 32-, 33-): a client's sessions to
# its poolds fail and come back.  Source after swap.sh and cluster.sh.
#
#   sess_line ADDR            that poold's line of the poolds sysfs file
#   sess_field ADDR FIELD     one key=value field of it (state, reconnects...)
#   wait_sess ADDR FIELD VALUE [SECS]   until the field has that value
#   inject_fault ADDR         the session fails as on a transport error
#   slots_on ADDR             slot numbers the chunk map puts on that poold
#   slot_read SLOT OUT        read one whole slot (direct I/O) into OUT
#   err_count KIND            a line of the errors sysfs file
#   no_io_errors WHAT         fail unless no io, lost, down or post error
#                             was counted (WHAT: when, for the message)

RSWAP_INJECT=/sys/kernel/debug/rswap_client/inject_fault

sess_line() { rsysfs poolds | grep "^$1 "; }

sess_field() { sess_line "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

sess_is() { [ "$(sess_field "$1" "$2")" = "$3" ]; }

wait_sess() { wait_until "${4:-60}" sess_is "$1" "$2" "$3"; }

inject_fault() {
	echo "$1" > "$RSWAP_INJECT" || fail "cannot inject a fault into the session to $1"
}

slots_on() { rsysfs chunk_map | awk -v p="$1" '$2 == p { print $1 }'; }

# Slots are chunk_size bytes; read in 1 MiB direct reads.
slot_mib() { echo $(($(rsysfs chunk_size) / 1048576)); }

slot_read() {
	_m=$(slot_mib)
	dd if=/dev/rswap0 of="$2" bs=1M skip=$(($1 * _m)) count="$_m" iflag=direct 2> "$2.err"
}

# slot_expect SLOT PATTERN: the slot reads back exactly as in PATTERN.
slot_expect() {
	_m=$(slot_mib)
	slot_read "$1" /tmp/.slot || fail "reading slot $1 failed: $(cat /tmp/.slot.err)"
	dd if="$2" of=/tmp/.want bs=1M skip=$(($1 * _m)) count="$_m" 2> /dev/null
	cmp -s /tmp/.slot /tmp/.want || fail "slot $1 reads back different data"
}

# slot_expect_error SLOT: reading it fails with an I/O error and yields no data.
slot_expect_error() {
	slot_read "$1" /tmp/.slot && fail "slot $1 read succeeded; expected an I/O error"
	grep -q "I/O error\|Input/output error" /tmp/.slot.err ||
		fail "slot $1: expected an I/O error, got: $(cat /tmp/.slot.err)"
	[ ! -s /tmp/.slot ] || fail "slot $1: a failed read still returned $(wc -c < /tmp/.slot) bytes"
}

err_count() { rsysfs errors | awk -v k="$1" '$1 == k { print $2 }'; }

no_io_errors() {
	for _k in io lost down post; do
		[ "$(err_count $_k)" = 0 ] ||
			fail "$1: $(err_count $_k) '$_k' errors counted: $(rsysfs errors | tr '\n' ' ')"
	done
}
