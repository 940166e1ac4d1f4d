# Sourced on an offline GPU host (root), from the project root: unpacks the engine that
# benchmarks/engine-bundle.sh built, starts Podman's Docker API service and exports DOCKER_HOST.
#   ENGINE_BUNDLE (default .device/engine), ENGINE_PREFIX (default /tmp/engine)
# Podman runs from its own prefix: its libraries stay on its own LD_LIBRARY_PATH (a wrapper), never
# in the environment of the tests, so the host's Python keeps the host's libraries.
_eb="${ENGINE_BUNDLE:-.device/engine}"; _ep="${ENGINE_PREFIX:-/tmp/engine}"
mkdir -p "$_ep/bin" "$_ep/run" && tar -C "$_ep" -xJf "$_eb/podman.tar.xz" || return 1
read -r _esuite _eversion _eruntime < "$_ep/VERSION"
# Podman hands conmon and the runtime an environment of its own (the exploration run saw crun fail on
# a library LD_LIBRARY_PATH named): each helper gets a wrapper that sets the library path itself.
mkdir -p "$_ep/wrap"
for _eh in conmon "$_eruntime"; do
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s" exec "%s" "$@"\n' "$_ep/lib" "$(ls "$_ep"/usr/*bin/"$_eh" | head -1)" > "$_ep/wrap/$_eh"
  chmod +x "$_ep/wrap/$_eh"
done
# Overlay where the kernel has it (it does on 6.x), else vfs (a full copy per container, slow but works).
_edriver=vfs; grep -qw overlay /proc/filesystems 2>/dev/null && _edriver=overlay
[ -n "${ENGINE_STORAGE_DRIVER:-}" ] && _edriver="$ENGINE_STORAGE_DRIVER"
# No systemd in the VM: cgroupfs, and a cgroup2 tree mounted where nothing is mounted at all.
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
cat > "$_ep/containers.conf" <<EOF
[containers]
default_ulimits = []
seccomp_profile = "$_ep/usr/share/containers/seccomp.json"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["$_ep/wrap/conmon"]
helper_binaries_dir = ["$_ep/usr/lib/podman"]
runtime = "$_eruntime"
tmp_dir = "$_ep/run/libpod"
cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
[engine.runtimes]
$_eruntime = ["$_ep/wrap/$_eruntime"]
[network]
network_backend = "netavark"
EOF
cat > "$_ep/storage.conf" <<EOF
[storage]
driver = "$_edriver"
graphroot = "$_ep/storage"
runroot = "$_ep/run/storage"
EOF
mkdir -p /etc/containers && { [ -e /etc/containers/policy.json ] || cp "$_ep/etc/containers/policy.json" /etc/containers/; }
printf '#!/bin/sh\nexport LD_LIBRARY_PATH="%s" CONTAINERS_CONF="%s" CONTAINERS_STORAGE_CONF="%s"\nexec "%s" "$@"\n' \
  "$_ep/lib" "$_ep/containers.conf" "$_ep/storage.conf" "$_ep/usr/bin/podman" > "$_ep/bin/podman"
chmod +x "$_ep/bin/podman"
ln -sf "$(ls "$_ep"/usr/bin/busybox "$_ep"/bin/busybox 2>/dev/null | grep -v "^$_ep/bin/busybox$" | head -1)" "$_ep/bin/busybox" 2>/dev/null
export PATH="$_ep/bin:$PATH" DOCKER_HOST="unix://$_ep/podman.sock"
if ! [ -S "$_ep/podman.sock" ]; then
  setsid "$_ep/bin/podman" system service --time=0 "$DOCKER_HOST" > "$_ep/service.log" 2>&1 < /dev/null &
  echo $! > "$_ep/service.pid"
  for _i in $(seq 1 50); do [ -S "$_ep/podman.sock" ] && break; sleep 0.2; done
fi
_eping="import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b'GET /_ping HTTP/1.0\r\n\r\n'); print(s.recv(4096).split(b'\r\n')[0].decode())"
echo "engine: Podman $_eversion ($_esuite, $_eruntime, storage $_edriver) at $DOCKER_HOST: $(python3 -c "$_eping" "$_ep/podman.sock" 2>&1 | tail -1)"
