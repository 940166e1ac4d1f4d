"""Flower's options file (`celery flower --conf=compose/flowerconfig.py`): its login from the secret file,
so the password is in no environment variable, command line or `docker inspect` output."""

import os
from pathlib import Path

basic_auth = [f"{os.environ['FLOWER_USER']}:{Path(os.environ['FLOWER_PASSWORD_FILE']).read_text().strip()}"]
