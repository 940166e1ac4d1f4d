"""`python -m workers.gang_child`: run one multi-GPU job's kind on the devices this process was given.

Reads {"kind", "params", "devices", "gpu"} on stdin; prints one JSON line, {"summary"} or {"error", "kind"}.
No Django here: the leader records the outcome.
"""

from __future__ import annotations

import json
import os
import sys

from gpu_tasks import runtime


def main() -> int:
    spec = json.load(sys.stdin)
    try:
        xp = runtime.array_module(prefer_gpu=spec["gpu"])
        output = runtime.produce(spec["kind"], spec["params"], xp, devices=spec["devices"])
        seen = {
            "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "nccl_nvls_enable": os.environ.get("NCCL_NVLS_ENABLE"),
        }
        print(json.dumps({"summary": {**output.summary, **seen}}))
    except Exception as exc:  # the job's failure, reported to the leader
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "kind": runtime.classify_error(exc)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
