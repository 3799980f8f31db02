"""The `batched` executor: the jobs of a level that share a schedule trained together in one pass.

Worth it where single jobs are too small to fill the machine (F&C's LeNet and Conv nets at batch 60);
adapters opt in through `Adapter.train_batch`. Where an adapter can't batch, or a batched pass raises,
the jobs are trained one by one exactly as `local` would.
"""
from __future__ import annotations

from itertools import groupby
from typing import Iterator

from lth_core.executors import EXECUTORS, Executor, train_safely
from lth_core.job import Job, Outcome


@EXECUTORS.register("batched")
class BatchedExecutor(Executor):
    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        key = lambda j: (j.start_step, j.budget)  # noqa: E731
        for _, group in groupby(sorted(jobs, key=key), key=key):
            group = list(group)
            try:
                outcomes = self.adapter.train_batch(group) if len(group) > 1 else None
            except Exception:  # a batched pass that fails is retried job by job, where failures become rows
                outcomes = None
            if outcomes is None:
                for job in group:
                    yield job, train_safely(self.adapter, job)
            else:
                yield from zip(group, outcomes)
