"""Writing results: JSON, CSV of per-item rows, markdown tables."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_json(data: Any, path: str | os.PathLike) -> None:
    Path(path).write_text(json.dumps(_finite(data), indent=2) + "\n")


def _finite(x: Any) -> Any:
    # JSON has no NaN: missing figures become null.
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def write_csv(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Rows (dicts) -> CSV; the header is the union of keys in first-seen order."""
    fields: dict[str, None] = {}
    for r in rows:
        fields.update(dict.fromkeys(r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(fields))
        w.writeheader()
        w.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 2) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
