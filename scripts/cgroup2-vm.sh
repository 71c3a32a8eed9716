#!/usr/bin/env bash
# Run a command as root inside a small qemu guest whose /sys/fs/cgroup is a pure cgroup v2
# hierarchy, for testing skiff's cgroup v2 code on a host that has cgroups v1 (or hybrid).
#
#   scripts/cgroup2-vm.sh --setup                   install qemu + a Debian kernel, build the initramfs
#   scripts/cgroup2-vm.sh [OPTIONS] -- COMMAND...   boot, run COMMAND, power off, exit with its status
#
# Options:  --setup          also install/build what is missing first (idempotent, quick when done)
#           --rw DIR         share DIR read-write at the same path (repeatable); all else is a
#                            throw-away copy-on-write view of the host
#           --timeout SECS   kill the guest after SECS seconds (default 1800; exit status 124)
#           --mem MIB        guest memory (default 2048)     --cpus N   vCPUs (default 2)
#           --accel kvm|tcg  default: kvm when /dev/kvm can boot a stock kernel, else tcg
#           --console        stream the guest's kernel console to stderr (for debugging boot)
# Environment: SKIFF_VM_ACCEL (as --accel), SKIFF_VM_CACHE (default /var/cache/skiff-vm: the
# unpacked kernel, the initramfs, the empty disk image), SKIFF_VM_APPEND (more kernel arguments).
#
# The guest (no network device; only lo):
#   /                the host's / (virtio-9p, read-only) under an overlay whose upper dir is on a
#                    scratch disk: everything is visible and writable, nothing written reaches
#                    the host (the disk is an empty ext4 image attached with snapshot=on)
#   /sys/fs/cgroup   cgroup2 only (nsdelegate), with cpu cpuset io memory pids enabled in the
#                    root's cgroup.subtree_control; COMMAND runs in the root cgroup
#   /tmp /var/tmp /var/lib/skiff   empty, on the scratch disk (ext4 as on a host: an overlay
#                    cannot hold the upper dirs of skiff's own overlays, tmpfs on 6.1 has no user
#                    xattrs), except that the test images ($SKIFF_TEST_IMAGES, default
#                    /var/tmp/skiff-test-images) stay visible;  /run  a fresh tmpfs
# COMMAND runs as root, cwd = the caller's cwd, environment = the caller's plus
# SKIFF_IN_CGROUP2_VM=1 and PYTHONUNBUFFERED=1, stdin /dev/null; its stdout and stderr (pipes,
# not a tty) come out on this script's. What it leaves running is killed when it exits.
# Exit status: COMMAND's; 124 on timeout; 125 if the VM itself failed.
set -euo pipefail

cache=${SKIFF_VM_CACHE:-/var/cache/skiff-vm}
debs="qemu-system-x86 linux-image-amd64 busybox-static cpio kmod e2fsprogs"
mods="virtio_pci 9pnet_virtio 9p overlay virtio_blk virtio_console" fsmods="ext4"

die() { echo "cgroup2-vm: $*" >&2; exit 125; }

accel=${SKIFF_VM_ACCEL:-} setup=0 console=0 timeout=1800 mem=2048 cpus=2 rw=()
while [ $# -gt 0 ]; do
  case $1 in
    --setup) setup=1 ;;
    --console) console=1 ;;
    --rw) rw+=("$(realpath -e -- "$2")") || die "--rw: no such directory: $2"; shift ;;
    --timeout) timeout=$2; shift ;;
    --mem) mem=$2; shift ;;
    --accel) accel=$2; shift ;;
    --cpus) cpus=$2; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    *) die "unknown option $1 (the command goes after --)" ;;
  esac
  shift
