"""`from gpuq import Client`: the job queue from Python (cli/library.py)."""

from cli.library import Client, Error, Job

__all__ = ["Client", "Error", "Job"]
