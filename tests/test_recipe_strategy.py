"""Recipe: a new pruning strategy with a hyperparameter of its own, in this one file and nowhere else.

Registering the class is all it takes: its field is the flag `--jitter-magnitude-noise` of
`python -m benchmarks.run` (with help), a preset can set it, and its value joins the run's identity hash.
"""

import json
from dataclasses import dataclass

import pytest
import torch
from toy_adapter import ToyAdapter

from benchmarks.run import main
from lth_core.components import flag
from lth_core.config import opt
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.presets import Preset
from lth_core.strategies import STRATEGIES, PruneStep, Strategy, prune_lowest

STEPS: list[tuple[float, PruneStep, Mask]] = []  # what each call of the strategy saw and drew


@STRATEGIES.register("jitter_magnitude")
@dataclass(frozen=True)
class JitterMagnitude(Strategy):
    """Magnitude pruning on |w| blurred by seeded noise: how sharp the magnitude criterion must be."""

    noise: float = opt(0.0, "noise added to |w| before ranking, in units of the tensor's mean |w| (0 = magnitude)")

    def validate(self) -> None:
        if self.noise < 0:
            raise UsageError(f"{flag('jitter_magnitude', 'noise')} {self.noise} must be >= 0")

    def __call__(self, step: PruneStep) -> Mask:
        g = torch.Generator().manual_seed(step.seed)
        scores = {}
        for n in step.mask:
            w = step.weights[n].detach().abs().cpu()
            scores[n] = w + self.noise * w.mean() * torch.randn(w.shape, generator=g)
        mask = prune_lowest(step, scores)
        STEPS.append((self.noise, step, mask))
        return mask


class JitterToy(ToyAdapter):
    presets = {
        **ToyAdapter.presets,
        "jitter": Preset(
            "jitter",
            "the toy with blurred magnitude pruning",
            imp={
                "levels": 1,
                "trials": 1,
                "strategy": "jitter_magnitude",
                "params": {"jitter_magnitude": {"noise": 2.5}},
            },
        ),
    }


TABLE = {"toy": "test_recipe_strategy:JitterToy"}


def run(out, *flags: str) -> dict:
    STEPS.clear()
    main(
        [
            "--domain",
            "toy",
            "--levels",
            "1",
            "--trials",
            "1",
            "--controls",
            "",
            "--out",
            str(out),
            "--noprogress",
            *flags,
        ],
        TABLE,
    )
    (folder,) = out.iterdir()
    return json.loads((folder / "run.json").read_text())


def test_the_parameter_is_a_flag_with_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--domain", "toy", "--help"], TABLE)
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--jitter-magnitude-noise float" in text and "in units of the tensor's mean |w|" in text


def test_its_value_changes_the_masks_and_the_hash(tmp_path):
    plain = run(tmp_path / "plain")
    sharp = run(tmp_path / "sharp", "--strategy", "jitter_magnitude")
    ((_, step, sharp_mask),) = STEPS
    assert sharp_mask.kept() == STRATEGIES.get("magnitude_layerwise")(step).kept()
    assert all(torch.equal(sharp_mask[n], STRATEGIES.get("magnitude_layerwise")(step)[n]) for n in sharp_mask)
    blurred = run(tmp_path / "blurred", "--strategy", "jitter_magnitude", "--jitter-magnitude-noise", "2.5")
    ((noise, step, blurred_mask),) = STEPS
    assert noise == 2.5 and blurred_mask.kept() == sharp_mask.kept()  # same counts, other entries
    assert any(not torch.equal(blurred_mask[n], sharp_mask[n]) for n in sharp_mask)
    assert len({plain["config_hash"], sharp["config_hash"], blurred["config_hash"]}) == 3
    assert blurred["identity"]["imp"]["params"] == {"jitter_magnitude": {"noise": 2.5}}
    assert sharp["identity"]["imp"]["params"] == {"jitter_magnitude": {"noise": 0.0}}
    assert "params" not in plain["identity"]["imp"]  # a run without parameters keeps its old identity


def test_a_preset_sets_it_and_a_flag_overrides_the_preset(tmp_path):
    preset = run(tmp_path / "preset", "--preset", "jitter")
    assert preset["identity"]["imp"]["params"] == {"jitter_magnitude": {"noise": 2.5}} and STEPS[0][0] == 2.5
    flagged = run(tmp_path / "flag", "--preset", "jitter", "--jitter-magnitude-noise", "1")
    assert flagged["identity"]["imp"]["params"] == {"jitter_magnitude": {"noise": 1.0}}
    assert flagged["config_hash"] != preset["config_hash"]


@pytest.mark.parametrize(
    "flags,expected",
    [
        (
            ["--jitter-magnitude-noise", "-1", "--strategy", "jitter_magnitude"],
            "--jitter-magnitude-noise -1.0 must be >= 0",
        ),
        (["--jitter-magnitude-noise", "1"], "--jitter-magnitude-noise is set but 'jitter_magnitude' is not the chosen"),
    ],
)
def test_bad_values_are_one_line_exit_2_and_nothing_written(tmp_path, capsys, flags, expected):
    with pytest.raises(SystemExit) as e:
        main(["--domain", "toy", "--out", str(tmp_path / "out"), "--noprogress", *flags], TABLE)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists()
