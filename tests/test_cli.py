"""kmax_tf.cli: the one command-line convention every kmax_tf command follows."""
import subprocess
import sys

from absl import flags
import pytest

from kmax_tf import cli


class _Bad(ValueError):
  pass


def _command():
  values = flags.FlagValues()
  flags.DEFINE_string("config_file", None, "A file.", required=True, flag_values=values)
  flags.DEFINE_integer("steps", 3, "Steps.", flag_values=values)
  flags.DEFINE_multi_string("config_override", [], "Edits.", flag_values=values)
  seen = []

  def body(f):
    seen.append((f.config_file, f.steps, list(f.config_override)))
    if f.config_file == "bad":
      raise _Bad("config bad: field x")
    if f.config_file == "usage":
      raise cli.UsageError("--steps must be even")
    return 0

  return values, body, seen


def test_flags_are_parsed_and_reset_between_calls():
  values, body, seen = _command()
  assert cli.run(["--config_file=a", "--steps=7", "--config_override=x=1",
                  "--config_override=y=2"], values, body, doc="d") == 0
  assert cli.run(["--config_file=b"], values, body, doc="d") == 0
  assert seen == [("a", 7, ["x=1", "y=2"]), ("b", 3, [])]


@pytest.mark.parametrize("argv,message", [
    ([], "--config_file"),
    (["--config_file=a", "--stepz=2"], "stepz"),
    (["--config_file=a", "--steps=many"], "steps"),
    (["--config_file=a", "stray"], "unexpected arguments: stray"),
    (["--config_file=usage"], "--steps must be even"),
])
def test_usage_errors_exit_2_and_name_the_flag(argv, message, capsys):
  values, body, _ = _command()
  assert cli.run(argv, values, body, doc="d") == cli.USAGE_ERROR == 2
  err = capsys.readouterr().err
  assert message in err and "--help" in err


def test_input_errors_exit_1_with_the_message_and_no_traceback(capsys):
  values, body, _ = _command()
  assert cli.run(["--config_file=bad"], values, body, doc="d", input_errors=(_Bad,)) == 1
  err = capsys.readouterr().err
  assert err.strip() == "error: config bad: field x"
  # Not declared as an input error: the exception propagates (a bug, with its traceback).
  with pytest.raises(_Bad):
    cli.run(["--config_file=bad"], values, body, doc="d")


def test_help_prints_the_doc_and_the_flags(capsys):
  values, body, seen = _command()
  assert cli.run(["--help"], values, body, doc="The command's doc.") == 0
  out = capsys.readouterr().out
  assert "The command's doc." in out and "--config_file" in out and "--steps" in out
  assert not seen


def test_absl_logging_flags_are_accepted():
  values, body, seen = _command()
  assert cli.run(["--config_file=a", "--verbosity=0"], values, body, doc="d") == 0
  assert seen == [("a", 3, [])]


_LOGGING_COMMAND = """
import sys
from absl import flags, logging
from kmax_tf import cli
def body(f):
  logging.info("an info record")
  logging.warning("a warning record")
sys.exit(cli.run(sys.argv[1:], flags.FlagValues(), body, doc="d"))
"""


@pytest.mark.parametrize("argv,info_shown", [([], True), (["--verbosity=-1"], False)])
def test_info_logs_reach_stderr_unless_verbosity_lowers_them(argv, info_shown):
  # The trainer's messages ("Restored ...", "Recomputing ...") are absl INFO
  # records; absl alone shows only WARNING and above. (A child process: pytest
  # captures logging records in its own handlers.)
  done = subprocess.run([sys.executable, "-c", _LOGGING_COMMAND] + argv, capture_output=True,
                        text=True, timeout=120, check=True)
  assert ("an info record" in done.stderr) == info_shown
  assert "a warning record" in done.stderr


def test_parse_size():
  assert cli.parse_size("480x640") == (480, 640)
  assert cli.parse_size("65") == (65, 65)
  for bad in ("0x5", "axb", "1x2x3"):
    with pytest.raises(cli.UsageError, match="HxW"):
      cli.parse_size(bad)
