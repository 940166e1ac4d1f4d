"""`python manage.py compose`: write the docker compose file of this GPU host."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers import composegen, doctor, gpu
from workers.gpu import PinningError

NO_NVML = (
    "no NVML on this host, so its GPUs cannot be listed: name them with --gpus 0,1 "
    "or, better, by UUID: --gpus GPU-<uuid>,GPU-<uuid> (nvidia-smi -L prints them)"
)


class Command(BaseCommand):
    help = "Write a docker compose file with one worker per GPU, each pinned to its GPU by UUID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--gpus", default="", help="GPU indexes or UUIDs, comma-separated (default: all NVML lists)"
        )
        parser.add_argument(
            "--output",
            help="where to write, '-' for stdout (default: compose/docker-compose.yml, "
            "or compose/docker-compose.worker.yml with --worker-only); keep it "
            "in compose/: the file's paths are relative to that folder",
        )
        parser.add_argument(
            "--worker-only",
            action="store_true",
            help="only the workers, for a second GPU host joining the main host's Redis and database",
        )
        parser.add_argument("--host", default=settings.HOSTNAME, help="this host's name in queue names")
        parser.add_argument(
            "--cpu",
            type=int,
            metavar="N",
            help="N CPU workers (NumPy) instead of GPU workers: the stack on a machine without a GPU",
        )

    def handle(self, *args, gpus: str, output: str | None, worker_only: bool, host: str, cpu: int | None, **_) -> None:
        if cpu is not None and (gpus or cpu < 1):
            raise CommandError("--cpu N takes a number of workers of at least 1, and no --gpus")
        slots = composegen.cpu_slots(cpu) if cpu else self.slots([v.strip() for v in gpus.split(",") if v.strip()])
        doc = composegen.build(slots, host=host, worker_only=worker_only)
        command = _command_line(gpus, worker_only, host) + (f" --cpu {cpu}" if cpu else "")
        text = composegen.dump(doc, composegen.header(slots, command, worker_only))
        if output == "-":
            self.stdout.write(text, ending="")
            return
        name = "docker-compose.worker.yml" if worker_only else "docker-compose.yml"
        path = Path(output) if output else settings.BASE_DIR / "compose" / name
        path.write_text(text)
        kind = "CPU" if cpu else "GPU"
        self.stderr.write(
            f"wrote {path}: {len(slots)} {kind} worker(s): {', '.join(s.device_id or s.label for s in slots)}"
        )

    def slots(self, values: list[str]) -> list[composegen.GpuSlot]:
        """The GPUs to serve, resolved to UUIDs wherever NVML is here to resolve them."""
        nvml = doctor.load_nvml()
        known = gpu.list_gpus(nvml) if nvml else None
        if not values:
            if known is None:
                raise CommandError(NO_NVML)
            values = [g.uuid for g in known]
        if not values:
            raise CommandError("NVML lists no GPU on this host: nothing to write")
        try:
            return composegen.slots_for(values, known)
        except PinningError as exc:
            raise CommandError(str(exc)) from None


def _command_line(gpus: str, worker_only: bool, host: str) -> str:
    parts = ["python manage.py compose"] + ([f"--gpus {gpus}"] if gpus else [])
    return " ".join(parts + (["--worker-only"] if worker_only else []) + [f"--host {host}"])
