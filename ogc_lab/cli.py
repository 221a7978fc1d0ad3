"""The ``ogc-lab`` command line (also ``python -m ogc_lab``): train, sweep, report, collect, noise, fetch.

Bad input of any kind ends with one line ``ogc-lab: error: ...`` on stderr and exit code 2, and
nothing that already exists is overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .recipes import FIELD_HELP, FIELDS, RECIPES, Config, as_published, get_recipe

PROG = "ogc-lab"
USAGE_ERROR = 2


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises instead of printing usage and exiting, so main() owns the exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# ---------------------------------------------------------------- config from arguments


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """--recipe, --config, one --<field> option per Config field, and --set key=value."""
    parser.add_argument("--recipe", help=f"named preset: {', '.join(RECIPES)}")
    parser.add_argument("--config", type=Path, help="a config.json or result.json to start from")
    group = parser.add_argument_group("config fields (override the recipe; see ogc_lab.recipes.Config)")
    defaults = Config()
    for name in FIELDS:
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else json.dumps(default, default=str)
        shown = "none" if default is None else shown
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"field_{name}", metavar="VALUE",
                           help=f"{FIELD_HELP[name]} (default: {shown})".replace("%", "%%"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any field, e.g. --set loss_params='{\"gamma\": 0.5}'")


def _given(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields the command line sets: every --set, and every field option."""
    sets: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        sets[key.strip().replace("-", "_")] = value
    return sets, {n: getattr(args, f"field_{n}") for n in FIELDS if getattr(args, f"field_{n}") is not None}


def kept_fields(args: argparse.Namespace) -> set[str]:
    """The fields a loss's published settings must leave alone: those the command line sets, or every field of a
    --config file (taken as written)."""
    sets, options = _given(args)
    return set(FIELDS) if args.config is not None else {*sets, *options}


def config_from_args(args: argparse.Namespace) -> Config:
    """The recipe (or --config file) with every --set, then every given field option, applied.

    Each --set is applied and checked even where a field option overrides it, so no bad value passes unseen.
    The loss's published settings are not applied here: ``train`` and ``sweep`` apply them with ``kept_fields``.
    """
    sets, options = _given(args)
    if args.config is not None:
        if args.recipe is not None:
            raise UsageError("give --recipe or --config, not both")
        base = _load_config(args.config)
    elif args.recipe is None:
        raise UsageError(f"give --recipe (one of {', '.join(RECIPES)}) or --config FILE")
    else:
        base = get_recipe(args.recipe)
    return base.replace(**sets).replace(**options)


def _load_config(path: Path) -> Config:
    """The config of a config.json (a Config as a JSON object) or of a result.json (its 'config' entry)."""
    from .files import read_json

    data = read_json(path)
    config = data.get("config", data) if isinstance(data, dict) else data
    try:
        return Config.from_dict(config)
    except ValueError as err:
        raise ValueError(f"config file {str(path)!r}: {err}") from None


def _out_dir(text: str) -> Path:
    """An --out folder: any path but the current folder (a run's files would land among the caller's)."""
    if not text.strip() or Path(text).resolve() == Path.cwd().resolve():
        raise argparse.ArgumentTypeError(
            f"{text!r} names the current folder; allowed: any other folder, e.g. runs/my-run")
    return Path(text)


# ---------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from .train import dist_info, train

    config = as_published(config_from_args(args), keep=kept_fields(args))
    result = train(config, args.out, resume=args.resume, progress=False if args.no_progress else None)
    if dist_info().is_main:  # under torchrun every rank returns the result; one prints it
        print(f"{args.out}: last-10 mean test accuracy {result['last10_test_acc']:.4f}, "
              f"best {result['best_test_acc']:.4f}, {result['wall_time_s']:.1f} s")
    return 0


