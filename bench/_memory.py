"""Peak memory of this process, read the way the benchmarks' child processes report it, and the
children's command line: `baseline | work ARGS...`, one JSON line out (`_report.run_child`).

A child's ru_maxrss starts at its parent's RSS on Linux, so the children read their own VmHWM
from /proc and reset it between phases.
"""

from __future__ import annotations

import json
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def peak_kib(field: str = "VmHWM") -> int:
    """This process's peak RSS (or with "VmRSS" its current RSS) in KiB; else ru_maxrss."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return ru_maxrss_kib()


def ru_maxrss_kib() -> int:
    """getrusage's ru_maxrss in KiB (macOS counts bytes)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value // 1024 if sys.platform == "darwin" else value


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next phase's peak is its own."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def child_main(
    argv: list[str], usage: str, operands: int, work: Callable[..., dict[str, Any]]
) -> None:
    """A child's command line: `baseline` (imports only) or `work` with `operands` arguments;
    prints the result and ru_maxrss as one JSON line."""
    if argv[:1] == ["baseline"]:
        result: dict[str, Any] = {"imported_kib": peak_kib()}
    elif argv[:1] == ["work"] and len(argv) == 1 + operands:
        result = work(*argv[1:])
    else:
        raise SystemExit(f"usage: {usage}")
    result["ru_maxrss_kib"] = ru_maxrss_kib()
    print(json.dumps(result), flush=True)
