# shellcheck shell=bash
# Build the VM's initramfs in two layers that the kernel unpacks in turn:
#   base    - busybox, kmod, iproute2/rdma, rdma-core with the rxe provider,
#             perftest, the kernel modules the tests load, /init.  Cached per
#             kernel release and invalidated when its inputs change.
#   project - the project's programs (cmake --install of the build tree),
#             kernel modules, test library and scripts.  Built on every run.
# Both are uncompressed cpio: unpacking gzip under TCG costs more than the
# copy it saves.  The root follows Debian's merged-/usr layout (/bin, /sbin,
# /lib, /lib64 are symlinks into /usr), and files are always copied to their
# canonical /usr path so that a later layer never replaces those symlinks.

GUEST_MODULES=(crc32_generic rdma_rxe rdma_ucm ib_uverbs ib_umad dummy veth
	brd zram nvme_rdma nvmet_rdma nvme_fabrics nvmet configfs loop)

# put_file SRC ROOT: copy SRC into ROOT at its canonical path, recreating
# any symlink chain on the way.
put_file() {
	local src=$1 root=$2 dir name target
	dir=$(cd "$(dirname "$src")" && pwd -P)
	name=$(basename "$src")
	mkdir -p "$root$dir"
	if [ -L "$dir/$name" ]; then
		target=$(readlink "$dir/$name")
		[ -e "$root$dir/$name" ] || [ -L "$root$dir/$name" ] || ln -s "$target" "$root$dir/$name"
		case "$target" in
		/*) put_file "$target" "$root" ;;
		*) put_file "$dir/$target" "$root" ;;
		esac
	elif [ ! -e "$root$dir/$name" ]; then
		cp -p "$dir/$name" "$root$dir/$name"
	fi
}

# copy_libs BIN ROOT: every library ldd names for BIN, unless the base
# layer (listed in $BASE_LIST, when set) has it already.
copy_libs() {
	local bin=$1 root=$2 lib
	while read -r lib; do
		[ -n "$lib" ] || continue
		if [ -n "${BASE_LIST:-}" ] && grep -qxF ".$(cd "$(dirname "$lib")" && pwd -P)/$(basename "$lib")" "$BASE_LIST"; then
			continue
		fi
		put_file "$lib" "$root"
	done < <(ldd "$bin" 2>/dev/null | grep -o '/[^ )]*' || true)
}

# copy_with_libs BIN ROOT: BIN at its own path plus its libraries.
copy_with_libs() {
	put_file "$1" "$2"
	copy_libs "$1" "$2"
}

base_inputs_key() {
	local krel=$1
	{
		echo "$krel"
		cat "$HERE/lib-host/initramfs.sh" "$HERE/guest/"*
		dpkg-query -W busybox-static kmod iproute2 rdma-core ibverbs-providers \
			ibverbs-utils perftest keyutils libc6 2>/dev/null
		printf '%s\n' "${GUEST_MODULES[@]}"
	} | sha256sum | cut -c1-16
}

# initramfs_base CACHE KREL KMODDIR: print the cached base layer's path,
# building it first when missing or stale.
initramfs_base() {
	local cache=$1 krel=$2 kmoddir=$3 key out root m line ko dst app deps
	key=$(base_inputs_key "$krel")
	out="$cache/base-$krel-$key.cpio"
	if [ -s "$out" ]; then
		echo "$out"
		return
	fi
	mkdir -p "$cache"
	root=$(mktemp -d "$cache/base-root.XXXXXX")
	# A plain statement, not the left side of || or an if: bash ignores
	# set -e inside a subshell run in such a context, so a failed copy
	# would go unnoticed and leave a broken layer.
	local rc
	set +e
	(
		set -e
		cd "$root"
		mkdir -p usr/bin usr/sbin usr/lib usr/lib64 etc proc sys dev tmp run \
			root var/tmp mnt rswap
		ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
		install -m 0755 /bin/busybox usr/bin/busybox
		for app in $(/bin/busybox --list); do
			[ "$app" = busybox ] || ln -sf busybox "usr/bin/$app"
		done
		# Real tools where busybox's applets fall short (module errors,
		# dummy links, rdma links).
		for bin in /usr/bin/kmod /usr/bin/ip /usr/bin/rdma /usr/bin/ibv_devices \
			/usr/bin/ibv_devinfo /usr/bin/rping /usr/bin/ib_read_lat \
			/usr/bin/ib_write_lat /usr/bin/ib_read_bw /usr/bin/ib_write_bw \
			/usr/bin/ib_send_lat /usr/bin/keyctl; do
			rm -f "usr/bin/$(basename "$bin")"
			copy_with_libs "$bin" "$root"
		done
		for app in insmod rmmod modprobe lsmod modinfo depmod; do
			rm -f "usr/bin/$app" "usr/sbin/$app"
			ln -s ../bin/kmod "usr/sbin/$app"
		done
		# rdma-core loads its providers with dlopen: ldd cannot see them.
		mkdir -p etc/libibverbs.d
		cp /etc/libibverbs.d/rxe.driver etc/libibverbs.d/
		for lib in /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so; do
			copy_with_libs "$lib" "$root"
		done
		# Kernel modules with their dependencies, then a fresh depmod.
		mkdir -p "lib/modules/$krel"
		for m in "${GUEST_MODULES[@]}"; do
			# Not every kernel has every module (crc32_generic is built in
			# or gone on newer ones): say which, and go on.
			if ! deps=$(modprobe -d "${kmoddir%/lib/modules/*}" -S "$krel" --show-depends "$m" 2>/dev/null); then
				echo "vm/run: note: kernel $krel has no module $m; the base layer goes without it"
				continue
			fi
			while read -r line; do
				ko=$(echo "$line" | awk '$1 == "insmod" { print $2 }')
				[ -n "$ko" ] || continue
				dst="$root/lib/modules/$krel/${ko#*/lib/modules/$krel/}"
				mkdir -p "$(dirname "$dst")"
				# Newer kernels ship modules compressed; kmod 30 in the
				# VM would first hand the kernel the compressed file
				# ("Invalid ELF header magic") and then inflate it
				# under emulation.  Inflate them once, here.
				case "$ko" in
				*.ko.xz) xz -dc "$ko" > "${dst%.xz}" ;;
				*.ko.zst) zstd -qdc "$ko" > "${dst%.zst}" ;;
				*.ko.gz) gzip -dc "$ko" > "${dst%.gz}" ;;
				*) cp "$ko" "$dst" ;;
				esac
			done <<< "$deps"
		done
		cp "$kmoddir"/modules.builtin* "$kmoddir"/modules.order "lib/modules/$krel/" 2>/dev/null || true
		depmod -b "$root" "$krel"
		printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > etc/passwd
		printf 'root:x:0:\nnogroup:x:65534:\n' > etc/group
		printf '127.0.0.1 localhost\n::1 localhost\n' > etc/hosts
		install -m 0755 "$HERE/guest/init" init
		install -m 0755 "$HERE/guest/runner" usr/sbin/rswap-runner
		find . -mindepth 1 > "$out.list.tmp"
		cpio -o -H newc --quiet < "$out.list.tmp" > "$out.tmp"
	) >&2
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		rm -rf "$root" "$out.tmp"
		echo "vm/run: building the base initramfs failed (the line above names the step)" >&2
		exit 1
	fi
	rm -rf "$root"
	mv "$out.list.tmp" "$out.list"
	mv "$out.tmp" "$out"
	# Older layers of the same kernel are dead weight.
	find "$cache" -maxdepth 1 -name "base-$krel-*.cpio*" ! -name "$(basename "$out")*" -delete
	echo "$out"
}

