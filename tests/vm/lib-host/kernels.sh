# shellcheck shell=bash
# Map a --kernel argument to a bootable image, its modules and headers.
#
# "default", "6.1" and "bookworm" mean the Debian 12 kernel the
# linux-image-amd64 metapackage names (installed on the host by
# scripts/install-deps).  "5.10"/"bullseye", "6.12"/"trixie" and
# "unstable"/"sid" mean the kernel of that Debian release, which
# tests/vm/kernels unpacks into a debootstrap root of the release under
# $CACHE/roots/CODENAME and exposes as $CACHE/kernels/RELEASE/ (never
# installed on the host).  A full release ("6.1.0-56-amd64") is looked up
# on the host first, then in $CACHE/kernels.
#
# $CACHE/kernels/RELEASE/ holds:
#   vmlinuz   the image
#   modules   a root for `modprobe -d`: modules/lib/modules/RELEASE/
#   build     the kernel headers (Kbuild tree)
#   codename  the Debian release it came from
# (all but codename are symlinks into the root).

# kernel_codename NAME: the Debian codename a --kernel name stands for,
# "host" for the host's own kernel, or nothing when NAME is a release.
kernel_codename() {
	case "$1" in
	default|6.1|bookworm|12) echo host ;;
	5.10|bullseye|11) echo bullseye ;;
	6.12|trixie|13) echo trixie ;;
	unstable|sid) echo sid ;;
	esac
}

# kernel_short CODENAME: the name the matrix uses for a codename.
kernel_short() {
	case "$1" in
	host|bookworm) echo 6.1 ;;
	bullseye) echo 5.10 ;;
	trixie) echo 6.12 ;;
	sid) echo unstable ;;
	esac
}

# kernel_prepared_release CODENAME: the release prepared for CODENAME in
# $CACHE, or nothing.
kernel_prepared_release() {
	local f
	f="$CACHE/roots/$1/.rswap-release"
	[ -s "$f" ] || return 0
	cat "$f"
}

kernel_resolve() {
	local want=$1 cn
	cn=$(kernel_codename "$want")
	case "$cn" in
	host)
		KREL=$("$REPO/scripts/vm-kernel-release") || exit 2 ;;
	"")
		KREL=$want ;;
	*)
		KREL=$(kernel_prepared_release "$cn")
		if [ -z "$KREL" ] || [ ! -e "$CACHE/kernels/$KREL/vmlinuz" ]; then
			echo "vm/run: kernel '$want' (Debian $cn) is not prepared in $CACHE; run: tests/vm/kernels prepare $(kernel_short "$cn")" >&2
			exit 2
		fi ;;
	esac
	if [ -e "/boot/vmlinuz-$KREL" ]; then
		KIMAGE=/boot/vmlinuz-$KREL
		KMODDIR=/lib/modules/$KREL
		KHEADERS=/lib/modules/$KREL/build
	elif [ -e "$CACHE/kernels/$KREL/vmlinuz" ]; then
		KIMAGE=$CACHE/kernels/$KREL/vmlinuz
		KMODDIR=$CACHE/kernels/$KREL/modules/lib/modules/$KREL
		KHEADERS=$CACHE/kernels/$KREL/build
	else
		echo "vm/run: kernel '$want' is neither installed nor unpacked in $CACHE/kernels (tests/vm/kernels list shows what is)" >&2
		exit 2
	fi
	export KREL KIMAGE KMODDIR KHEADERS
}