# ---------------------------------------------------------------- sweep


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"expected a comma-separated list, got {text!r}")
    return items


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import SweepError, default_jobs, grid, run_sweep

    try:
        seeds = [int(s) for s in _csv_list(args.seeds)]
    except ValueError:
        raise UsageError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    runs = grid(config_from_args(args), _csv_list(args.losses), _csv_list(args.noises), seeds, args.out,
                keep=kept_fields(args))
    try:
        run_sweep(runs, jobs=args.jobs or default_jobs(), progress=True)
    except SweepError:
        return 1  # each failure was printed as it happened
    return 0


# ---------------------------------------------------------------- report and noise


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    print(write_report(args.dir))
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from .runs import copy_records

    written = copy_records(args.src, args.dst)
    for path in written:
        print(path)
    print(f"{len(written)} record files written under {args.dst} (checkpoints stay in {args.src})")
    return 0


def cmd_noise(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .noise import check_noise_spec

    check_noise_spec(args.noise)
    split = load_dataset(args.dataset, root=args.data_root, download=args.download, seed=args.seed,
                         subset=args.subset)
    noisy = split.noisy_labels(args.noise, args.seed)
    print(f"{split.name}: {len(split.train_y)} training labels, classes {', '.join(split.classes)}")
    print(noisy.report)
    if args.json:
        print(json.dumps(noisy.report.to_dict()))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .download import REMOTE_FILES
    from .registry import check_names

    check_names("data set to fetch", args.datasets, REMOTE_FILES)
    for name in args.datasets:
        split = load_dataset(name, root=args.data_root, download=True)
        print(f"{name}: {len(split.train_y)} training and {len(split.test_y)} test images, checked; {split.source}")
    return 0


# ---------------------------------------------------------------- parser and entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Optimized Gradient Clipping (OGC) for learning with noisy labels")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run")
    _add_config_options(train)
    train.add_argument("--out", type=_out_dir, required=True, help="run folder (must not hold a finished run)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    sweep = sub.add_parser("sweep", help="train a grid of losses x noises x seeds (resumable)")
    _add_config_options(sweep)
    sweep.add_argument("--losses", required=True, help="comma-separated, e.g. ce,ce+ogc")
    sweep.add_argument("--noises", required=True, help="comma-separated, e.g. symmetric:0.4,asym-cifar10:0.4")
    sweep.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    sweep.add_argument("--out", type=_out_dir, required=True, help="grid root: OUT/<loss>/<noise>/seed<k>")
    sweep.add_argument("--jobs", type=int, help="runs at once (default: one per GPU, else one per CPU core)")
    sweep.set_defaults(func=cmd_sweep)

    report = sub.add_parser("report", help="tables and plots of a sweep folder")
    report.add_argument("dir", type=Path)
    report.set_defaults(func=cmd_report)

    collect = sub.add_parser("collect", help="copy the runs' records (not checkpoints) to a folder to commit")
    collect.add_argument("src", type=Path, help="a run or grid folder")
    collect.add_argument("dst", type=Path, help="where the same layout of result.json, epochs.csv, steps.csv goes")
    collect.set_defaults(func=cmd_collect)

    noise = sub.add_parser("noise", help="apply a noise spec to a data set and print what was realised")
    noise.add_argument("--dataset", required=True)
    noise.add_argument("--noise", required=True)
    noise.add_argument("--seed", type=int, default=0)
    noise.add_argument("--data-root", default="data")
    noise.add_argument("--download", action="store_true")
    noise.add_argument("--subset", type=int)
    noise.add_argument("--json", action="store_true", help="also print the report as JSON")
    noise.set_defaults(func=cmd_noise)

    fetch = sub.add_parser("fetch", help="download data sets into --data-root and check them (md5, label alignment)")
    fetch.add_argument("datasets", nargs="+", metavar="DATASET",
                       help="e.g. cifar10 cifar10n (cifar10n also fetches cifar10)")
    fetch.add_argument("--data-root", default="data")
    fetch.set_defaults(func=cmd_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad input, with one line on stderr)."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (UsageError, ValueError, OSError) as err:
        print(f"{PROG}: error: {' '.join(str(err).split())}", file=sys.stderr)  # always one line
        return USAGE_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
