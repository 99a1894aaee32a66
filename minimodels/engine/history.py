"""What a training run logged: one row per step and one per evaluation, kept apart so that "the last loss" and "the
last evaluation" are never confused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class History:
    steps: list[dict] = field(default_factory=list)  # {"step": s, "loss": ..., **logs}, s = 1 .. steps
    evals: list[dict] = field(default_factory=list)  # {"step": s, **metrics}

    @property
    def final_loss(self) -> float | None:
        """The loss of the last step (None after zero steps: nothing was trained)."""
        return self.steps[-1]["loss"] if self.steps else None

    @property
    def final_eval(self) -> dict:
        """The metrics of the last evaluation (without its step)."""
        return {k: v for k, v in self.evals[-1].items() if k != "step"}

    def log_rows(self) -> list[dict]:
        """Steps and evaluations in order, as the run log writes them (an evaluation after its step)."""
        evals = [{"step": e["step"], "eval": {k: v for k, v in e.items() if k != "step"}} for e in self.evals]
        return sorted(self.steps + evals, key=lambda row: (row["step"], "eval" in row))

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one logged quantity, for plots."""
        rows = [r for r in self.steps if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    def to_dict(self) -> dict:
        return asdict(self)
