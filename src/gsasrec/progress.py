"""How far a long job is. Training (RunProgress): on a terminal a bar with the loss and the whole run's ETA;
elsewhere (a log file, nohup, CI) a plain line at least every `every` seconds, so that a long epoch is never
silent. Other jobs (JobProgress: ranking users, the calibration pass, import, export) the same way, on
stderr, so that stdout keeps only their results."""

from __future__ import annotations

import sys
import threading
import time

from tqdm import tqdm

LINE_EVERY_SECONDS = 30.0


class Budget:
    """--max-steps and --max-minutes."""

    def __init__(self, max_steps: int | None, max_minutes: float | None, spent_seconds: float = 0.0):
        """spent_seconds: training time the run had before this process (a resumed run)."""
        self.max_steps = max_steps
        self.deadline = None
        if max_minutes is not None:
            self.deadline = time.perf_counter() + max_minutes * 60 - spent_seconds

    def spent(self, steps: int) -> bool:
        if self.max_steps is not None and steps >= self.max_steps:
            return True
        return self.deadline is not None and time.perf_counter() >= self.deadline


class RunProgress:
    def __init__(self, budget: Budget, total_steps: int, first_step: int, terminal: bool | None,
                 shown: bool = True, every: float = LINE_EVERY_SECONDS):
        """budget: --max-steps / --max-minutes; total_steps: the step the run ends at without a budget
        (max_epochs' worth); first_step: where this process starts (a resumed run's step count);
        terminal: a bar (True), lines (False) or whichever fits stdout (None); shown: False on ranks > 0."""
        self.budget = budget
        self.total_steps = min(total_steps, budget.max_steps or total_steps)
        self.first_step = first_step
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self.shown = shown
        self.every = every
        self.started = self.last_line = time.perf_counter()
        self.bar: tqdm | None = None

    def start_epoch(self, epoch: int, steps_per_epoch: int, batch: int) -> None:
        self.bar = tqdm(total=steps_per_epoch, initial=batch, desc=f"epoch {epoch}", unit="step", leave=False,
                        dynamic_ncols=True, disable=not (self.shown and self.terminal))

    def end_epoch(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def after_step(self, steps: int, recent_loss) -> None:
        """recent_loss: a callable giving the mean of the latest losses (evaluated only when shown)."""
        if not self.shown:
            return
        self.bar.update(1)
        now = time.perf_counter()
        if self.terminal and steps % 10 == 0:
            self.bar.set_postfix(loss=f"{recent_loss():.4f}", run_eta=format_seconds(self.eta(steps, now)))
        elif not self.terminal and now - self.last_line >= self.every:
            self.last_line = now
            tqdm.write(self.line(steps, recent_loss(), now))

    def rate(self, steps: int, now: float) -> float:
        return (steps - self.first_step) / max(now - self.started, 1e-9)

    def eta(self, steps: int, now: float) -> float | None:
        """Seconds until the run ends by its step count or its deadline, whichever comes first."""
        rate = self.rate(steps, now)
        if rate <= 0:
            return None
        remaining = (self.total_steps - steps) / rate
        if self.budget.deadline is not None:
            remaining = min(remaining, self.budget.deadline - now)
        return max(remaining, 0.0)

    def line(self, steps: int, loss: float, now: float) -> str:
        return (f"step {self.step_of(steps, now)} loss {loss:.4f} {self.rate(steps, now):.2f} steps/s "
                f"ETA {format_seconds(self.eta(steps, now))}")

    def step_of(self, steps: int, now: float) -> str:
        """'142/1400'; under a minutes budget the total is the steps expected by the deadline ('142/~1380'),
        not max_epochs' worth."""
        if self.budget.deadline is not None and self.budget.max_steps is None:
            expected = steps + max(self.budget.deadline - now, 0.0) * self.rate(steps, now)
            return f"{steps}/~{min(int(expected), self.total_steps)}"
        return f"{steps}/{self.total_steps}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class JobProgress:
    """A long job besides training: a bar on a terminal, else a line on stderr at least every `every`
    seconds (LINE_EVERY_SECONDS). With a total, `update(n)` counts the work done and the line has an ETA;
    without one (a single long call such as an export) a clock keeps the elapsed time visible.

        with JobProgress("ranking test users", total=len(users), unit="users") as progress:
            for batch in batches:
                ...
                progress.update(len(batch))
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "it", shown: bool = True,
                 terminal: bool | None = None, every: float | None = None):
        self.description = description
        self.total = total
        self.unit = unit
        self.shown = shown
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.every = LINE_EVERY_SECONDS if every is None else every
        self.done = 0
        self.bar: tqdm | None = None
        self.stopped = threading.Event()
        self.clock: threading.Thread | None = None

    def __enter__(self) -> JobProgress:
        self.started = time.perf_counter()
        if not self.shown:
            return self
        if self.terminal:
            form = None if self.total is not None else "{desc}: {elapsed}"
            self.bar = tqdm(total=self.total, desc=self.description, unit=f" {self.unit}", leave=False,
                            file=sys.stderr, dynamic_ncols=True, bar_format=form)
        self.clock = threading.Thread(target=self._tick, daemon=True)
        self.clock.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        if self.clock is not None:
            self.clock.join()
        if self.bar is not None:
            self.bar.close()

    def stage(self, description: str) -> None:
        """Name the part of the job now running (for jobs made of a few long calls)."""
        self.description = description
        if self.bar is not None:
            self.bar.set_description(description)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)

    def _tick(self) -> None:
        # On a terminal the bar is redrawn each second (so that the clock moves during one long call);
        # elsewhere one line per `every` seconds.
        while not self.stopped.wait(1.0 if self.terminal else self.every):
            if self.bar is not None:
                self.bar.refresh()
            else:
                print(self.line(time.perf_counter()), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self.started
        if self.total is None:
            return f"{self.description}: {format_seconds(elapsed)} elapsed"
        rate = self.done / max(elapsed, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else None
        return (f"{self.description}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
                f"ETA {format_seconds(eta)}")
