"""fairseq set up once per adapter: its config parsed from fairseq's own flags, the task with its data loaded.

Flags go through `fairseq.options.parse_args_and_arch`, exactly as `fairseq-train` would read them,
so every default of an architecture, task and criterion is fairseq's own.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from domains.nlp.config import NLPConfig
from domains.nlp.fairseq_quiet import fairseq_warnings_quiet, import_fairseq


def fairseq_argv(config: NLPConfig, data: Path) -> list[str]:
    from domains.nlp.tasks import TASKS

    b1, b2 = (float(b) for b in config.adam_betas.split(","))
    argv = [
        str(data),
        "--arch",
        config.arch,
        "--dropout",
        str(config.dropout),
        "--optimizer",
        "adam",
        "--adam-betas",
        f"({b1},{b2})",
        "--weight-decay",
        str(config.weight_decay),
        "--lr",
        str(config.lr),
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-init-lr",
        "1e-07",
        "--warmup-updates",
        str(max(1, config.warmup_updates())),
        "--clip-norm",
        str(config.clip_norm),
        "--max-tokens",
        str(config.max_tokens),
        "--max-tokens-valid",
        str(config.eval_max_tokens),
        "--update-freq",
        str(config.update_freq),
        "--max-update",
        str(config.updates()),
        "--seed",
        "0",
        "--num-workers",
        "0",
        "--dataset-impl",
        "mmap",
        "--no-progress-bar",
        "--required-batch-size-multiple",
        "1",
    ]
    argv += TASKS.get(config.task).flags(config)
    if config.resolved_device() == "cpu":
        argv.append("--cpu")
    if config.precision == "amp":
        argv.append("--amp")
    return argv


class Session:
    """fairseq's config, task (dictionaries + binarised splits) and criterion for one prepared data folder."""

    def __init__(self, config: NLPConfig, data: Path) -> None:
        import domains.nlp.models  # noqa: F401  (imports fairseq quietly, registers the small architectures)

        with fairseq_warnings_quiet():
            self._setup(config, data)

    def _setup(self, config: NLPConfig, data: Path) -> None:
        import_fairseq("fairseq.dataclass.utils")
        from fairseq import options, tasks
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf

        self.config = config
        parser = options.get_training_parser()
        options.add_generation_args(parser)  # beam search settings for the test translation
        args = options.parse_args_and_arch(parser, input_args=fairseq_argv(config, data))
        self.cfg = convert_namespace_to_omegaconf(args)
        self.task = tasks.setup_task(self.cfg.task)
        for split in ("train", "valid", "test"):
            self.task.load_dataset(split)
        self.criterion = self.task.build_criterion(self.cfg.criterion)
        self.device = torch.device(config.resolved_device())

    def build_model(self, seed: int) -> torch.nn.Module:
        from fairseq import utils

        utils.set_torch_seed(seed)
        with fairseq_warnings_quiet():
            return self.task.build_model(self.cfg.model)

    def job_cfg(self, seed: int, save_dir: str):
        """A copy of the config with this job's seed (data order, dropout) and scratch folder."""
        cfg = copy.deepcopy(self.cfg)
        cfg.common.seed = seed
        cfg.checkpoint.save_dir = save_dir
        return cfg

    def to_device(self, sample):
        from fairseq import utils

        return utils.move_to_cuda(sample, device=self.device) if self.device.type == "cuda" else sample
