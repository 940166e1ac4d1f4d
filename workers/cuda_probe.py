"""What CUDA sees under this environment, asked of a short-lived child process.

`cuda_view()` runs this module as a child (`python -m workers.cuda_probe`), which prints one JSON line:
so the worker's own process never initialises CUDA before the pool forks.
"""

import json
import subprocess
import sys


def cuda_view() -> dict:
    """The child's answer: count, bus_id, driver, runtime; or {"error": ...} saying why CUDA cannot start."""
    out = subprocess.run([sys.executable, "-m", "workers.cuda_probe"], capture_output=True, text=True, timeout=120)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (out.stderr or out.stdout).strip()[-500:] or f"probe exited {out.returncode}"}


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
