"""A kill between saving a job's tensors and writing its record (the record is the commit marker): the job's state
is on disk but it is not done, so the resumed run retrains exactly that job and gives the table of a run never
killed."""

from __future__ import annotations

import pandas as pd
import pytest
from test_runner import VOLATILE, Crash, run
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import ImpConfig
from lth_core.store import RunStore


@pytest.mark.parametrize("key,state", [("L00-dense-t0", "rewind-t0"), ("L01-ticket-t0", "final-L01-t0")])
def test_a_kill_after_the_state_and_before_the_record_resumes_to_the_same_table(tmp_path, monkeypatch, key, state):
    imp = ImpConfig(levels=2, trials=1)
    ref, _ = run(tmp_path / "ref", imp)
    write = RunStore.write_record

    def killed(self, k, record):
        if k == key:
            assert self.state_path(state).exists()  # the tensors went first
            raise Crash()
        return write(self, k, record)

    monkeypatch.setattr(RunStore, "write_record", killed)
    with pytest.raises(Crash):
        run(tmp_path / "crash", imp)
    monkeypatch.setattr(RunStore, "write_record", write)
    (folder,) = (tmp_path / "crash").iterdir()
    assert RunStore(folder).state_path(state).exists() and not (folder / "jobs" / f"{key}.json").exists()
    adapter = ToyAdapter(ToyConfig())
    resumed, _ = run(tmp_path / "crash", imp, adapter=adapter)
    done_before = 0 if key.startswith("L00") else 1  # jobs with records before the kill: level 0's dense
    assert adapter.calls == 1 + 2 * 3 - done_before  # the killed job again, and the jobs after it
    drop = lambda p: pd.read_csv(p / "results.csv").drop(columns=VOLATILE)  # noqa: E731
    pd.testing.assert_frame_equal(drop(ref), drop(resumed))
