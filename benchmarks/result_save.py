"""What saving a result array costs the GPU: the seconds `workers.results.save` takes per size.

The worker saves between jobs, so this is time its GPU waits. `python -m benchmarks.result_save`.
"""

from __future__ import annotations

import os
import tempfile
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")
    os.environ.setdefault("RESULTS_DIR", tempfile.mkdtemp(prefix="gpuq-results-"))
    os.environ["RESULT_MAX_BYTES"] = str(1 << 40)
    django.setup()
    from gpu_tasks.runtime import array_module
    from workers import results

    xp = array_module()
    print(f"| array | bytes | save (copy off the device and write .npy) | on {xp.__name__} |")
    print("| --- | --- | --- | --- |")
    for n in (1024, 4096, 8192):
        array = xp.ones((n, n), dtype="float32")
        times = []
        for job_id in range(3):
            started = time.perf_counter()
            results.save(job_id, array, xp)
            times.append(time.perf_counter() - started)
        print(f"| {n} x {n} float32 | {array.nbytes:,} | {min(times) * 1e3:.1f} ms (best of 3) | |")


if __name__ == "__main__":
    main()
