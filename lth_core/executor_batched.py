"""The `batched` executor: the jobs of a level that share a schedule trained together, in stacked passes.

Worth it where single jobs are too small to fill the machine; adapters opt in through `Adapter.train_batch`.
A group is split into `Adapter.batch_stacks` passes that train side by side on threads of this process, each
with one torch thread (on a CPU small products do not share out over cores, jobs do; on a GPU one pass uses
every core). Where an adapter can't batch, a job is alone in its group, or a pass raises, jobs are trained
one by one as `local` would (`--cpus-per-job` threads). A broken invariant of a pass is never retried so: a job
whose mask did not hold is that job's error row (the adapter's pass says so), and an AssertionError fails the run;
a retrain alone would hide the broken stacked loop. Numbers differ from `local`'s in the last bits, since batched
products sum in another order.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import Iterator

import torch

from lth_core.executors import EXECUTORS, Executor, available_cores, job_threads, train_safely
from lth_core.job import Job, Outcome


@EXECUTORS.register("batched")
class BatchedExecutor(Executor):
    def run(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        before = torch.get_num_threads()
        cores = available_cores()
        try:
            key = lambda j: (j.start_step, j.budget)  # noqa: E731
            for _, same_schedule in groupby(sorted(jobs, key=key), key=key):
                group = list(same_schedule)
                outcomes = self._stacked(group, cores) if len(group) > 1 else None
                if outcomes is None:
                    for job in group:
                        yield job, train_safely(self.adapter, job, threads=job_threads(self.options))
                else:
                    yield from zip(group, outcomes)
        finally:
            torch.set_num_threads(before)

    def _stacked(self, group: list[Job], cores: int) -> list[Outcome] | None:
        """Outcomes of the group in order, or None when a pass can't be done (the caller goes one by one)."""
        n = max(1, min(len(group), self.adapter.batch_stacks(len(group), cores)))
        stacks = [group[i::n] for i in range(n)]  # a level's kinds spread over the stacks
        torch.set_num_threads(1 if n > 1 else cores)
        try:
            if n == 1:
                results = [self.adapter.train_batch(stacks[0])]
            else:
                with ThreadPoolExecutor(n, thread_name_prefix="stack") as pool:
                    results = list(pool.map(self.adapter.train_batch, stacks))
        except AssertionError:  # a broken invariant of the stacked loop: retrying alone would hide it
            raise
        except Exception:  # a batched pass that fails is retried job by job, where failures become rows
            return None
        if any(r is None for r in results):
            return None
        by_job = {id(j): o for stack, outs in zip(stacks, results) if outs is not None for j, o in zip(stack, outs)}
        return [by_job[id(j)] for j in group]
