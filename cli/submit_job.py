"""`submit-job`: submit GPU jobs and follow them from a shell or a script.

submit-job matmul --param n=4096 --wait
submit-job --batch jobs.jsonl --wait          (one {"kind": ..., "params": {...}} a line)
submit-job list | show ID | logs ID | cancel ID | wait ID... | queue | kinds | gpus | drain UUID | resume UUID
submit-job result ID -o out.npy               (the job's result array, for numpy.load)
submit-job login --url https://gpuq.lab.example   (asks for the token shown on the server's /token/ page)
submit-job run --working-dir . --wait -- python train.py   (your own command: submit-job run --help)
submit-job logs ID [-f] [--tail N] | outputs ID [-o DIR]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path

from cli import follow, logs, output, outputs
from cli import run as run_command
from cli.client import CONFIG_PATH, Client, CliError, save_config, saved_config


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="submit-job", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("what", nargs="?", help="a job kind to submit, or one of: " + ", ".join(COMMANDS))
    p.add_argument(
        "targets",
        nargs="*",
        metavar="ID",
        help="job ids (show, logs, result, cancel, wait) or a GPU UUID (drain, resume)",
    )
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
    p.add_argument("--gpus", type=int, help="GPUs of one host the job runs on at once (default 1)")
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
    check_arguments(args)
    if args.what == "login":
        return login(args)
    client = Client.configured(args.url, args.token)
    if args.what in COMMANDS:
        return command(client, args)
    jobs = submit(client, args)
    for job in jobs:
        for warning in job.get("warnings", []):
            output.warn(warning, args.json)
    if args.wait:
        jobs = follow.wait(client, jobs, args.json, submitted=True)
    output.jobs_table(jobs, args.json)
    return 0 if not args.wait or all(j["status"] == "succeeded" for j in jobs) else 1


def check_arguments(args: argparse.Namespace) -> None:
    """Arguments a command does not take are an error, not silently dropped."""
    chosen = COMMANDS.get(args.what, NO_TARGETS)  # a kind to submit takes none either
    least, most = (1 if chosen.needs else 0), (None if chosen.many else 1 if chosen.needs else 0)
    given = len(args.targets)
    name = f"submit-job {args.what}" if args.what else "submit-job --batch"
    if given < least:
        raise CliError(f"`{name}` needs {chosen.needs}")
    if most is not None and given > most:
        stray = " ".join(args.targets[most:])
        hint = " (parameters are --param NAME=VALUE)" if args.what not in COMMANDS else ""
        raise CliError(f"`{name}` takes {most or 'no'} argument{'s' if most != 1 else ''}; unexpected: {stray}{hint}")


def login(args: argparse.Namespace) -> int:
    """Check a URL and token against the server, then keep them for later commands."""
    url = args.url or os.environ.get("GPUQ_URL") or saved_config().get("url")
    if not url:
        raise CliError("`submit-job login` needs --url (the server's address)")
    token = args.token or os.environ.get("GPUQ_TOKEN") or getpass.getpass(f"token (from {url}/token/): ").strip()
    client = Client(url.rstrip("/"), token, token_source="the token given to login")
    client.call("GET", "/api/kinds/")  # a refused token or a wrong URL is said here, before anything is saved
    save_config(client.url, token)
    output.note(f"logged in to {client.url}; saved in {CONFIG_PATH}")
    return 0


def submit(client: Client, args: argparse.Namespace) -> list[dict]:
    if args.batch:
        return client.call("POST", "/api/jobs/batch/", {"jobs": read_batch(args.batch)})["jobs"]
    text = text_params(client, args.what) if args.param or args.array else set()
    spec = {"kind": args.what, "params": parse_pairs(args.param, text)}
    if args.priority is not None:
        spec["priority"] = args.priority
    if args.time_limit is not None:
        spec["time_limit"] = args.time_limit
    if args.gpus is not None:
        spec["gpus"] = args.gpus
    if args.after:
        spec["after"] = [parse_id(x) for x in args.after.split(",")]
    if args.array:
        grid = {k: [x if k in text else parse_value(x) for x in v.split(",")] for k, v in map(pair_of, args.array)}
        array = client.call("POST", "/api/arrays/", {**spec, "grid": grid})
        output.note(
            f"array {array['id']}: {len(array['jobs'])} jobs (cancel them all: submit-job array-cancel {array['id']})"
        )
        return [client.call("GET", f"/api/jobs/{i}/") for i in array["jobs"]]
    return [client.call("POST", "/api/jobs/", spec)]


def command(client: Client, args: argparse.Namespace) -> int:
    """Run one of COMMANDS (its arguments were checked by check_arguments); its exit status."""
    return COMMANDS[args.what].run(client, args) or 0


def _list(client: Client, args: argparse.Namespace) -> None:
    query = {k: v for k, v in (("status", args.status), ("kind", args.kind)) if v}
    page = client.call("GET", "/api/jobs/", params={**query, "limit": args.limit})
    output.jobs_table(page["results"], args.json, total=page["count"])


def _wait(client: Client, args: argparse.Namespace) -> int:
    jobs = follow.wait(client, [{"id": parse_id(t)} for t in args.targets], args.json)
    output.jobs_table(jobs, args.json)
    return 0 if all(j["status"] == "succeeded" for j in jobs) else 1


def _queue(client: Client, args: argparse.Namespace) -> None:
    output.lab_queue(client.call("GET", "/api/queue/"), args.json)


def _show(client: Client, args: argparse.Namespace) -> None:
    output.job_detail(client.call("GET", f"/api/jobs/{parse_id(args.targets[0])}/"), args.json)


def _logs(client: Client, args: argparse.Namespace) -> None:
    logs.show(client, parse_id(args.targets[0]), args.tail, args.follow, args.json)


def _outputs(client: Client, args: argparse.Namespace) -> None:
    job_id = parse_id(args.targets[0])
    output.outputs_saved(job_id, *outputs.fetch(client, job_id, args.output), args.json)


def _result(client: Client, args: argparse.Namespace) -> None:
    job_id = parse_id(args.targets[0])
    dest = args.output or Path(f"job-{job_id}.npy")
    output.downloaded(job_id, dest, fetch_result(client, job_id, dest), args.json)


def _cancel(client: Client, args: argparse.Namespace) -> None:
    output.jobs_table([client.call("POST", f"/api/jobs/{parse_id(args.targets[0])}/cancel/")], args.json)


def _array_cancel(client: Client, args: argparse.Namespace) -> None:
    output.raw(client.call("POST", f"/api/arrays/{parse_id(args.targets[0])}/cancel/"), args.json)


def _kinds(client: Client, args: argparse.Namespace) -> None:
    output.kinds(client.call("GET", "/api/kinds/"), args.json)


def _gpus(client: Client, args: argparse.Namespace) -> None:
    output.gpus(client.call("GET", "/api/gpus/"), args.json)


def _gpu_action(client: Client, args: argparse.Namespace) -> None:
    """drain or resume: the command's name is the API's action."""
    output.gpus([client.call("POST", f"/api/gpus/{args.targets[0]}/{args.what}/", {})], args.json)


@dataclass(frozen=True)
class Command:
    run: Callable[[Client, argparse.Namespace], int | None]
    needs: str = ""  # what its target is; "" when it takes none
    many: bool = False  # takes several targets


NO_TARGETS = Command(lambda client, args: None)
COMMANDS: dict[str, Command] = {
    "run": Command(lambda client, args: None),  # dispatched in main(), before this parser sees its `--`
    "list": Command(_list),
    "show": Command(_show, "an id"),
    "logs": Command(_logs, "an id"),
    "outputs": Command(_outputs, "an id"),
    "result": Command(_result, "an id"),
    "cancel": Command(_cancel, "an id"),
    "wait": Command(_wait, "an id", many=True),
    "queue": Command(_queue),
    "kinds": Command(_kinds),
    "gpus": Command(_gpus),
    "drain": Command(_gpu_action, "a GPU UUID"),
    "resume": Command(_gpu_action, "a GPU UUID"),
    "array-cancel": Command(_array_cancel, "an id"),
    "login": NO_TARGETS,  # run before a client exists: see login()
}


def fetch_result(client: Client, job_id: int, dest: Path) -> int:
    """Download the job's result array into `dest`; its size. A failed or cancelled job exits 1."""
    job = client.call("GET", f"/api/jobs/{job_id}/")
    if job["status"] in ("failed", "cancelled"):
        raise CliError(f"job {job_id} {job['status']}: it has no result array", 1)
    return client.download(f"/api/jobs/{job_id}/result.npy", dest)


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
