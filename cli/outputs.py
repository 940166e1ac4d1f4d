"""`submit-job outputs ID [-o DIR]`: what the job kept from $GPUQ_OUTPUTS, unpacked into a folder."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

from cli.client import Client, CliError


def fetch(client: Client, job_id: int, dest: Path | None) -> tuple[Path, list[str]]:
    """Download and unpack the job's outputs into `dest` (default job-ID-outputs); where, and the files."""
    listed = client.call("GET", f"/api/jobs/{job_id}/outputs/")
    if not listed["files"]:
        client.download(f"/api/jobs/{job_id}/outputs.tar.gz", Path(tempfile.gettempdir()) / "gpuq-none")  # the reason
        raise CliError(f"job {job_id} has no outputs")
    dest = dest or Path(f"job-{job_id}-outputs")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "outputs.tar.gz"
        client.download(listed["archive_url"], archive)
        with tarfile.open(archive, "r:gz") as tar:
            members = [_under(m, f"job-{job_id}/") for m in tar.getmembers()]
            try:
                dest.mkdir(parents=True, exist_ok=True)
                tar.extractall(dest, members=[m for m in members if m], filter="data")
            except OSError as exc:
                raise CliError(f"cannot write into {dest}: {exc.strerror}") from None
    return dest, [f["path"] for f in listed["files"]]


def _under(member: tarfile.TarInfo, prefix: str) -> tarfile.TarInfo | None:
    if not member.name.startswith(prefix):
        return None
    member.name = member.name[len(prefix) :]
    return member
