"""`gsasrec` command line: one module per command group, each holding its parser, its handler and its
examples. Handlers parse, call the library and print; user errors (GSASRecError) become one line on
stderr and exit code 2.

    train.py      gsasrec train
    tune.py       gsasrec tune
    evaluate.py   gsasrec evaluate
    data.py       gsasrec data ml1m | import | steam | gowalla | stats
    serving.py    gsasrec recommend | serve | export
    runs.py       gsasrec runs list | show
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from gsasrec import native
from gsasrec.errors import GSASRecError

USER_ERROR, INTERRUPTED = 2, 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # --help and argument errors end here, before torch loads
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        native.enabled()  # a bad GSASREC_NATIVE is refused before any work, not deep inside a run
        code = args.handler(args)  # None, or an exit code of its own (an interrupted run: 130)
    except GSASRecError as error:
        print(f"gsasrec: error: {error}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("gsasrec: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader of our output has gone (`gsasrec recommend ... | head`): what it read is what it
        # wanted. Point stdout at /dev/null so that the exit's own flush fails silently too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code or 0


def entry() -> None:
    """The `gsasrec` executable and `python -m gsasrec`: main(), then exit with its code.

    gc.freeze() before the exit: Python's last collections would otherwise walk every object that
    importing torch made, 0.2-0.5 s of a `gsasrec evaluate` of about 3 (benchmarks/RESULTS.md). Nothing is
    left undone: files are closed and atexit handlers run as before; only those walks are skipped, the
    memory going back to the system with the process."""
    code = main()
    gc.freeze()
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    from gsasrec.cli import data, evaluate, runs, serving, train, tune

    parser = argparse.ArgumentParser(
        prog="gsasrec", formatter_class=formatter,
        description="gSASRec and SASRec sequential recommenders: train, evaluate, recommend, serve.",
        epilog="run 'gsasrec COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"gsasrec {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (train, tune, evaluate, data, serving, runs):
        group.register(commands)
    refuse_abbreviations(parser)
    return parser


def refuse_abbreviations(parser: argparse.ArgumentParser) -> None:
    """No prefix matching of long options, in every command: with it, `train --dataset garden` was taken
    as --datasets-dir garden without a word."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                refuse_abbreviations(command)


# --- shared by the command groups ---------------------------------------------------------------------------

def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_datasets_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--datasets-dir", metavar="DIR",
                        help="folder holding dataset folders (default: $GSASREC_DATASETS, else ./datasets)")


# runtime.PRECISION_CHOICES, spelled out here: --help must not wait for torch (tests/test_cli.py compares them)
PRECISION_CHOICES = ("auto", "fp32", "bf16")


def add_common(parser: argparse.ArgumentParser) -> None:
    """--datasets-dir and --device, for every command that runs the model."""
    add_datasets_dir(parser)
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                        help="where the model runs (default: auto, CUDA when available)")


def whole_number(low: int, high: int | None = None, expected: str = "a whole number >= 1"):
    """An argparse type: an int in low..high, else an error saying `expected`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0, expected="a whole number >= 0")
port_number = whole_number(1, 65535, "a port number 1-65535")
seed_number = whole_number(0, 2**63 - 1, "a whole number 0..2^63-1")  # what torch's generators take


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def launch_ranks(args: argparse.Namespace, max_restarts: int = 0) -> int | None:
    """With --nproc N > 1 outside torchrun: this same command on N local ranks through torchrun, and its exit
    code; None when the command runs here (no --nproc, or already a rank of torchrun)."""
    if not (args.nproc and args.nproc > 1) or "WORLD_SIZE" in os.environ:
        return None
    from gsasrec.distributed import launch
    from gsasrec.runtime import resolve_device

    resolve_device(args.device)  # no CUDA, a bad device: one line here, not one per rank from torchrun
    argv = without_option(without_option(args.argv, "--nproc"), "--max-restarts")
    return launch(args.nproc, argv, max_restarts)


def without_option(argv: list[str], name: str) -> list[str]:
    """argv without `name VALUE` / `name=VALUE`."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == name:
            skip = True
        elif not word.startswith(name + "="):
            kept.append(word)
    return kept


def version() -> str:
    from gsasrec import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
