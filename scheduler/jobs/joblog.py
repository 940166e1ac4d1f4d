"""A job's stdout/stderr as numbered lines: written live by the worker, capped with the rest counted,
read a page at a time by line number so a page costs the same however long the log is."""

from __future__ import annotations

import codecs
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.utils import timezone

from scheduler.jobs.models import LogLine

LINE_MAX = 4000  # characters of one line kept
PAGE_MAX = 1000
TAIL_KEPT = 20  # stderr lines remembered for the error message


class LogWriter:
    """Collects lines from reader threads; `flush` (from the job's own loop) stores what arrived."""

    def __init__(self, job_id: int, max_lines: int | None = None):
        self.job_id = job_id
        self.max_lines = settings.JOB_LOG_MAX_LINES if max_lines is None else max_lines
        self.kept = 0
        self.dropped = 0
        self.stderr_tail: deque[str] = deque(maxlen=TAIL_KEPT)
        self._pending: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, stream: str, line: str) -> None:
        # PostgreSQL text cannot hold NUL; an endless line must not grow without bound.
        line = line.replace("\x00", "")[:LINE_MAX]
        with self._lock:
            self._pending.append((stream, line))
            if stream == "stderr":
                self.stderr_tail.append(line)

    def flush(self) -> None:
        """Store what arrived. Should the database refuse, the lines stay pending: a retry (the worker's
        `persist`) stores them then, in order, rather than losing what came during the outage."""
        with self._lock:
            pending, self._pending = self._pending, []
        room = max(self.max_lines - self.kept, 0)
        now = timezone.now()
        rows = [
            LogLine(job_id=self.job_id, n=self.kept + i + 1, at=now, stream=stream, text=text)
            for i, (stream, text) in enumerate(pending[:room])
        ]
        try:
            LogLine.objects.bulk_create(rows)
        except Exception:
            with self._lock:
                self._pending[:0] = pending
            raise
        self.kept += len(rows)
        self.dropped += max(len(pending) - room, 0)

    def close(self) -> None:
        """Store the rest, and a last line counting what the cap left out."""
        self.flush()
        if self.dropped:
            note = f"... {self.dropped} more lines of output not kept (the log keeps the first {self.max_lines})"
            LogLine.objects.create(job_id=self.job_id, n=self.kept + 1, stream="gpuq", text=note)


def pump(writer: LogWriter, stream: str, source: Callable[[], Iterable[bytes]]) -> threading.Thread:
    """A thread feeding the chunks of `source()` (a pipe, an engine's log stream) into `writer` line by line.
    `source` is opened on the thread: an engine may not answer a log request until there is output."""

    def follow() -> None:
        for line in lines(source):
            writer.add(stream, line)

    thread = threading.Thread(target=follow, name=f"log-{writer.job_id}-{stream}", daemon=True)
    thread.start()
    return thread


def lines(source: Callable[[], Iterable[bytes]]) -> Iterator[str]:
    """Text lines from byte chunks that split lines anywhere; a last line without a newline too."""
    partial, decoder = "", codecs.getincrementaldecoder("utf-8")("replace")  # a character may span chunks
    try:
        for chunk in source():
            *done, partial = (partial + decoder.decode(chunk)).split("\n")
            yield from (line.rstrip("\r") for line in done)
            partial = partial[: LINE_MAX * 4]
    except Exception:  # the stream broke off (the container was removed under it): what came is kept
        pass
    if partial:
        yield partial


def page(job_id: int, after: int = 0, limit: int = PAGE_MAX) -> list[LogLine]:
    """Lines numbered above `after`, at most `limit` (an index range scan, whatever the log's length)."""
    return list(LogLine.objects.filter(job_id=job_id, n__gt=after).order_by("n")[: min(limit, PAGE_MAX)])


def tail(job_id: int, count: int) -> list[LogLine]:
    last = list(LogLine.objects.filter(job_id=job_id).order_by("-n")[: min(count, PAGE_MAX)])
    return last[::-1]
