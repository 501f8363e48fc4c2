#!/usr/bin/env bash
# Installs the Debian 12 packages this project needs, skipping those already
# present. Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libabsl-dev libspdlog-dev libcli11-dev libmnl-dev
  libgtest-dev libgmock-dev
  iproute2  # router-sync netns tests drive `ip`
  qemu-system-x86 busybox-static  # the kernel-ILA test VM (tests/kernel/)
  traceroute  # the trace acceptance compares with Debian's traceroute (in the VM)
  openssl  # deploy/make-test-certs.sh (the mTLS tests)
  clang libclang-rt-14-dev  # make test-asan (ASan + UBSan) and the libFuzzer targets
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

if ((${#missing[@]} > 0)); then
  echo "install-deps: installing missing packages: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's kernel (it has ILA as a module; the build machines' kernel has
# none), unpacked, not installed: the kernel-ILA tests boot it under qemu.
KERNEL_DIR=${ILA_KERNEL_DIR:-/var/cache/ila-kernel}
if ! ls "$KERNEL_DIR"/boot/vmlinuz-* >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [[ -z $pkg ]]; then
    $SUDO apt-get update -qq
    pkg=$(apt-cache depends linux-image-amd64 |
      awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  fi
  echo "install-deps: unpacking $pkg into $KERNEL_DIR for the kernel tests"
  tmp=$(mktemp -d)
  # apt downloads as its own user when it can write there.
  if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  (cd "$tmp" && apt-get download -qq "$pkg")
  $SUDO mkdir -p "$KERNEL_DIR"
  $SUDO dpkg -x "$tmp"/*.deb "$KERNEL_DIR"
  rm -rf "$tmp"
fi

# etcd for bench/etcd_bench (side by side with ila-server): Debian's
# etcd-server unpacked, not installed, so that no etcd service is started
# on this machine; the benchmark starts its own on loopback.
ETCD_DIR=${ILA_ETCD_DIR:-/var/cache/ila-etcd}
if [[ ! -x $ETCD_DIR/usr/bin/etcd ]]; then
  echo "install-deps: unpacking etcd-server into $ETCD_DIR for bench/etcd_bench"
  tmp=$(mktemp -d)
  if [[ $(id -u) -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  (cd "$tmp" && apt-get download -qq etcd-server) ||
    { $SUDO apt-get update -qq && (cd "$tmp" && apt-get download -qq etcd-server); }
  $SUDO mkdir -p "$ETCD_DIR"
  $SUDO dpkg -x "$tmp"/etcd-server_*.deb "$ETCD_DIR"
  rm -rf "$tmp"
fi
