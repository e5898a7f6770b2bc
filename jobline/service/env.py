"""Read settings from the environment and an optional ``.env`` file."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def load(path: str | os.PathLike[str] = ".env") -> None:
    """Load ``.env`` from the working directory; real environment variables win."""
    if Path(path).is_file():
        load_dotenv(path, override=False)


def flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in TRUE:
        return True
    if raw.strip().lower() in FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean; use true or false")


def number(name: str, default: float, cast: type = float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None


def text(name: str, default: str = "") -> str:
    return os.environ.get(name, default)
