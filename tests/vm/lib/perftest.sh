# perftest between two processes on the VM's Soft-RoCE device (busybox ash).
#
#   . "$RSWAP_TESTLIB/perftest.sh"
#   perftest_pair ib_write_bw OUT [ARGS...]   # client's output in OUT
#
# The client starts only once the server's rdma_cm id listens (rdma
# resource show cm_id): a client that comes too early is rejected.

perftest_pair() {
	_try=1
	while ! perftest_pair_once "$@"; do
		[ $_try -ge 3 ] && return 1
		echo "perftest: $1 attempt $_try failed, retrying: $(tail -n 3 "$2" | tr '\n' ' ')"
		_try=$((_try + 1))
		sleep 1
	done
}

# perftest -R sets up more than one rdma_cm connection; under emulation a
# client can still be rejected ("no listener") between them, and perftest
# then crashes.  Hence the retries above.
perftest_pair_once() {
	_tool=$1 _out=$2
	shift 2
	"$_tool" -d "$RSWAP_RDMADEV" -R -F "$@" > "$_out.server" 2>&1 &
	_srv=$!
	_i=0
	until rdma resource show cm_id 2> /dev/null | grep -q "state LISTEN .*comm $_tool "; do
		_i=$((_i + 1))
		if [ $_i -gt 100 ] || ! kill -0 "$_srv" 2> /dev/null; then
			kill "$_srv" 2> /dev/null
			echo "perftest: $_tool server did not listen within 10 s" > "$_out"
			return 1
		fi
		sleep 0.1
	done
	if ! timeout 120 "$_tool" -d "$RSWAP_RDMADEV" -R -F "$@" "$RSWAP_IP" > "$_out" 2>&1; then
		kill "$_srv" 2> /dev/null
		wait "$_srv" 2> /dev/null
		return 1
	fi
	wait "$_srv"
}

# perftest_4k_line OUT: the client's result line for 4096-byte messages.
perftest_4k_line() { awk '$1 == 4096' "$1" | head -n 1; }