done
[ $# -gt 0 ] || [ $setup = 1 ] || die "usage: cgroup2-vm.sh [--setup] [OPTIONS] -- COMMAND..."
[ "$(id -u)" = 0 ] || die "run me as root"

# --- set-up: Debian packages, then the initramfs (cached by kernel + this script's content) ---
if [ $setup = 1 ]; then
  missing=""
  for p in $debs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "cgroup2-vm: installing Debian packages:$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

# The newest Debian kernel that has its modules (not the host's own kernel, which may be anything).
kver=""
for k in $(ls /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V); do
  [ -d "/lib/modules/$k/kernel/fs/9p" ] && kver=$k
done
[ -n "$kver" ] || die "no kernel in /boot with 9p modules: run $0 --setup"
kernel=/boot/vmlinuz-$kver
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run $0 --setup"
[ -e /bin/busybox ] || die "/bin/busybox missing: run $0 --setup"

# Stage 1, /init of the initramfs (busybox): load the modules, mount the host's / read-only under
# an overlay, the scratch disk (ext4, like a host's /var: tmpfs on 6.1 has no user xattrs, and an
# overlay cannot hold the upper dirs of skiff's own overlays) on /tmp, /var/tmp and
# /var/lib/skiff, then switch_root to stage 2.
read -r -d '' stage1 <<'EOF' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "cgroup2-vm stage1: $*"; poweroff -f; }
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
load() { while read -r m; do insmod "$m" || echo "cgroup2-vm stage1: insmod $m failed"; done < $1; }
load /modules.fs & load /modules; wait   # two independent chains, one per vCPU
mkdir -p /lower /disk /newroot /keep
mount -t 9p -o ro,trans=virtio,version=9p2000.L,cache=loose,msize=512000 hostroot /lower \
  || fail "mount hostroot"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -e /dev/vda ] && break; sleep 0.2; done
mount -t ext4 -o noatime,noinit_itable /dev/vda /disk || fail "mount the scratch disk"
mkdir -p /disk/upper /disk/work /disk/tmp /disk/var-tmp /disk/var-lib-skiff
chmod 1777 /disk/tmp /disk/var-tmp; chmod 711 /disk/var-lib-skiff
r=/newroot
mount -t overlay -o lowerdir=/lower,upperdir=/disk/upper,workdir=/disk/work,xino=off,redirect_dir=on overlay $r \
  || fail "mount overlay"
for d in proc sys dev; do mount --move /$d $r/$d; done
mount -t cgroup2 -o nsdelegate cgroup2 $r/sys/fs/cgroup || fail "mount cgroup2"
for c in cpu cpuset io memory pids; do
  grep -qw $c $r/sys/fs/cgroup/cgroup.controllers && echo +$c > $r/sys/fs/cgroup/cgroup.subtree_control
done
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
mount -t tmpfs -o mode=755 run $r/run
mkdir -p $r/run/skiff-vm
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 skiffrun $r/run/skiff-vm \
  || fail "mount skiffrun"
# The directories listed in `keep` (the test images) stay visible over the scratch dirs.
n=0
while read -r path; do
  [ -d "$r$path" ] || continue
  mkdir /keep/$n && mount --bind "$r$path" /keep/$n && echo "$path" > /keep/$n.path
  n=$((n + 1))
