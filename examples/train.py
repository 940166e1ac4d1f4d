"""A tiny training loop for `submit-job run`: fits a linear model by gradient descent on CuPy when the job
was given a GPU, on NumPy otherwise, and saves its checkpoint where the queue keeps it ($GPUQ_OUTPUTS).

    submit-job run --working-dir . --wait -- python examples/train.py --steps 200
    submit-job outputs <id>            # job-<id>-outputs/checkpoint.npz
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def array_module():
    """CuPy when a GPU is visible (the queue sets CUDA_VISIBLE_DEVICES to the routed GPU's UUID), else NumPy."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy, cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:  # no CuPy, no driver, or no device visible
        pass
    import numpy

    return numpy, "CPU (NumPy)"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--features", type=int, default=256)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--lr", type=float, default=0.1)
    args = p.parse_args()
    xp, device = array_module()
    print(f"training on {device}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')!r}")
    rng = xp.random.default_rng(0)
    x = rng.standard_normal((args.samples, args.features), dtype=xp.float32)
    true_w = rng.standard_normal(args.features, dtype=xp.float32)
    y = x @ true_w + 0.01 * rng.standard_normal(args.samples, dtype=xp.float32)
    w = xp.zeros(args.features, dtype=xp.float32)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        error = x @ w - y
        w -= args.lr * (x.T @ error) / args.samples
        if step % max(args.steps // 10, 1) == 0 or step == 1:
            print(f"step {step:5d}  loss {float((error**2).mean()):.6f}")
    seconds = time.perf_counter() - started
    out = Path(os.environ.get("GPUQ_OUTPUTS", "outputs"))
    out.mkdir(parents=True, exist_ok=True)
    to_host = getattr(xp, "asnumpy", lambda a: a)
    import numpy

    numpy.savez(out / "checkpoint.npz", w=to_host(w), steps=args.steps)
    loss = float(((x @ w - y) ** 2).mean())
    (out / "metrics.json").write_text(json.dumps({"loss": loss, "steps": args.steps, "seconds": seconds}))
    print(f"saved {out / 'checkpoint.npz'} (final loss {loss:.6f}, {seconds:.2f} s)")


if __name__ == "__main__":
    main()
