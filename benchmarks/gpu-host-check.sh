#!/bin/bash
# The whole check on a GPU host from the offline bundle (`make bundle`): the benchmark suite on a private
# PostgreSQL, the cost of saving result arrays, and `pytest -m gpu`. Usage, from the project root:
#   bash benchmarks/gpu-host-check.sh OUTDIR        (figures and logs land in OUTDIR)
set -u
out=${1:?usage: bash benchmarks/gpu-host-check.sh OUTDIR}
mkdir -p "$out"
source .device/bootstrap.sh > "$out/bootstrap.txt" 2>&1 || { cat "$out/bootstrap.txt"; exit 1; }
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
timeout "${BENCH_TIMEOUT:-270}" python3 -m benchmarks.run --database pgserver --json "$out/bench.json" \
  --out "$out/bench.md" > "$out/bench.log" 2>&1
echo "exit $?" >> "$out/bench.log"
python3 -m benchmarks.result_save > "$out/result-save.md" 2>&1
timeout "${GPU_TESTS_TIMEOUT:-230}" python3 -m pytest -m gpu -q -p no:cacheprovider > "$out/gpu-tests.txt" 2>&1
echo "exit $?" >> "$out/gpu-tests.txt"
cp -r test-artifacts "$out/" 2>/dev/null
cat "$out/bench.md" "$out/result-save.md" 2>/dev/null; tail -5 "$out/gpu-tests.txt"
