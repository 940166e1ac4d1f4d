"""`submit-job`: submit GPU jobs and follow them from a shell or a script.

submit-job matmul --param n=4096 --wait
submit-job --batch jobs.jsonl --wait          (one {"kind": ..., "params": {...}} a line)
submit-job list | show ID | logs ID | cancel ID | kinds | gpus | drain UUID | resume UUID
submit-job result ID -o out.npy               (the job's result array, for numpy.load)
submit-job run --working-dir . --wait -- python train.py   (your own command: submit-job run --help)
submit-job logs ID [-f] [--tail N] | outputs ID [-o DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path

from cli import logs, output, outputs
from cli import run as run_command
from cli.client import Client, CliError

FINAL = {"succeeded", "failed", "cancelled"}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="submit-job", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", nargs="?", help="a job kind to submit, or one of: " + ", ".join(COMMANDS))
    p.add_argument("target", nargs="?", help="a job id (show, logs, result, cancel) or a GPU UUID (drain, resume)")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument(
        "--array",
        "-a",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="submit one job per combination of these values",
    )
    p.add_argument("--priority", type=int)
    p.add_argument("--after", help="comma-separated job ids that must succeed first")
    p.add_argument("--time-limit", type=int, help="seconds")
    p.add_argument("--batch", type=Path, help="a JSON-lines file of jobs, submitted whole or not at all")
    p.add_argument("--wait", "-w", action="store_true", help="wait until the jobs finish")
    p.add_argument("--status", help="list: only jobs in this status")
    p.add_argument("--kind", help="list: only jobs of this kind")
    p.add_argument("--limit", type=int, default=20, help="list: how many")
    p.add_argument("--output", "-o", type=Path, help="result: the file (default job-ID.npy); outputs: the folder")
    p.add_argument("--follow", "-f", action="store_true", help="logs: keep printing until the job ends")
    p.add_argument("--tail", type=int, default=0, metavar="N", help="logs: only the last N lines")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--url", help="server URL (default $GPUQ_URL)")
    p.add_argument("--token", help="API token (default $GPUQ_TOKEN)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["run"]:  # its own parser: everything after `--` is the user's command
        return run_command.main(argv[1:])
    args = parse(argv)
    try:
        return run(args)
    except CliError as exc:
        output.error(str(exc), args.json)
        return exc.code
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace) -> int:
    if not args.batch and not args.what:
        raise CliError("say what to submit (a kind, or --batch FILE) or a command: " + ", ".join(COMMANDS))
    client = Client.configured(args.url, args.token)
    if args.what in COMMANDS:
        return command(client, args)
    jobs = submit(client, args)
    for job in jobs:
        for warning in job.get("warnings", []):
            output.warn(warning, args.json)
    if args.wait:
        jobs = wait(client, jobs, args.json)
    output.jobs_table(jobs, args.json)
    return 0 if not args.wait or all(j["status"] == "succeeded" for j in jobs) else 1


def submit(client: Client, args: argparse.Namespace) -> list[dict]:
    if args.batch:
        return client.call("POST", "/api/jobs/batch/", {"jobs": read_batch(args.batch)})["jobs"]
    text = text_params(client, args.what) if args.param or args.array else set()
    spec = {"kind": args.what, "params": parse_pairs(args.param, text)}
    if args.priority is not None:
        spec["priority"] = args.priority
    if args.time_limit is not None:
        spec["time_limit"] = args.time_limit
    if args.after:
        spec["after"] = [parse_id(x) for x in args.after.split(",")]
    if args.array:
        grid = {k: [x if k in text else parse_value(x) for x in v.split(",")] for k, v in map(pair_of, args.array)}
        array = client.call("POST", "/api/arrays/", {**spec, "grid": grid})
        return [client.call("GET", f"/api/jobs/{i}/") for i in array["jobs"]]
    return [client.call("POST", "/api/jobs/", spec)]


def command(client: Client, args: argparse.Namespace) -> int:
    """Run one of COMMANDS; its target (a job id or a GPU UUID) must be given where it takes one."""
    chosen = COMMANDS[args.what]
    if chosen.needs and not args.target:
        raise CliError(f"`submit-job {args.what}` needs {chosen.needs}")
    chosen.run(client, args)
    return 0


def _list(client: Client, args: argparse.Namespace) -> None:
    query = {k: v for k, v in (("status", args.status), ("kind", args.kind)) if v}
    output.jobs_table(client.call("GET", "/api/jobs/", params={**query, "limit": args.limit})["results"], args.json)


def _show(client: Client, args: argparse.Namespace) -> None:
    output.job_detail(client.call("GET", f"/api/jobs/{parse_id(args.target)}/"), args.json)


def _logs(client: Client, args: argparse.Namespace) -> None:
    logs.show(client, parse_id(args.target), args.tail, args.follow, args.json)


def _outputs(client: Client, args: argparse.Namespace) -> None:
    job_id = parse_id(args.target)
    output.outputs_saved(job_id, *outputs.fetch(client, job_id, args.output), args.json)


def _result(client: Client, args: argparse.Namespace) -> None:
    job_id = parse_id(args.target)
    dest = args.output or Path(f"job-{job_id}.npy")
    output.downloaded(job_id, dest, fetch_result(client, job_id, dest), args.json)


def _cancel(client: Client, args: argparse.Namespace) -> None:
    output.jobs_table([client.call("POST", f"/api/jobs/{parse_id(args.target)}/cancel/")], args.json)


def _array_cancel(client: Client, args: argparse.Namespace) -> None:
    output.raw(client.call("POST", f"/api/arrays/{parse_id(args.target)}/cancel/"), args.json)


def _kinds(client: Client, args: argparse.Namespace) -> None:
    output.kinds(client.call("GET", "/api/kinds/"), args.json)


def _gpus(client: Client, args: argparse.Namespace) -> None:
    output.gpus(client.call("GET", "/api/gpus/"), args.json)


def _gpu_action(client: Client, args: argparse.Namespace) -> None:
    """drain or resume: the command's name is the API's action."""
    output.gpus([client.call("POST", f"/api/gpus/{args.target}/{args.what}/", {})], args.json)


@dataclass(frozen=True)
class Command:
    run: Callable[[Client, argparse.Namespace], None]
    needs: str = ""  # what its target is; "" when it takes none


COMMANDS: dict[str, Command] = {
    "run": Command(lambda client, args: None),  # dispatched in main(), before this parser sees its `--`
    "list": Command(_list),
    "show": Command(_show, "an id"),
    "logs": Command(_logs, "an id"),
    "outputs": Command(_outputs, "an id"),
    "result": Command(_result, "an id"),
    "cancel": Command(_cancel, "an id"),
    "kinds": Command(_kinds),
    "gpus": Command(_gpus),
    "drain": Command(_gpu_action, "a GPU UUID"),
    "resume": Command(_gpu_action, "a GPU UUID"),
    "array-cancel": Command(_array_cancel, "an id"),
}


def fetch_result(client: Client, job_id: int, dest: Path) -> int:
    """Download the job's result array into `dest`; its size. A failed or cancelled job exits 1."""
    job = client.call("GET", f"/api/jobs/{job_id}/")
    if job["status"] in ("failed", "cancelled"):
        raise CliError(f"job {job_id} {job['status']}: it has no result array", 1)
    return client.download(f"/api/jobs/{job_id}/result.npy", dest)


