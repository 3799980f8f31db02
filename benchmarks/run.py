"""`python -m benchmarks.run`: find lottery tickets in a domain and write the result contract.

Flags come from three dataclasses: the engine's ImpConfig and RunOptions and the chosen domain's Config, and
from the fields of every registered strategy, schedule and control (`--<name>-<field>`, see ComponentRegistry);
a preset sets their defaults and explicit flags win. `--domain all` runs each domain in turn.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass

from benchmarks.cli import OneLineParser, fail
from domains import DOMAINS, domain_names, load_adapter_class
from lth_core.adapter import Adapter
from lth_core.components import component_flags, component_params
from lth_core.config import DomainConfig, ImpConfig, RunOptions, opt
from lth_core.errors import UsageError
from lth_core.imp_runner import ImpRunner
from lth_core.presets import SMOKE_IMP, Preset, apply

PROG = "python -m benchmarks.run"


@dataclass
class Selection:
    """Which domain to run, and which preset sets the defaults of every other flag."""

    domain: str = opt("vision", f"domain to run: {', '.join(domain_names())}, or 'all' for each in turn")
    preset: str = opt("quick", "named settings of the domain (listed below with --domain D --help)")
    smoke: bool = opt(
        False,
        "a smoke of the preset: its dense network and one level of one trial, at the preset's smoke budget on "
        "generated data (its 'smoke:' line below), in minutes on a CPU; explicit flags still win",
    )


def _smoke_line(p: Preset, config: type[DomainConfig]) -> str:
    values = {**SMOKE_IMP, **config.smoke_evaluation(), **p.smoke}
    return "\n  " + " " * 24 + " smoke: " + ", ".join(f"{k}={v}" for k, v in values.items())


@dataclass
class Plan:
    """One domain's run as parsed and validated, before anything is built or written."""

    cls: type[Adapter]
    table: dict[str, str]
    preset: str
    imp: ImpConfig
    options: RunOptions
    config: DomainConfig

    def factory(self) -> functools.partial[Adapter]:
        """Picklable adapter factory: this process and every worker build the adapter through it."""
        return functools.partial(make_adapter, self.cls.domain, self.config, self.table)


def make_adapter(domain: str, config: DomainConfig, table: dict[str, str] = DOMAINS) -> Adapter:
    """The adapter of `domain` for `config` (the factory's target, so worker processes rebuild it from data)."""
    return load_adapter_class(domain, table)(config)


def parse(argv: list[str], domain: str, preset_name: str, table: dict[str, str] = DOMAINS, smoke: bool = False) -> Plan:
    """Parse and validate every flag for one domain (`--domain` itself is taken from `domain`, so 'all' works too)."""
    cls = load_adapter_class(domain, table)
    if preset_name not in cls.presets:
        raise UsageError(
            f"unknown preset {preset_name!r} for domain {domain!r}; valid choices: {', '.join(sorted(cls.presets))}"
        )
    preset = cls.presets[preset_name]
    presets_help = "\n".join(f"  {p.name:<24} {p.help}{_smoke_line(p, cls.Config)}" for p in cls.presets.values())
    parser = OneLineParser(prog=PROG, description=__doc__, epilog=f"presets of domain {domain!r}:\n{presets_help}")
    parser.add_arguments(Selection, dest="selection")
    imp_default = apply(ImpConfig(), {**preset.imp, **(SMOKE_IMP if smoke else {})})
    parser.add_arguments(ImpConfig, dest="imp", default=imp_default)
    groups = component_flags(parser, imp_default.params)
    parser.add_arguments(RunOptions, dest="options")
    smoke_values = {**cls.Config.smoke_evaluation(), **preset.smoke} if smoke else {}
    domain_default = apply(cls.Config(), {**preset.domain, **smoke_values})
    parser.add_arguments(cls.Config, dest="domain_config", default=domain_default)
    ns = parser.parse_args(argv)
    ns.imp.params = component_params(ns, groups, {ns.imp.strategy, ns.imp.schedule, *ns.imp.control_names()})
    ns.imp.validate()
    ns.domain_config.validate()
    return Plan(cls, table, preset_name, ns.imp, ns.options, ns.domain_config)


def run_plan(plan: Plan) -> str:
    factory = plan.factory()
    adapter = factory()
    try:
        runner = ImpRunner(adapter, factory, plan.imp, plan.options, preset=plan.preset, validated=True)
        path = runner.run()
    finally:
        adapter.close()
    print((path / "summary.md").read_text())
    print(f"results: {path}  (results.csv, densities.csv, summary.csv, summary.md, figure1.png, run.json)")
    return str(path)


def main(argv: list[str] | None = None, table: dict[str, str] = DOMAINS) -> int:
    """Entry point; `table` maps domain names to "module:AdapterClass" (tests pass their own)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = OneLineParser(prog=PROG, add_help=False)
    pre.add_arguments(Selection, dest="selection")
    try:
        sel = pre.parse_known_args(argv)[0].selection
        domains = domain_names(table) if sel.domain == "all" else [sel.domain]
        plans = [parse(argv, d, sel.preset, table, sel.smoke) for d in domains]  # all checked before the first writes
        for plan in plans:
            run_plan(plan)
    except UsageError as e:
        fail(str(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
