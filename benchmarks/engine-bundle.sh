#!/bin/bash
# Build the container engine for an offline GPU host: Podman from Debian's packages, unpacked and
# trimmed to what `podman system service` needs, plus a static busybox for the test images.
#   usage: benchmarks/engine-bundle.sh [DEST] [SUITE]     (from the project root)
#   DEST: default .device/engine (git-ignored); SUITE: trixie (Podman 5.4, the default) or bookworm (4.3)
# Why trixie: Podman's Docker-compatible API honours CDI device requests (DeviceRequests with
# Driver "cdi") from 5.4 on; 4.3 ignores DeviceRequests and refuses CDI names in HostConfig.Devices.
# Trixie's binaries need glibc 2.39 at most (checked below), which the hosts' Ubuntu 24.04 has.
# On the host, benchmarks/engine-start.sh unpacks DEST/podman.tar.xz and starts the service.
set -euo pipefail
dest="${1:-.device/engine}"; suite="${2:-trixie}"; glibc_max="${GLIBC_MAX:-2.39}"
case "$suite" in
  trixie) runtime=crun; extra="libsubid5 libsqlite3-0 libgpgme11t64 libassuan9" ;;
  bookworm) runtime=runc; extra="libsubid4 libgpgme11 libassuan0 libdevmapper1.02.1 libudev1" ;;
  *) echo "engine-bundle.sh: unknown suite '$suite' (trixie or bookworm)" >&2; exit 2 ;;
esac
# Libraries the binaries link (found by walking their NEEDED entries below); glibc itself stays the host's.
libs="libseccomp2 libgpg-error0 libyajl2 libcap2 libsystemd0 libglib2.0-0t64 libglib2.0-0 libffi8 libpcre2-8-0
      libmount1 libblkid1 libselinux1 zlib1g libaudit1 libcap-ng0 libbsd0 libmd0 libzstd1 liblz4-1 liblzma5
      libgcrypt20 libcrypt1 libsemanage2 libsepol2 libbz2-1.0 libpam0g libacl1 libattr1 libatomic1 libxxhash0"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/deb" "$work/root" "$dest"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
  > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null
  -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
# A name this suite lacks (libglib2.0-0 vs libglib2.0-0t64) is skipped, not an error.
want=(podman conmon "$runtime" netavark golang-github-containers-common busybox-static $extra)
for p in $libs; do
  case "$(apt-cache "${apt_opts[@]}" policy "$p" 2>/dev/null)" in *"Candidate: "[0-9]*) want+=("$p") ;; esac
done
( cd "$work/deb" && apt-get "${apt_opts[@]}" download -q "${want[@]}" >/dev/null )
for f in "$work"/deb/*.deb; do dpkg -x "$f" "$work/root"; done
r="$work/root"
# Keep the service's parts: the binaries, their libraries, seccomp profile and signature policy.
keep=(usr/bin/podman usr/bin/conmon "usr/*bin/$runtime" usr/lib/podman/netavark usr/share/containers/seccomp.json
  etc/containers/policy.json bin/busybox usr/bin/busybox)
mkdir -p "$work/out/lib"
(cd "$r" && for k in ${keep[@]}; do if [ -e $k ]; then cp -a --parents $k "$work/out/"; fi; done)
# Dereferenced: each soname a file of its own, so unused names can go without breaking links.
cp -L "$r"/usr/lib/x86_64-linux-gnu/*.so* "$r"/lib/x86_64-linux-gnu/*.so* "$work/out/lib/" 2>/dev/null || true
# Drop what the host's glibc provides; check every kept ELF's needs against glibc $glibc_max.
rm -f "$work"/out/lib/{libc,libm,libpthread,libdl,librt,libgcc_s,ld-linux-x86-64}.so*
missing=0
for elf in $(find "$work/out" -type f \( -name '*.so*' -o -perm -u+x \)); do
  objdump -p "$elf" >/dev/null 2>&1 || continue
  need=$(objdump -T "$elf" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1 || true)
  if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$glibc_max" | sort -V | tail -1)" != "$glibc_max" ]; then
    echo "engine-bundle.sh: $elf needs glibc $need > $glibc_max" >&2; missing=1
  fi
  for so in $(objdump -p "$elf" | awk '/NEEDED/{print $2}'); do
    case "$so" in libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|librt.so.1|libgcc_s.so.1|ld-linux-x86-64.so.2) continue ;; esac
    [ -e "$work/out/lib/$so" ] || { echo "engine-bundle.sh: $elf needs $so, not bundled" >&2; missing=1; }
  done
done
[ $missing = 0 ] || exit 1
# Only the libraries something links: the rest of those packages stays behind.
used=$(for elf in $(find "$work/out" -type f); do objdump -p "$elf" 2>/dev/null | awk '/NEEDED/{print $2}'; done | sort -u)
for so in "$work"/out/lib/*; do echo "$used" | grep -qx "$(basename "$so")" || rm -f "$so"; done
echo "$suite $(dpkg-deb -f "$work"/deb/podman_*.deb Version) $runtime" > "$work/out/VERSION"
tar -C "$work/out" -cJf "$dest/podman.tar.xz" .
du -sh "$dest" | awk -v s="$suite" '{print "engine-bundle.sh: " $2 " holds Podman from " s ", " $1}'
