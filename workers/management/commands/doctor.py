"""`python manage.py doctor`: what is wrong with this host, in plain words; exit 1 when anything is."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers import doctor, engine_checks, gpu


class Command(BaseCommand):
    help = (
        "Check Redis, the database, the CUDA driver against the image's CUDA runtime, this worker's GPU "
        "and whether every GPU here has a worker in the compose file. Exit 1 when a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--driver-version", type=int, help="the driver's CUDA version, e.g. 12040 (default: ask CUDA)"
        )
        parser.add_argument("--runtime-version", type=int, help="the CUDA runtime's version, e.g. 13020")
        parser.add_argument(
            "--visible",
            default=os.environ.get("CUDA_VISIBLE_DEVICES"),
            help="check a worker pinned to this GPU (default: $CUDA_VISIBLE_DEVICES)",
        )
        parser.add_argument(
            "--engine",
            action="store_true",
            help="also check the container engine at DOCKER_HOST: reachable, GPU runtime, a one-shot GPU container",
        )
        parser.add_argument(
            "--gpu-image",
            default=engine_checks.GPU_PROBE_IMAGE,
            help="image with the CUDA base for the one-shot GPU container (default: %(default)s)",
        )
        parser.add_argument(
            "--compose",
            default=str(settings.BASE_DIR / "compose" / "docker-compose.yml"),
            help="the compose file that should hold a worker for every GPU here ('' to skip)",
        )

    def handle(
        self,
        *args,
        driver_version: int | None,
        runtime_version: int | None,
        visible: str | None,
        compose: str,
        engine: bool = False,
        gpu_image: str = engine_checks.GPU_PROBE_IMAGE,
        **options,
    ) -> None:
        if (driver_version is None) != (runtime_version is None):
            raise CommandError("give both --driver-version and --runtime-version, or neither")
        versions = (
            (driver_version, runtime_version) if driver_version is not None and runtime_version is not None else None
        )
        compose_path = compose if compose and os.path.exists(compose) else None
        findings = doctor.run_all(settings.REDIS_URL, visible=visible, compose_path=compose_path, versions=versions)
        if engine:
            nvml = doctor.load_nvml()
            uuids = [g.uuid for g in gpu.list_gpus(nvml)] if nvml else []
            findings += engine_checks.run(settings.DOCKER_HOST, uuids, gpu_image)
        for finding in findings:
            self.stdout.write(str(finding))
        failed = [f for f in findings if not f.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(findings)} checks failed", returncode=1)
