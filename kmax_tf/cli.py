"""The one way kmax_tf's commands read their command line.

Every command (trainer.py / kmax-train, kmax-predict, kmax-evaluate,
kmax-import-deeplab2, kmax-export, kmax-convert-tflite, kmax-build-tfrecords,
kmax-demo, kmax-serving-client; each also runs as `python -m <module>`) defines
absl flags on its own `flags.FlagValues` and hands its body to `run`:

  * `main(argv=None) -> int` takes the arguments without the program name
    (None: sys.argv[1:]) and returns the exit status: 0, 1 when the user's input
    is wrong (one line on stderr, no traceback), 2 for a usage error;
  * --help prints the module docstring and the command's flags;
  * absl's own flags (--verbosity, --logtostderr, ...) are accepted as under
    `absl.app.run`, and log records go through absl's handler;
  * the flags are reset after each call, so tests call main() repeatedly in one
    process, and importing a command defines no global flags.
"""
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

from absl import flags
from absl import logging

HELP_ARGS = ("-h", "--help", "--helpshort", "--helpfull")
USAGE_ERROR = 2
INPUT_ERROR = 1


class UsageError(Exception):
  """The command line is wrong (exit status 2)."""


def run(argv: Optional[Sequence[str]], flag_values: flags.FlagValues,
        body: Callable[[flags.FlagValues], Optional[int]], *, doc: str,
        input_errors: Tuple[Type[BaseException], ...] = ()) -> int:
  """Parses `argv` into `flag_values`, calls `body(flag_values)`, returns the exit status.

  Args:
    argv: arguments without the program name; None: sys.argv[1:].
    flag_values: the command's own flags.
    body: the command; its return value (None: 0) is the exit status. It may
      raise UsageError.
    doc: printed by --help above the flags (the module docstring).
    input_errors: exception types that mean the user's input is wrong: printed
      as `error: <message>` with exit status 1 instead of a traceback.
  """
  args = list(sys.argv[1:] if argv is None else argv)
  # Flags defined with required=True are checked by absl while parsing.
  program = sys.argv[0] if sys.argv and sys.argv[0] else "kmax_tf"
  if any(a in HELP_ARGS for a in args):
    print(doc)
    print(flag_values.get_help())
    return 0
  # Before parsing: absl's --verbosity sets the root logger's level only when
  # its handler is installed.
  logging.use_absl_handler()
  try:
    try:
      rest = flag_values([program] + args, known_only=True)
      # What the command does not define may be one of absl's logging flags.
      rest = flags.FLAGS(rest, known_only=False)
      if len(rest) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(rest[1:])}")
      # INFO records reach stderr unless --verbosity says otherwise, as under
      # absl.app.run (absl's own default is WARNING).
      if flags.FLAGS["verbosity"].using_default_value:
        flags.FLAGS.verbosity = 0
    except (flags.Error, UsageError) as e:
      print(f"error: {e}\n(see {program} --help)", file=sys.stderr)
      return USAGE_ERROR
    try:
      status = body(flag_values)
    except UsageError as e:
      print(f"error: {e}\n(see {program} --help)", file=sys.stderr)
      return USAGE_ERROR
    except input_errors as e:
      print(f"error: {e}", file=sys.stderr)
      return INPUT_ERROR
    return 0 if status is None else int(status)
  finally:
    # Back to the defaults (not FlagValues.unparse_flags, which logs and makes
    # later reads raise) so the next call starts clean.
    for name in list(flag_values):
      flag_values[name].unparse()


def command(flag_values: flags.FlagValues, body: Callable[[flags.FlagValues], Optional[int]],
            doc: str, input_errors: Tuple[Type[BaseException], ...] = ()
            ) -> Callable[[Optional[Sequence[str]]], int]:
  """The `main(argv=None) -> int` of a command: `run` with these arguments."""

  def main(argv: Optional[Sequence[str]] = None) -> int:
    return run(argv, flag_values, body, doc=doc, input_errors=input_errors)

  return main


def define_config_flags(flag_values: flags.FlagValues, required: bool = True) -> None:
  """--config_file and --config_override, as every command that builds a model reads them."""
  flags.DEFINE_string("config_file", None, "Experiment config (text-format ExperimentOptions).",
                      required=required, flag_values=flag_values)
  flags.DEFINE_multi_string("config_override", [],
                            "dotted.field=value changes to the config, applied in order, e.g. "
                            "train_dataset_options.batch_size=8 (repeatable).",
                            flag_values=flag_values)


def parse_size(text: str) -> Tuple[int, int]:
  """'HxW' or 'N' -> (H, W) with positive sides; UsageError otherwise."""
  parts = str(text).lower().replace(",", "x").split("x")
  try:
    size = [int(p) for p in parts]
  except ValueError:
    raise UsageError(f"expected HxW, got {text!r}") from None
  if len(size) == 1:
    size *= 2
  if len(size) != 2 or min(size) <= 0:
    raise UsageError(f"expected HxW with positive sides, got {text!r}")
  return tuple(size)
