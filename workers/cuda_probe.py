"""Run as a child process: what CUDA sees under this environment, as one JSON line.

The worker asks this in a short-lived child so that its own process never initialises CUDA
before the pool forks.
"""

import json
import sys


def probe() -> dict:
    try:
        import cupy
    except ImportError as exc:
        return {"error": f"CuPy is not installed ({exc})"}
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        bus_id = cupy.cuda.Device(0).pci_bus_id if count else ""
        return {
            "count": count,
            "bus_id": bus_id,
            "driver": cupy.cuda.runtime.driverGetVersion(),
            "runtime": cupy.cuda.runtime.runtimeGetVersion(),
        }
    except Exception as exc:  # cudaErrorNoDevice, cudaErrorInsufficientDriver, ...
        return {"error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    json.dump(probe(), sys.stdout)
    sys.stdout.write("\n")
