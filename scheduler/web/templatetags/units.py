"""Numbers for people: bytes in GiB or MiB, floats to a few significant digits, seconds as a duration."""

import json

from django import template

register = template.Library()


@register.filter
def binary_bytes(n: int | None) -> str:
    """23622320128 -> "22.0 GiB"; under a GiB, in MiB."""
    if n is None:
        return ""
    if abs(n) >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.1f} MiB"


@register.filter
def human(value):
    """70.166015625 -> 70.166; 525267.4 -> 525267; 0.000123456 -> 0.000123456 (six significant digits,
    the exact value in the cell's title); None -> "—"; integers and text as they are."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


@register.filter
def duration(seconds: float | None) -> str:
    """3725.4 -> "1 h 2 min 5 s"; under a minute, to the hundredth of a second."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, s = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{v} {u}" for v, u in ((hours, "h"), (minutes, "min"), (s, "s")) if v)
