"""Exit 0 when a suite test failed right after a request that repeats a query key.

Reads the failure's traceback on standard input; the test's name is the argument. The request is
the last `DoGet(...)` of the suite's source before the failing line. The Python plugin 4.0 gives
the plugin a dict of query arguments, so `includefield=A&includefield=B` reaches it as
`includefield=B` alone; such a failure is a limit of the runtime, not of the plugin.
"""

import re
import sys
from pathlib import Path

REPEATED_KEY = re.compile(r"[?&]([A-Za-z0-9]+)=[^&'\"]*&(?:[^'\"]*&)?\1=")


def failing_line(trace: str, test: str) -> tuple[Path, int] | None:
    frames = re.findall(r'File "([^"]+)", line (\d+), in ' + re.escape(test) + r"\b", trace)
    if not frames:
        return None
    path, line = frames[-1]
    return Path(path), int(line)


def last_request_before(source: list[str], line: int) -> str:
    for text in reversed(source[:line]):
        if "DoGet(" in text:
            return text
    return ""


def main() -> int:
    located = failing_line(sys.stdin.read(), sys.argv[1])
    if located is None:
        return 1
    path, line = located
    request = last_request_before(path.read_text(errors="replace").splitlines(), line)
    return 0 if REPEATED_KEY.search(request) else 1


if __name__ == "__main__":
    sys.exit(main())
