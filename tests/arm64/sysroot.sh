#!/usr/bin/env bash
# Builds an arm64 sysroot for user-mode qemu: Debian's cross glibc/libstdc++/libgcc, arm64 libssl3 (the
# .NET runtime loads it at start) and a /proc/cpuinfo that matches the emulated CPU, because ONNX
# Runtime picks its kernels by it (an A76 cpuinfo on an emulated A72 dies with an illegal instruction).
# Usage: tests/arm64/sysroot.sh DIR cortex-a72|cortex-a76   (installs the Debian packages it needs)
set -euo pipefail
root=${1:?usage: sysroot.sh DIR cortex-a72|cortex-a76}
cpu=${2:?usage: sysroot.sh DIR cortex-a72|cortex-a76}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null; }

if ! command -v qemu-aarch64-static >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] \
  || [ ! -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]; then
  as_root apt-get update -qq
  apt_install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross
fi

mkdir -p "$root/usr/lib" "$root/proc"
ln -sfn /usr/aarch64-linux-gnu/lib "$root/lib"
if [ ! -e "$root/usr/lib/libssl.so.3" ]; then
  # arm64 libssl3 comes from Debian's arm64 archive, unpacked, never installed on this amd64 system.
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root dpkg --add-architecture arm64
    as_root apt-get update -qq
  fi
  download=$(mktemp -d)
  (cd "$download" && apt-get download -qq libssl3:arm64 >/dev/null 2>&1) || { as_root apt-get update -qq; (cd "$download" && apt-get download -qq libssl3:arm64 >/dev/null); }
  dpkg-deb -x "$download"/libssl3_*_arm64.deb "$download/x"
  cp -a "$download"/x/usr/lib/aarch64-linux-gnu/libssl.so.3 "$download"/x/usr/lib/aarch64-linux-gnu/libcrypto.so.3 "$root/usr/lib/"
  rm -rf "$download"
fi

case "$cpu" in
  # Raspberry Pi 4 (BCM2711): Cortex-A72, NEON, no dot product.
  cortex-a72) part=0xd08 variant=0x0 revision=3 features="fp asimd evtstrm crc32 cpuid" ;;
  # Raspberry Pi 5 (BCM2712): Cortex-A76, NEON with dot product (asimddp) and fp16.
  cortex-a76) part=0xd0b variant=0x4 revision=1 features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
  *) echo "unknown CPU $cpu (cortex-a72 or cortex-a76)" >&2; exit 64 ;;
esac
: > "$root/proc/cpuinfo"
for n in 0 1 2 3; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
    "$n" "$features" "$variant" "$part" "$revision" >> "$root/proc/cpuinfo"
done
