"""Measuring tools: wall-clock timing, a process's resident memory, and a multi-client load."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .report import percentile

CLOCK_TICKS = 100  # USER_HZ on Linux: /proc/{pid}/stat counts CPU time in 1/100 s


def timed(action: Callable[[], object]) -> float:
    """Seconds taken by `action`; a callable it returns (checking the answer) runs untimed."""
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    if callable(result):
        result()
    return elapsed


def median_time(action: Callable[[], object], repetitions: int, warmup: int = 1) -> float:
    """Median seconds of `repetitions` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        action()
    return statistics.median(timed(action) for _ in range(repetitions))


def memory_kb(pid: int, field_name: str) -> int:
    """A `kB` field of /proc/{pid}/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field_name} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_until_idle(pid: int, window: float = 0.5, busy: float = 0.1, timeout: float = 90) -> None:
    """Wait until the process uses less than `busy` of a core over `window` seconds.

    Background work (e.g. metadata caches built when a series becomes stable) would otherwise
    be charged to whatever is measured next.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy * window:
            return


class MemorySampler:
    """Peak resident memory growth of a process while the `with` block runs.

    Samples VmRSS in a thread and also resets then reads the kernel's high-water mark
    (VmHWM), which catches peaks shorter than the sampling period.
    """

    def __init__(self, pid: int, period: float = 0.005) -> None:
        self.pid = pid
        self.period = period
        self.baseline_kb = 0
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> MemorySampler:
        self.baseline_kb = self.peak_kb = memory_kb(self.pid, "VmRSS")
        self._reset_high_water_mark()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, memory_kb(self.pid, "VmHWM"))

    @property
    def growth_mb(self) -> float:
        return (self.peak_kb - self.baseline_kb) / 1024

    def _sample(self) -> None:
        while not self._stop.wait(self.period):
            self.peak_kb = max(self.peak_kb, memory_kb(self.pid, "VmRSS"))

    def _reset_high_water_mark(self) -> None:
        # "5" resets VmHWM to the current RSS (Linux >= 4.0); sampling alone remains otherwise.
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")


@dataclass
class LoadResult:
    """What several clients saw during a load: one latency per successful request."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def requests_per_second(self) -> float:
        return (len(self.latencies) + self.errors) / self.seconds

    def latency_ms(self, fraction: float) -> float:
        return 1000 * percentile(self.latencies, fraction) if self.latencies else float("nan")


def run_load(clients: Sequence[Callable[[int], bool]], seconds: float) -> LoadResult:
    """Run each client in its own thread, calling it with a counter until time is up.

    A client does one request and says whether it succeeded.
    """
    result = LoadResult(seconds)
    guard = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(client: Callable[[int], bool]) -> None:
        count = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            ok = client(count)
            elapsed = time.perf_counter() - start
            count += 1
            with guard:
                if ok:
                    result.latencies.append(elapsed)
                else:
                    result.errors += 1

    threads = [threading.Thread(target=loop, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result
