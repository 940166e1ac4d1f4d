#!/bin/bash
# Installs, from Debian's packages, what the tests drive for real and the machine lacks.
# Without root (or apt), it says what is missing; the tests that need it skip with that reason.
set -u
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || need+=(nginx-light)
command -v chromium >/dev/null || need+=(chromium)
command -v docker-compose >/dev/null || need+=(docker-compose)
# The compose stack runs on Debian's Docker Engine (tests/dockerd.py starts it); its base image is made
# by mmdebstrap from Debian's mirror, since no image registry is reachable.
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
# Container jobs run against Podman's Docker API service; the test image is a static busybox.
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
ldd "$(command -v busybox || echo /nonexistent)" 2>&1 | grep -q "not a dynamic" || need+=(busybox-static)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
else
  echo "missing ${need[*]}: tests that need them will be skipped (install them as root with apt-get)" >&2
fi
exit 0