done < $r/run/skiff-vm/keep
mkdir -p $r/var/lib/skiff
mount --bind /disk/tmp $r/tmp
mount --bind /disk/var-tmp $r/var/tmp
mount --bind /disk/var-lib-skiff $r/var/lib/skiff
for k in /keep/*.path; do
  [ -e "$k" ] || continue
  path=$(cat "$k")
  mkdir -p "$r$path" && mount --move "${k%.path}" "$r$path"
done
n=0
while read -r path; do
  mkdir -p "$r$path"
  mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=512000 rw$n "$r$path" \
    || fail "mount $path"
  n=$((n + 1))
done < $r/run/skiff-vm/rw
mkdir -p $r/run/skiff-vm-bin && cp /bin/busybox /stage2 $r/run/skiff-vm-bin/
exec switch_root $r /run/skiff-vm-bin/busybox sh /run/skiff-vm-bin/stage2
EOF

# Stage 2, PID 1 in the new root: run the job (with the host's own bash) with its stdout and
# stderr on two virtio-serial ports (through pipes: the command sees no tty), record its status,
# end what it left running (which may hold the pipes open), drain the output, power off.
read -r -d '' stage2 <<'EOF' || true
d=/run/skiff-vm-bin
bb=$d/busybox
$bb hostname skiff-vm
$bb ip link set lo up
for p in /sys/class/virtio-ports/*; do $bb ln -s /dev/${p##*/} $d/$($bb cat $p/name); done
$bb mkfifo $d/out $d/err
$bb cat <$d/out >$d/stdout &
c1=$!
$bb cat <$d/err >$d/stderr &
c2=$!
echo "cgroup2-vm: running job"
/bin/bash /run/skiff-vm/job >$d/out 2>$d/err </dev/null
echo $? > /run/skiff-vm/status
for p in /proc/[0-9]*; do
  case " 1 $c1 $c2 " in *" ${p#/proc/} "*) ;; *) kill -9 ${p#/proc/} 2>/dev/null ;; esac
done
wait $c1 $c2
echo "cgroup2-vm: job done"
$bb sync
$bb poweroff -f
EOF

# Build helpers (Python, which skiff needs anyway): unpack the kernel so that qemu boots it
# directly through its PVH entry (skips the firmware's loader and an xz decompression that takes
# seconds under TCG), and strip module signatures (their RSA checks are slow under TCG too).
read -r -d '' helper <<'PY' || true
import gzip, lzma, sys
op, src, dst = sys.argv[1:]
data = open(src, "rb").read()
if op == "vmlinux":
    for magic, dec in ((b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
                       (b"\x1f\x8b\x08\x00", lambda: gzip.zlib.decompressobj(31))):
        at = data.find(magic)
        if at >= 0:
            out = dec().decompress(data[at:])
            if out[:4] == b"\x7fELF":
                break
    else:
        sys.exit("cannot unpack " + src)
elif op == "unsign":
    out, tail = data, b"~Module signature appended~\n"
    if data.endswith(tail):
        siglen = int.from_bytes(data[-len(tail) - 4:-len(tail)], "big")
        out = data[:-len(tail) - 12 - siglen]
open(dst, "wb").write(out)
PY
py=${PYTHON:-python3}

vmlinux=$cache/vmlinux-$kver
if [ ! -e "$vmlinux" ]; then
  mkdir -p "$cache"
  if "$py" -c "$helper" vmlinux "$kernel" "$vmlinux.tmp.$$"; then mv "$vmlinux.tmp.$$" "$vmlinux"
  else rm -f "$vmlinux.tmp.$$"; fi
fi
[ -e "$vmlinux" ] && kernel=$vmlinux

# The scratch disk: an empty, sparse ext4 image that every run attaches with snapshot=on (qemu
# keeps the run's writes in a temporary file and drops them), so each guest starts from empty.
disk=$cache/scratch-ext4.img
if [ ! -e "$disk" ]; then
  mkdir -p "$cache"
  rm -f "$disk.tmp.$$" && truncate -s 16G "$disk.tmp.$$"
  mkfs.ext4 -q -F -O ^has_journal -L skiff-vm "$disk.tmp.$$"
  mv "$disk.tmp.$$" "$disk"
fi

key=$( { echo "$kver"; echo "$mods $fsmods"; echo "$stage1"; echo "$stage2"; echo "$helper";
         sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
initrd=$cache/initramfs-$kver-$key.cpio
if [ ! -e "$initrd" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp"/{bin,proc,sys,dev,lib/modules}
  cp /bin/busybox "$tmp/bin/busybox"
  printf '%s\n' "$stage1" > "$tmp/init" && chmod 755 "$tmp/init"
  printf '%s\n' "$stage2" > "$tmp/stage2"
  for list in modules:"$mods" modules.fs:"$fsmods"; do
    for m in ${list#*:}; do
      modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
    done | awk '!seen[$0]++' | while read -r ko; do
      [ -e "$tmp/lib/modules/$(basename "$ko")" ] && continue
      "$py" -c "$helper" unsign "$ko" "$tmp/lib/modules/$(basename "$ko")"
      echo "/lib/modules/$(basename "$ko")"
    done > "$tmp/${list%%:*}"
  done
  (cd "$tmp" && find . | cpio -o -H newc --quiet) > "$initrd.tmp.$$"
  mv "$initrd.tmp.$$" "$initrd"
  rm -rf "$tmp"; trap - EXIT
  find "$cache" -name 'initramfs-*.cpio' ! -name "$(basename "$initrd")" -delete
  find "$cache" -name 'vmlinux-*' ! -name "vmlinux-$kver" -delete
fi
[ $# -gt 0 ] || exit 0

# --- one run: a private run directory shared with the guest (job in, status out) ---
run=$(mktemp -d /tmp/skiff-vm.XXXXXX)
trap 'rm -rf "$run"' EXIT
{
  export -p
  echo "export SKIFF_IN_CGROUP2_VM=1 PYTHONUNBUFFERED=1"
  # pyenv's shims are scripts that fork a dozen times (seconds under TCG): put the interpreter
  # they resolve to first on the guest's PATH.
  case $(command -v python3 || true) in */shims/*)
    printf 'export PATH=%q:"$PATH"\n' "$(dirname "$(python3 -c 'import sys; print(sys.executable)')")"
  esac
  printf 'cd -- %q || { echo "cgroup2-vm: not in the guest (/tmp, /var/tmp, /run and' "$PWD"
  echo ' /var/lib/skiff are its own; share the directory with --rw)" >&2; exit 125; }'
  printf 'exec'; printf ' %q' "$@"; echo
} > "$run/job"
: > "$run/rw"
printf '%s\n' "${SKIFF_TEST_IMAGES:-/var/tmp/skiff-test-images}" > "$run/keep"
share_rw=()
for i in "${!rw[@]}"; do
  d=${rw[$i]}
  case $d in *$'\n'*|*,*) die "--rw: unsupported path: $d" ;; esac
  echo "$d" >> "$run/rw"
  share_rw+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=passthrough,multidevs=remap")
done

# KVM where it can boot a stock kernel (kvm_intel/kvm_amd); otherwise TCG. Some cloud sandboxes
# offer a /dev/kvm backed by kvm_pvm, which only runs PVM-enabled guest kernels: Debian's hangs.
if [ -z "$accel" ]; then
  accel=tcg
  if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then accel=kvm; fi
fi
case $accel in
  kvm) machine=(-enable-kvm -cpu host); extra="tsc=reliable no_timer_check" ;;
  tcg) machine=(-accel tcg,thread=multi -cpu max); extra="" ;;
  *) die "--accel: kvm or tcg, not $accel" ;;
esac
quiet="quiet loglevel=4"
if [ $console = 1 ]; then quiet=""; con=(-chardev "file,id=con,path=/dev/stderr,append=on"); else
  con=(-chardev "file,id=con,path=$run/console.log"); fi
# The guest's stdout and stderr come through FIFOs (qemu's own stdio would be one stream, and
# its EOF on stdin would leave the guest's port disconnected).
mkfifo "$run/out.in" "$run/out.out" "$run/err.in" "$run/err.out"
cat "$run/out.out" &
cats=$!
cat "$run/err.out" >&2 &
cats="$cats $!"
# In the background so that a signal to this script stops the VM at once (the EXIT trap).
TMPDIR=$run timeout -k 5 "$timeout" qemu-system-x86_64 \
  "${machine[@]}" -smp "$cpus" -m "$mem" -nographic -nodefaults -no-reboot -nic none \
  -monitor none "${con[@]}" -serial chardev:con -device virtio-serial-pci,id=vser \
  -chardev pipe,id=out,path="$run/out" -device virtserialport,bus=vser.0,chardev=out,name=stdout \
  -chardev pipe,id=err,path="$run/err" -device virtserialport,bus=vser.0,chardev=err,name=stderr \
  -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 rdinit=/init panic=-1 $quiet $extra i8042.noaux i8042.nokbd cryptomgr.notests audit=0 nowatchdog ${SKIFF_VM_APPEND:-}" \
  -drive "file=$disk,if=virtio,format=raw,snapshot=on,cache=unsafe" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
  -virtfs "local,path=$run,mount_tag=skiffrun,security_model=passthrough,multidevs=remap" \
  "${share_rw[@]}" </dev/null &
qemu=$!
trap 'kill $qemu $cats 2>/dev/null && wait $qemu 2>/dev/null; rm -rf "$run"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
qrc=0
wait $qemu || qrc=$?
exec 3<>"$run/out.out" 4<>"$run/err.out" 3>&- 4>&-  # the readers finish even if qemu never ran
wait $cats || true
[ $qrc = 124 ] && { echo "cgroup2-vm: timed out after ${timeout}s" >&2; exit 124; }
if [ ! -s "$run/status" ]; then
  echo "cgroup2-vm: the guest did not report a status (qemu exit $qrc); its console:" >&2
  tail -n 40 "$run/console.log" >&2 2>/dev/null || true
  exit 125
fi
exit "$(cat "$run/status")"
