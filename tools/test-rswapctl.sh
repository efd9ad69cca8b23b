#!/bin/sh
# ctest "rswapctl_usage": rswapctl's argument and configuration checks,
# under every shell it must run in (dash, bash, busybox ash).  Only cases
# that end before anything on the machine is touched: bad usage (exit 2),
# help (0), status without the module (3).  The VM test 40-rswapctl.sh
# covers everything that loads the module.
#
#   test-rswapctl.sh PATH/TO/rswapctl WORKDIR
CTL=${1:?rswapctl}
WORK=${2:?work dir}
failed=0
mkdir -p "$WORK"

# expect SHELL RC GREP ARGS...: rswapctl ARGS exits RC and says GREP.
expect() {
	_sh=$1 _rc=$2 _want=$3
	shift 3
	_out=$($_sh "$CTL" "$@" 2>&1)
	_got=$?
	if [ "$_got" != "$_rc" ] || ! printf '%s\n' "$_out" | grep -q -e "$_want"; then
		echo "FAIL ($_sh): rswapctl $*: exit $_got (want $_rc), output:"
		printf '%s\n' "$_out" | sed 's/^/    /'
		failed=1
	fi
}

shells=""
for s in dash bash "busybox ash"; do
	# shellcheck disable=SC2086
	if command -v ${s%% *} > /dev/null 2>&1; then shells="$shells|$s"; fi
done

printf 'COORD=10.0.0.1:9400\nSIZE=8G\n# comment\n\n  NAME = a b\n' > "$WORK/spaces.conf"
# The default client id needs a machine id; this host may have none.
printf '0123456789abcdef0123456789abcdef\n' > "$WORK/machine-id"
printf 'localhost\n' > "$WORK/machine-id.bad"
export RSWAP_MACHINE_ID_FILE="$WORK/machine-id"
printf 'COORD=10.0.0.1:9400\nFOO=1\n' > "$WORK/unknown.conf"
printf 'COORD=10.0.0.1:9400\njust words\n' > "$WORK/noequal.conf"
printf 'COORD="10.0.0.1:9400"\nSIZE=12X\n' > "$WORK/badsize.conf"
printf 'COORD=10.0.0.1:9400\nSIZE=8G\nREPLICAS=4\n' > "$WORK/replicas.conf"

IFS='|'
for sh in ${shells#|}; do
	unset IFS
	export RSWAP_CONF="$WORK/none.conf"
	expect "$sh" 2 "RSWAP_CONF=.*no such readable file" status
	unset RSWAP_CONF
	expect "$sh" 0 "usage: rswapctl install" --help
	expect "$sh" 2 "usage: rswapctl install"
	expect "$sh" 2 "unknown command 'frob'" frob
	expect "$sh" 2 "needs --coord" install --size 8G
	expect "$sh" 2 "needs --size" install --coord 10.0.0.1:9400
	expect "$sh" 2 "--size 8Q" install --coord 10.0.0.1 --size 8Q
	expect "$sh" 2 "--size 8k2" install --coord 10.0.0.1 --size 8k2
	expect "$sh" 2 "--size 08G" install --coord 10.0.0.1 --size 08G
	expect "$sh" 2 "multiple of 4K" install --coord 10.0.0.1 --size 4097
	expect "$sh" 2 "multiple of 4K" install --coord 10.0.0.1 --size 0
	expect "$sh" 2 "up to 1P" install --coord 10.0.0.1 --size 2048T
	expect "$sh" 2 "up to 1P" install --coord 10.0.0.1 --size 99999999999999999999
	expect "$sh" 2 "port '0'" install --coord 10.0.0.1:0 --size 8G
	expect "$sh" 2 "port '65536'" install --coord 10.0.0.1:65536 --size 8G
	expect "$sh" 2 "port 'x'" install --coord 10.0.0.1:x --size 8G
	expect "$sh" 2 "neither an address nor a host name" install --coord 'a b:1' --size 8G
	expect "$sh" 2 "expected 0..32767" install --coord 10.0.0.1 --size 8G --priority 32768
	expect "$sh" 2 "expected 0..32767" install --coord 10.0.0.1 --size 8G --priority -1
	expect "$sh" 2 "printable" install --coord 10.0.0.1 --size 8G --name 0123456789abcdef0123456789abcdef
	expect "$sh" 2 "printable" install --coord 10.0.0.1 --size 8G --name 'a b'
	expect "$sh" 2 "expected 16..1024" install --coord 10.0.0.1 --size 8G --queue-depth 8
	expect "$sh" 2 "expected 100..120000" install --coord 10.0.0.1 --size 8G --timeout-ms 99
	expect "$sh" 2 "--replicas 4: expected 1..3" install --coord 10.0.0.1 --size 8G --replicas 4
	expect "$sh" 2 "--replicas 0: expected 1..3" install --coord 10.0.0.1 --size 8G --replicas 0
	expect "$sh" 2 "--replicas x: expected 1..3" install --coord 10.0.0.1 --size 8G --replicas x
	expect "$sh" 2 "needs a value" install --coord 10.0.0.1 --size 8G --replicas
	expect "$sh" 0 "--replicas N" --help
	expect "$sh" 2 "unknown option or argument '--replicas'" status --replicas 2
	expect "$sh" 2 "needs a value" install --coord
	expect "$sh" 2 "needs a value, got option" install --name --size 8G
	expect "$sh" 2 "unknown option or argument '--size'" status --size 8G
	expect "$sh" 2 "unknown option or argument '--force'" install --force
	export RSWAP_CONF="$WORK/unknown.conf"
	expect "$sh" 2 "line 2: unknown key 'FOO'" install
	export RSWAP_CONF="$WORK/noequal.conf"
	expect "$sh" 2 "line 2: expected KEY=value" install
	export RSWAP_CONF="$WORK/replicas.conf"
	expect "$sh" 2 "--replicas 4: expected 1..3" install
	# The option beats the file; a good value passes this check (and
	# fails later, needing root, or reaches insmod as replicas=N).
	expect "$sh" 2 "--replicas 5" install --replicas 5
	export RSWAP_CONF="$WORK/badsize.conf"
	expect "$sh" 2 "--size 12X" install
	# An option beats the file: the size error is about the option's value.
	expect "$sh" 2 "--size 13X" install --size 13X
	export RSWAP_CONF="$WORK/spaces.conf"
	expect "$sh" 2 "--name a b: 1..31 printable" install
	unset RSWAP_CONF
	# No usable machine id and no --name: refused before anything is touched.
	RSWAP_MACHINE_ID_FILE="$WORK/machine-id.bad"
	expect "$sh" 2 "machine-id.bad is missing or not 32 hex digits" install --coord 10.0.0.1 --size 8G
	RSWAP_MACHINE_ID_FILE="$WORK/no-such-machine-id"
	expect "$sh" 2 "give --name ID" install --coord 10.0.0.1 --size 8G
	RSWAP_MACHINE_ID_FILE="$WORK/machine-id"
	if [ ! -d /sys/module/rswap_client ]; then
		expect "$sh" 3 "not loaded" status
	fi
	IFS='|'
done
unset IFS
[ $failed = 0 ] || exit 1
echo "rswapctl_usage: passed under: ${shells#|}" | tr '|' ','
