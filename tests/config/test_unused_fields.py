"""Fields that would change nothing are refused with the reason; every schema field is accounted for."""
import glob
import os
import re

import pytest

from kmax_tf.config import ConfigError
from kmax_tf.config import load_config
from kmax_tf.config import parse_config
from kmax_tf.config import schema
from kmax_tf.config import unused_fields
from kmax_tf.testing import deeplab2_fixtures as fx

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("text,field", [
    ("evaluator_options { eval_scales: 0.5 eval_scales: 1.0 }", "evaluator_options.eval_scales"),
    ("evaluator_options { add_flipped_images: true }", "evaluator_options.add_flipped_images"),
    ("trainer_options { loss_options { center_loss { weight: 1.0 } } }",
     "trainer_options.loss_options.center_loss"),
    ("model_options { backbone { output_stride: 16 } }", "model_options.backbone.output_stride"),
    ("evaluator_options { save_raw_predictions: true }",
     "evaluator_options.save_raw_predictions"),
])
def test_non_default_value_is_refused_with_its_reason(text, field):
  with pytest.raises(ConfigError, match=re.escape(field) + " is set but has no effect"):
    parse_config(text, source="x.textproto")


def test_pixelwise_post_processing_is_refused():
  with pytest.raises(ConfigError, match="'maskwise' post-processing only"):
    parse_config('evaluator_options { transformer_post_processing: "pixelwise" }')
  parse_config('evaluator_options { transformer_post_processing: "maskwise" }')


@pytest.mark.parametrize("text", [
    "evaluator_options { save_raw_predictions: false eval_scales: 1.0 }",
    "model_options { backbone { output_stride: 32 } }",  # the default
])
def test_defaults_are_accepted(text):
  parse_config(text)


def test_every_bundled_and_deeplab2_config_loads():
  paths = (glob.glob(os.path.join(REPO, "configs", "**", "*.textproto"), recursive=True)
           + glob.glob(os.path.join(fx.fixtures_dir(), "deeplab2_configs", "**", "*.textproto"),
                       recursive=True))
  assert len(paths) > 50
  for path in paths:
    load_config(path)


def _leaf_paths(descriptor, prefix="", seen=frozenset()):
  for field in descriptor.fields:
    path = prefix + field.name
    if field.message_type is not None and field.message_type.full_name not in seen:
      yield path, field.name
      yield from _leaf_paths(field.message_type, path + ".", seen | {field.message_type.full_name})
    else:
      yield path, field.name


def test_every_schema_field_is_read_or_listed():
  """A field nobody reads must be in NO_EFFECT (a static check over the package's source)."""
  sources = []
  for pattern in ("kmax_tf/**/*.py", "trainer.py", "export/*.py"):
    for path in glob.glob(os.path.join(REPO, pattern), recursive=True):
      if os.sep + "testing" + os.sep in path or path.endswith("unused_fields.py"):
        continue
      with open(path, encoding="utf-8") as f:
        sources.append(f.read())
  code = "\n".join(sources)
  unread = [path for path, name in _leaf_paths(schema.ExperimentOptions.DESCRIPTOR)
            if not re.search(r"(\.%s\b|[\"']%s[\"'])" % (name, name), code)]
  assert sorted(set(unread) - set(unused_fields.NO_EFFECT) - set(unused_fields.VALIDATED)) == []
  assert len(unused_fields.NO_EFFECT) == 36
