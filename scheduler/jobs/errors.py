"""The error a submission's checks raise; the API and the pages turn it into a 4xx answer in one place each."""

from __future__ import annotations

from typing import Any


class SubmissionError(Exception):
    """What was wrong with a submission, field by field; `status` is the HTTP status to answer."""

    def __init__(self, errors: Any, status: int = 400):
        super().__init__(str(errors))
        self.errors = errors
        self.status = status
