#!/bin/sh
# A rogue RDMA client (issue 12) against a keyed cluster whose victim is
# the kernel client: a forged proof, no proof, an old (version 2) client
# and a wrong key are each refused and get no chunk table; a client with
# the right key but another session (its own id, or even the victim's id)
# cannot READ or WRITE the victim's chunks with the victim's own address
# and rkey (debugfs chunk_keys).  The victim's data is intact afterwards,
# the poold logged every refusal, and the module unloads cleanly.
set -u
. "$RSWAP_TESTLIB/swap.sh"
. "$RSWAP_TESTLIB/cluster.sh"
cluster_init
cleanup() {
	mod_loaded && rmmod rswap_client
	stop_all
}
trap cleanup EXIT
modprobe rdma_cm || fail "modprobe rdma_cm"

# One poold: the victim's 2 chunks and the rogue's 1 share it.
start_coord 9425 16M
start_poold 1 64M
wait_registered 1
P1=$(poold_addr 1)
PLOG=$(poold_log 1)

# The victim: the kernel client, keyed, with a random pattern written.
rswap_insmod coord="$RSWAP_IP:$COORD_PORT" size=32M name=victim ||
	fail "insmod victim: $(cat "$RSWAP_INSMOD_OUT")"
DATA=$CLUSTER_LOG/victim.data
dd if=/dev/urandom of="$DATA" bs=1M count=32 2> /dev/null
dd if="$DATA" of=/dev/rswap0 bs=1M oflag=direct 2> /dev/null || fail "write to /dev/rswap0"
KEYS=/sys/kernel/debug/rswap_client/chunk_keys
[ -r "$KEYS" ] || fail "no $KEYS (debugfs not mounted, or an old module?)"
cat "$KEYS" > "$CLUSTER_LOG/chunk_keys.txt"
cat "$CLUSTER_LOG/chunk_keys.txt"
[ "$(awk -v p="$P1" '$2 == p' "$CLUSTER_LOG/chunk_keys.txt" | wc -l)" -eq 2 ] ||
	fail "chunk_keys does not list the victim's 2 slots on poold $P1"
echo "victim: 32M written, 2 slots on $P1"

# run_tc LOG ARGS...: the testclient (cluster key, coordinator), output in LOG.
run_tc() {
	_log=$CLUSTER_LOG/$1
	shift
	testclient "$@" > "$_log" 2>&1
	_rc=$?
	cat "$_log"
	return $_rc
}

# (a) A forged proof as the victim: the poold disconnects, no table.  A
# few times: the proof can overtake the connection's RTU at the poold.
for i in 1 2 3; do
	run_tc forge$i.log --poold "$P1" --id victim --forge-proof --expect-refusal AUTH connect ||
		fail "(a) forged proof #$i was not refused"
	grep -q "disconnected the session .* after a forged proof, no chunk table" \
		"$CLUSTER_LOG/forge$i.log" || fail "(a) #$i: the testclient did not see the disconnect"
done
wait_log "$PLOG" "client victim .*: authentication failed \(wrong cluster key\?\); disconnecting session" 3 5 ||
	fail "(a) the poold did not log the 3 failed proofs"
echo "(a) forged proof (3 times): disconnected, no table"

# (b) No proof at all: disconnected after RSWAP_AUTH_TIMEOUT_MS (10 s).
run_tc noproof.log --poold "$P1" --id victim --no-proof --expect-refusal AUTH connect ||
	fail "(b) a session without a proof was not dropped"
wait_log "$PLOG" "client victim .*: no authentication within 10000 ms; disconnecting" 1 5 ||
	fail "(b) the poold did not log the missing proof"
echo "(b) no proof: disconnected after the timeout, no table"

# (c) An old client (version 2 cannot authenticate): refused at connect.
run_tc v2.log --poold "$P1" --id victim --version 2 --expect-refusal AUTH connect ||
	fail "(c) a version-2 client was not refused with AUTH"
