"""`python -m workers`: start the worker of one GPU (from CUDA_VISIBLE_DEVICES), or `--cpu`.

The worker refuses to start, with a plain message, when its GPU is missing, ambiguous or not the
one CUDA sees, or when the host's driver is older than the CUDA runtime it carries.
"""

from __future__ import annotations

import argparse
import os
import sys

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from scheduler.checks import refuse_bad_settings
from workers import identity, pinning
from workers.gpu import PinningError

# Settings are read (not Django set up) before the GPU is settled: they give the defaults below.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scheduler.settings")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m workers", description=__doc__.splitlines()[0])
    p.add_argument(
        "--gpu",
        default=os.environ.get("CUDA_VISIBLE_DEVICES"),
        help="the GPU to serve: an index or a GPU UUID (default: $CUDA_VISIBLE_DEVICES)",
    )
    p.add_argument("--cpu", action="store_true", help="serve jobs on the CPU with NumPy (no GPU here)")
    p.add_argument(
        "--cpu-slot", type=int, default=0, help="with --cpu: which of several CPU workers of this host (0, 1, ...)"
    )
    p.add_argument("--concurrency", type=int, default=None, help="jobs run at once (default: GPU_CONCURRENCY)")
    p.add_argument("--host", default=settings.HOSTNAME, help="this host's name in queue names (default: GPUQ_HOSTNAME)")
    p.add_argument("--loglevel", default=settings.LOG_LEVEL)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # so a CUDA index and NVML's order agree
    try:
        ident = identify(args)
    except PinningError as exc:
        print(f"worker refuses to start: {exc}", file=sys.stderr)
        return 2
    identity.set_current(ident)
    django.setup()
    try:
        refuse_bad_settings()
    except ImproperlyConfigured as exc:
        print(f"worker refuses to start: {exc}", file=sys.stderr)
        return 2
    # Only now: the worker's modules import Django models, which need the apps set up above.
    from workers import service

    return service.run(ident, args.concurrency, args.loglevel)


def identify(args: argparse.Namespace) -> identity.WorkerIdentity:
    if args.cpu:
        return pinning.cpu_worker(args.host, args.cpu_slot)
    return pinning.pin_worker(args.gpu, args.host)


if __name__ == "__main__":
    sys.exit(main())