def wait(client: Client, jobs: list[dict], quiet: bool) -> list[dict]:
    """Poll until every job is final, with a progress bar on a terminal."""
    pending = {j["id"]: j for j in jobs}
    done: dict[int, dict] = {}
    with output.progress(len(jobs), quiet) as advance:
        while pending:
            for job_id in list(pending)[:200]:
                job = client.call("GET", f"/api/jobs/{job_id}/")
                if job["status"] in FINAL:
                    done[job_id] = pending.pop(job_id) | job
                    advance(job)
            if pending:
                time.sleep(0.3)
    return [done[j["id"]] for j in jobs]


def read_batch(path: Path) -> list[dict]:
    if not path.exists():
        raise CliError(f"no such file: {path}")
    specs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            spec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CliError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(spec, dict) or "kind" not in spec:
            raise CliError(f'{path}:{number}: each line must be an object like {{"kind": "matmul", "params": {{...}}}}')
        specs.append(spec)
    if not specs:
        raise CliError(f"{path}: no jobs in it")
    return specs


def pair_of(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise CliError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def text_params(client: Client, kind: str) -> set[str]:
    """The kind's text parameters, whose values are taken as typed (`command=true` is the text "true")."""
    for described in client.call("GET", "/api/kinds/"):
        if described["name"] == kind:
            return {n for n, p in described["schema"]["properties"].items() if p.get("type") == "string"}
    return set()  # an unknown kind: the server's answer names the known ones


def parse_pairs(pairs: list[str], text: Set[str] = frozenset()) -> dict:
    return {name: value if name in text else parse_value(value) for name, value in map(pair_of, pairs)}


def parse_value(text: str):
    """`4096` -> 4096, `0.5` -> 0.5, `true` -> True, anything else stays text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_id(text: str) -> int:
    if not text.strip().isdigit():
        raise CliError(f"a job id is a number, got {text!r}")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