grep -q "refused: AUTH" "$CLUSTER_LOG/v2.log" || fail "(c) no AUTH reason from the poold"
grep -q "older than version 3" "$PLOG" || fail "(c) the poold did not say why"
echo "(c) version 2: refused (AUTH)"

# (d) Another cluster's key: the poold's proof does not check, so the
# testclient refuses the poold (and sends no proof), one clear line.
rswap-admin keygen > "$CLUSTER_LOG/wrong.key" || fail "rswap-admin keygen"
rswap-testclient --poold "$P1" --id victim --key-file "$CLUSTER_LOG/wrong.key" connect \
	> "$CLUSTER_LOG/wrongkey.log" 2>&1 && {
	cat "$CLUSTER_LOG/wrongkey.log"
	fail "(d) a testclient with a wrong key connected"
}
cat "$CLUSTER_LOG/wrongkey.log"
grep -q "authentication failed: the poold did not prove our cluster key (wrong key?)" \
	"$CLUSTER_LOG/wrongkey.log" || fail "(d) no clear line about the wrong key"
grep -q "chunks in its table" "$CLUSTER_LOG/wrongkey.log" &&
	fail "(d) a table came without authentication"
echo "(d) wrong key: the testclient refuses the poold"

# (e) The right key, a session of its own: the victim's (addr, rkey) of
# every slot must refuse both a READ and a WRITE.  Once as another id
# (rogue, with a chunk of its own on the same poold), once as the victim's
# id in a new session: isolation is per session, not per id.
n=0
while read -r slot poold handle addr rkey; do
	[ "$poold" = "$P1" ] || continue
	run_tc steal$slot.log --id rogue --size 16M --poold "$P1" \
		--steal-addr "$addr" --steal-rkey "$rkey" steal ||
		fail "(e) rogue: slot $slot (chunk $handle) at $addr rkey $rkey not refused"
	grep -q "steal: READ refused (.*), WRITE refused (.*)" "$CLUSTER_LOG/steal$slot.log" ||
		fail "(e) rogue: slot $slot: no refusal line"
	run_tc stealv$slot.log --id victim --poold "$P1" \
		--steal-addr "$addr" --steal-rkey "$rkey" steal ||
		fail "(e) victim's id, new session: slot $slot at $addr rkey $rkey not refused"
	n=$((n + 1))
done < "$CLUSTER_LOG/chunk_keys.txt"
[ $n -eq 2 ] || fail "(e) tried $n slots, want 2"
# The rogue's own session works: the refusals were not a broken session.
run_tc rogue.log --id rogue --size 16M write || fail "(e) the rogue's own chunk does not work"
run_tc rogue-rel.log --id rogue release || fail "(e) release of rogue"
echo "(e) steal with the victim's addr/rkey: READ and WRITE refused on every slot"

# (f) The victim's data is intact, the poold logged the refusals, and the
# module unloads cleanly.
dd if=/dev/rswap0 of="$CLUSTER_LOG/victim.back" bs=1M count=32 iflag=direct 2> /dev/null ||
	fail "(f) read from /dev/rswap0"
cmp -s "$DATA" "$CLUSTER_LOG/victim.back" || fail "(f) the victim's data changed"
nref=$(grep -cE "authentication failed|no authentication within|older than version 3" "$PLOG")
[ "$nref" -ge 5 ] || fail "(f) the poold logged $nref refusals, want at least 5"
grep -E "authentication failed|no authentication within|older than version 3|work request failed" "$PLOG"
[ "$(rsysfs errors | awk '$2 != 0' | wc -l)" -eq 0 ] ||
	{ rsysfs errors; fail "(f) the victim saw errors"; }
out=$(rswap_rmmod) || fail "(f) rmmod: $out"
mod_loaded && fail "(f) the module stayed loaded"
dmesg | grep -E "WARNING:|BUG:|kmemleak" && fail "(f) the kernel complained"
alive "$(poold_pid 1)" || fail "(f) the poold died"
stop_poold 1
assert_clean_logs
echo "25-rogue-rdma: forged proof, no proof, version 2 and a wrong key refused; the victim's rkeys useless to other sessions; data intact"
