"""Type aliases shared by every app."""

from typing import Any

JSONDict = dict[str, Any]