# initramfs_project ROOT BUILD KREL: the project layer.
initramfs_project() {
	local root=$1 build=$2 krel=$3 stage f
	[ -f "$build/CMakeCache.txt" ] || die "no CMake build tree at $build (cmake -S . -B build && make -C build)"
	stage="$work/stage"
	cmake --install "$build" --prefix "$stage" >/dev/null ||
		die "cmake --install $build failed: build it first (make -C $build)"
	mkdir -p "$root/usr/bin"
	for f in "$stage"/bin/* "$stage"/libexec/rswap-test/*; do
		[ -f "$f" ] || continue
		install -m 0755 "$f" "$root/usr/bin/"
		copy_libs "$f" "$root"
	done
	mkdir -p "$root/rswap/ko" "$root/rswap/lib"
	# Only the project's own modules: the kernel matrix keeps whole module
	# trees of other releases under build/vm-cache, and every module
	# copied here is one the runner unloads between scripts.
	for f in "$build/client-kmod/$krel"/*.ko "$build/tests/vm/selftest/$krel"/*.ko; do
		[ ! -e "$f" ] || cp "$f" "$root/rswap/ko/"
	done
	[ -e "$root/rswap/ko/rswap-client.ko" ] ||
		echo "vm/run: warning: no rswap-client.ko for $krel in $build; module tests will fail (other kernels than the host's: tests/vm/kernels build K $build)" >&2
	[ -d "$REPO/tests/vm/lib" ] && cp -r "$REPO/tests/vm/lib/." "$root/rswap/lib/"
	return 0
}
