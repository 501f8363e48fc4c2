#!/usr/bin/env bash
# Runs test programs inside a VM booted from Debian's kernel (which has ILA
# as a module) under qemu, without KVM (../shared/kernel-lab.md):
#   vm_run.sh KERNEL_DIR [--with FILE]... PROGRAM [PROGRAM...]
# Builds an initramfs with busybox, iproute2's `ip`, veth.ko and ila.ko,
# the programs (and each --with FILE: helpers the programs call, in /t on
# PATH) and their shared libraries; /init loads the modules, runs each
# program (as root, PATH with ip) and powers off. Each program's output
# comes back on the serial console with a "VM-RESULT <name> rc=<n>" line;
# the exit status is 0 only when every program exited 0.
# Exit 77 (skipped) with the reason when qemu, busybox or the kernel is
# missing. Bounded: the VM is killed after ILA_VM_TIMEOUT seconds (240).
set -euo pipefail
kernel_dir=$1
shift
helpers=()
while [[ ${1:-} == --with ]]; do
  helpers+=("$2")
  shift 2
done
timeout_s=${ILA_VM_TIMEOUT:-240}

skip() {
  echo "SKIP: $*"
  exit 77
}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (make test installs qemu-system-x86)"
[[ -x /bin/busybox ]] || skip "/bin/busybox not installed (busybox-static)"
vmlinuz=$(ls "$kernel_dir"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
[[ -n $vmlinuz ]] || skip "no Debian kernel unpacked in $kernel_dir (cmake/install-deps.sh does it)"
release=${vmlinuz##*/vmlinuz-}
modules=$kernel_dir/lib/modules/$release/kernel
for m in net/ipv6/ila/ila.ko drivers/net/veth.ko; do
  [[ -f $modules/$m ]] || skip "$modules/$m missing"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,run,tmp,modules,t}
cp /bin/busybox "$root/bin/"
cp "$modules/net/ipv6/ila/ila.ko" "$modules/drivers/net/veth.ko" "$root/modules/"
copy_with_libs() { # FILE DESTDIR
  cp "$1" "$root/$2/"
  # Scripts have no libraries (ldd fails on them).
  for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$root$(dirname "$lib")"
    cp -n "$lib" "$root$lib"
  done
}
copy_with_libs "$(command -v ip)" sbin
for h in "${helpers[@]}"; do
  [[ -e $h ]] || skip "$h missing (cmake/install-deps.sh installs it)"
  copy_with_libs "$h" t
done
names=()
for p in "$@"; do
  copy_with_libs "$p" t
  names+=("$(basename "$p")")
done
{
  echo '#!/bin/busybox sh'
  echo '/bin/busybox --install -s /bin'
  echo 'mount -t proc proc /proc; mount -t sysfs sys /sys'
  echo 'mount -t devtmpfs dev /dev; mount -t tmpfs run /run; mount -t tmpfs tmp /tmp'
  echo 'insmod /modules/veth.ko && insmod /modules/ila.ko || echo "VM-RESULT modules rc=1"'
  echo 'export PATH=/sbin:/bin:/t TMPDIR=/tmp ILA_EXPECT_KERNEL_ILA=1'
  for n in "${names[@]}"; do
    echo "/t/$n --gtest_color=no 2>&1; echo \"VM-RESULT $n rc=\$?\""
  done
  echo 'poweroff -f'
} >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initrd.gz")

log=$work/console.log
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -m 1024 -smp 1 -cpu max \
  -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1" -nographic -no-reboot \
  -nic none </dev/null >"$log" 2>&1 || true
# The console, without the firmware's escape sequences.
sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$log" | grep -v '^\s*$' | sed -n '/Booting from ROM/,$p' | tail -n +2

status=0
for n in "${names[@]}"; do
  line=$(grep -a "VM-RESULT $n rc=" "$log" | tail -1 || true)
  if [[ -z $line ]]; then
    echo "FAIL: $n did not finish in the VM (timeout ${timeout_s}s or crash)"
    status=1
  elif [[ $line != *"rc=0"* ]]; then
    echo "FAIL: $n: ${line#*VM-RESULT }"
    status=1
  fi
done
if grep -aq "VM-RESULT modules rc=1" "$log"; then
  echo "FAIL: could not load veth.ko/ila.ko in the VM"
  status=1
fi
exit $status
