"""`.env.example` and docs/CONFIGURATION.md, written from the declarations in scheduler/settings.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from scheduler.env import Var

ENV_EXAMPLE_HEADER = """\
# Copy to compose/.env (next to docker-compose.yml) and fill in. docker compose reads it to fill the
# ${...} in the compose file; a required value left out stops `docker compose` with "set X in .env".
# Every setting below can also come from a file: NAME_FILE=/run/secrets/name (e.g. SECRET_KEY_FILE).
# An empty value means the default (shown after "default:").
# Written from scheduler/settings.py by `python manage.py settings_docs`: change the declarations there.
"""
HOW = {
    "pass": "from .env (empty: the default)",
    "required": "from .env, required",
    "env": "from .env, else the compose file's value",
    "fixed": "set by the compose file or the image",
    "compose": "read by compose or nginx, not by the app",
}


def env_example(variables: Iterable[Var]) -> str:
    """The `.env.example` text: a heading per section, each variable with its reason and default."""
    out = [ENV_EXAMPLE_HEADER]
    for title, group in by_section(variables):
        out.append(f"\n# --- {title} " + "-" * max(3, 96 - len(title)) + "\n")
        for var in group:
            default = f" default: {var.default}" if var.default else ""
            out.append(f"# {var.why[0].upper()}{var.why[1:]}.{default}\n")
            out.append(f"{'# ' if var.compose == 'fixed' else ''}{var.name}={var.example}\n")
    return "".join(out)


def docs_table(variables: Iterable[Var]) -> str:
    """docs/CONFIGURATION.md: one table of every variable, by section."""
    out = [
        "# Configuration\n\n",
        "Every environment variable, as `scheduler/settings.py` declares it (this file and `.env.example` are\n",
        "written from there by `python manage.py settings_docs`). A setting can also come from a file:\n",
        "`NAME_FILE=/run/secrets/name`. Bad values stop every process at start (Django system checks,\n",
        "`scheduler/checks.py`).\n",
    ]
    for title, group in by_section(variables):
        out.append(f"\n## {title}\n\n| Variable | Default | What for | In compose |\n| --- | --- | --- | --- |\n")
        for var in group:
            why = var.why.replace("|", "\\|")
            out.append(f"| `{var.name}` | {_cell(var.default)} | {why} | {HOW[var.compose]} |\n")
    return "".join(out)


def by_section(variables: Iterable[Var]) -> Iterator[tuple[str, list[Var]]]:
    """Sections in the order they first appear, each with its variables in declaration order."""
    sections: dict[str, list[Var]] = {}
    for var in variables:
        sections.setdefault(var.section, []).append(var)
    return iter(sections.items())


def _cell(default: str) -> str:
    return f"`{default}`" if default else ""
