#!/bin/bash
# The whole check on a GPU host from the offline bundle (`make bundle bundle-engine`), in one device call:
# bootstrap, the container engine (Podman's Docker API) and the GPUs' CDI spec, `pytest -m gpu` (the GPU
# container tests included), then the benchmark suite on a private PostgreSQL and the cost of saving
# result arrays. Usage, from the project root:
#   bash benchmarks/gpu-host-check.sh OUTDIR
# OUTDIR gets at most 7 files (the device tool brings back 8): summary.txt, gpu-tests.txt, bench.md,
# bench.json, result-save.md, stages.md and logs.tar.gz (bootstrap, nvidia-smi, engine, CDI spec,
# benchmark log, the stage trace's raw marks, test artifacts). CHECK_SECONDS (default 540) bounds the whole; the benchmarks get what the tests leave.
# GPU_TESTS=0 skips the tests, BENCH_ARGS adds arguments to benchmarks/run.py (e.g. --quick).
set -u
out=${1:?usage: bash benchmarks/gpu-host-check.sh OUTDIR}
started=$(date +%s); budget=${CHECK_SECONDS:-540}
logs="$out/logs"; mkdir -p "$logs"
left() { echo $((started + budget - $(date +%s))); }
source .device/bootstrap.sh > "$logs/bootstrap.txt" 2>&1 || { cat "$logs/bootstrap.txt"; exit 1; }
nvidia-smi > "$logs/nvidia-smi.txt" 2>&1
# The engine and the spec; without them the GPU container tests skip, saying why.
if [ -f .device/engine/podman.tar.xz ]; then
  {
    # The spec first: the exploration run saw Podman 5.4 resolve a spec that was there when it started.
    python3 -m workers.cdi --output /etc/cdi/nvidia.json && cp /etc/cdi/nvidia.json "$logs/cdi-nvidia.json"
    source benchmarks/engine-start.sh
    podman info --format '{{.Host.CgroupsVersion}} cgroups, {{.Store.GraphDriverName}} storage, {{.Host.OCIRuntime.Name}}'
    # One GPU container by Podman's own CLI, outside the tests: a plain answer even if the tests cannot start.
    image=$(python3 -c "from tests import engine; print(engine.gpu_image(engine.start()))" | tail -1)
    uuid=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -1)
    timeout 60 podman run --rm --network none --user 65534:65534 --device "nvidia.com/gpu=$uuid" "$image" nvidia-smi -L
  } > "$logs/engine.txt" 2>&1
else
  echo "no .device/engine (make bundle-engine): GPU container tests will skip" > "$logs/engine.txt"
fi
if [ "${GPU_TESTS:-1}" = 1 ]; then
  timeout "${GPU_TESTS_TIMEOUT:-300}" python3 -m pytest -m gpu -q -rs -p no:cacheprovider > "$out/gpu-tests.txt" 2>&1
  echo "exit $?" >> "$out/gpu-tests.txt"
else  # GPU_TESTS=0: a benchmarks-only run, where device time is short
  echo "GPU tests skipped (GPU_TESTS=0)" > "$out/gpu-tests.txt"
fi
# The result-save cost and the stage trace after the suite get about 100 s of what is left.
bench_timeout=$(( $(left) - 130 )); [ "$bench_timeout" -gt "${BENCH_TIMEOUT:-360}" ] && bench_timeout=${BENCH_TIMEOUT:-360}
if [ "$bench_timeout" -gt 30 ]; then
  timeout "$bench_timeout" python3 -m benchmarks.run ${BENCH_ARGS:-} --database pgserver --json "$out/bench.json" \
    --out "$out/bench.md" > "$logs/bench.log" 2>&1
  echo "exit $? (limit ${bench_timeout} s)" >> "$logs/bench.log"
  timeout 45 python3 -m benchmarks.result_save > "$out/result-save.md" 2>&1
  # Where a lone job's dispatch spends its time, process by process (scheduler/stages.py), and py-spy's
  # view of each process meanwhile (16 cores: the samplers do not crowd the processes they sample).
  trace_timeout=$(( $(left) - 10 )); [ "$trace_timeout" -gt 120 ] && trace_timeout=120
  timeout "$trace_timeout" python3 -m benchmarks.stage_trace --database pgserver --out "$out/stages.md" \
    --trace "$logs/stages-trace.log" --profile "$logs/profile" > "$logs/stages.log" 2>&1
else
  echo "no time left for the benchmarks (${bench_timeout} s)" > "$logs/bench.log"
fi
[ -f "${ENGINE_PREFIX:-/tmp/engine}/service.log" ] && tail -200 "${ENGINE_PREFIX:-/tmp/engine}/service.log" > "$logs/engine-service.log"
cp -r test-artifacts "$logs/" 2>/dev/null
{
  echo "host: $(hostname), $(nvidia-smi -L | wc -l) GPU(s), took $(( $(date +%s) - started )) s"
  cat "$logs/bootstrap.txt" "$logs/engine.txt"; tail -3 "$logs/bench.log"; tail -15 "$out/gpu-tests.txt"
} > "$out/summary.txt"
tar -C "$out" -czf "$out/logs.tar.gz" logs && rm -rf "$logs"
cat "$out/summary.txt"
