# shellcheck shell=bash
# Map a --kernel argument to a bootable image, its modules and headers.
#
# "default" and "6.1" mean the Debian 12 kernel the linux-image-amd64
# metapackage names (installed on the host by scripts/install-deps).  A full
# release ("6.1.0-56-amd64") is looked up on the host first, then among the
# kernels unpacked into the VM cache ($CACHE/kernels/RELEASE/), which is
# where kernels of other Debian releases live (never installed on the host).

kernel_resolve() {
	local want=$1
	case "$want" in
	default|6.1|bookworm)
		KREL=$("$REPO/scripts/vm-kernel-release") || exit 2 ;;
	*)
		KREL=$want ;;
	esac
	if [ -e "/boot/vmlinuz-$KREL" ]; then
		KIMAGE=/boot/vmlinuz-$KREL
		KMODDIR=/lib/modules/$KREL
		KHEADERS=/lib/modules/$KREL/build
	elif [ -e "$CACHE/kernels/$KREL/vmlinuz" ]; then
		KIMAGE=$CACHE/kernels/$KREL/vmlinuz
		KMODDIR=$CACHE/kernels/$KREL/modules
		KHEADERS=$CACHE/kernels/$KREL/build
	else
		echo "vm/run: kernel '$want' is neither installed nor unpacked in $CACHE/kernels" >&2
		exit 2
	fi
	export KREL KIMAGE KMODDIR KHEADERS
}
