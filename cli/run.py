"""`submit-job run [options] -- CMD [ARGS...]`: your own command, in your working dir, on a GPU.

submit-job run --working-dir . --wait -- python examples/train.py
submit-job run --mount imagenet --time-limit 7200 --tag exp3 --env EPOCHS=3 -- python train.py --lr 3e-4
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from cli import bundle, logs, output
from cli.client import Client, CliError


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="submit-job run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--working-dir", "-d", type=Path, help="pack and upload this dir; the job runs in it")
    p.add_argument("--image", help="an allowlisted image (default: the lab's)")
    p.add_argument("--name", help="a name for the job, shown in lists")
    p.add_argument("--tag", action="append", default=[], help="a label (repeatable), shown in lists")
    p.add_argument("--time-limit", type=int, help="seconds (default: the deployment's)")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="repeatable")
    p.add_argument("--mount", action="append", default=[], metavar="NAME", help="a mount staff declared (repeatable)")
    p.add_argument("--gpus", type=int, help="GPUs of one host it runs on at once (default 1)")
    p.add_argument("--gpu-mib", type=int, help="GPU memory the job will use on each GPU, in MiB (for routing)")
    p.add_argument("--runner", choices=("local", "container"), help="default: the deployment's choice")
    p.add_argument("--priority", type=int)
    p.add_argument("--max-upload-mib", type=float, default=bundle.DEFAULT_MAX_BYTES / 2**20)
    p.add_argument("--wait", "-w", action="store_true", help="follow its log until it ends; exit 1 if it failed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command and its arguments")
    args = p.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.command:
        p.error("give the command after --, e.g. submit-job run -- python train.py")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        client = Client.configured(args.url, args.token)
        job = client.call("POST", "/api/jobs/", spec(client, args))
        for warning in job.get("warnings", []):
            output.warn(warning, args.json)
        if not args.wait:
            output.jobs_table([job], args.json)
            return 0
        job = logs.follow(client, job["id"], quiet=args.json)
        output.jobs_table([job], args.json)
        return 0 if job["status"] == "succeeded" else 1
    except CliError as exc:
        output.error(str(exc), args.json)
        return exc.code
    except KeyboardInterrupt:
        return 130


def spec(client: Client, args: argparse.Namespace) -> dict:
    params: dict = {"command": shlex.join(args.command)}
    if args.working_dir:
        params["bundle"] = upload(client, args.working_dir, int(args.max_upload_mib * 2**20), args.json)
    for name, value in (("image", args.image), ("gpu_mib", args.gpu_mib), ("runner", args.runner)):
        if value is not None:
            params[name] = value
    if args.env:
        params["env"] = " ".join(shlex.quote(_pair(e)) for e in args.env)
    if args.mount:
        params["mounts"] = ",".join(args.mount)
    body = {"kind": "run", "params": params, "name": args.name or _default_name(args.command), "tags": args.tag}
    for name, value in (("time_limit", args.time_limit), ("priority", args.priority), ("gpus", args.gpus)):
        if value is not None:
            body[name] = value
    return body


def upload(client: Client, root: Path, max_bytes: int, quiet: bool) -> str:
    """Pack the dir and send it unless the server has it already; its sha256."""
    packed = bundle.pack(root, max_bytes)
    if client.exists(f"/api/bundles/{packed.digest}/"):
        said = f"{root}: unchanged ({packed.files} files, {packed.digest[:12]}), not sent again"
    else:
        client.call_raw("PUT", f"/api/bundles/{packed.digest}/", packed.data, "application/octet-stream")
        said = f"{root}: {packed.files} files sent ({len(packed.data) / 1024:,.1f} KiB)"
    if not quiet:
        output.note(said)
    return packed.digest


def _pair(text: str) -> str:
    if "=" not in text or text.startswith("="):
        raise CliError(f"--env takes NAME=VALUE, got {text!r}")
    return text


def _default_name(command: list[str]) -> str:
    return " ".join(command)[:100]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
