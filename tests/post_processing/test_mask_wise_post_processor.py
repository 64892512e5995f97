"""Parity of MaskWisePostProcessor with DeepLab2's kMaX mask-wise post-processor.

References: the DeepLab2 parity fixtures (README sections 2 and 3); the small
synthetic cases below check rules the fixtures do not reach (stuff classes
split over several slots, images without any confident slot).
"""
import os

import numpy as np
import pytest
import tensorflow as tf

from kmax_tf import outputs
from kmax_tf.post_processing.mask_wise_post_processor import MaskWisePostProcessor
from kmax_tf.testing import deeplab2_fixtures

# Runs again in CI with the other oneDNN setting (.ci/run).
pytestmark = pytest.mark.kernels

COCO_THINGS = list(range(1, 81))
# evaluator_options of the COCO and Cityscapes kMaX R50 configs (README section 3).
SETTINGS = {
    "coco": dict(thing_class_threshold=0.7, stuff_class_threshold=0.5, overlap_threshold=0.8,
                 thing_area_limit=400, stuff_area_limit=6400, pixel_confidence_threshold=0.4,
                 reorder_class_weight=1.0, reorder_mask_weight=1.0),
    "cityscapes_thresholds": dict(
        thing_class_threshold=0.5, stuff_class_threshold=0.3, overlap_threshold=0.9,
        thing_area_limit=256, stuff_area_limit=2048, pixel_confidence_threshold=0.4,
        reorder_class_weight=1.0, reorder_mask_weight=0.0),
}
INT_MAPS = (outputs.PANOPTIC_PRED, outputs.INSTANCE_PRED, outputs.SEMANTIC_PRED)
SCORE_MAPS = (outputs.INSTANCE_SCORES, outputs.SEMANTIC_SCORES)
# The scores are softmax probabilities in [0, 1] computed with the same TF ops as
# DeepLab2 (measured difference: exactly 0). 1e-6 leaves room only for a
# different softmax kernel (float32 rounding of values <= 1), not for any
# different pixel or slot choice, whose scores differ by far more.
SCORE_ATOL = 1e-6


def _coco_processor(size, **settings):
  return MaskWisePostProcessor(thing_class_ids=COCO_THINGS, label_divisor=256,
                               ignore_label=0, output_size=size, **settings)


def _inputs(mask_logits, class_logits):
  return {outputs.PIXEL_SPACE_MASK_LOGITS: mask_logits,
          outputs.TRANSFORMER_CLASS_LOGITS: class_logits}


def _assert_same(result, expected):
  for key in INT_MAPS:
    actual = result[key].numpy()
    assert actual.dtype == np.int32, key
    assert actual.shape == expected[key].shape, key
    n_diff = int(np.sum(actual != expected[key]))
    assert n_diff == 0, f"{key}: {n_diff} pixels differ"
  for key in SCORE_MAPS:
    actual = result[key].numpy()
    assert actual.dtype == np.float32, key
    np.testing.assert_allclose(actual, expected[key], rtol=0, atol=SCORE_ATOL, err_msg=key)


@pytest.fixture(scope="module")
def postproc_npz():
  return np.load(os.path.join(deeplab2_fixtures.parity_dir(), "postprocessor",
                              "postproc_coco_000000037777.npz"))


@pytest.fixture(scope="module")
def forward_npz():
  return deeplab2_fixtures.forward_fixture("coco_r50")


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_postprocessor_fixture(postproc_npz, setting):
  npz = postproc_npz
  processor = _coco_processor((641, 641), **SETTINGS[setting])
  result = processor(_inputs(npz["input/pixel_space_mask_logits"],
                             npz["input/transformer_class_logits"]))
  expected = {
      outputs.PANOPTIC_PRED: npz[f"{setting}/panoptic_pred"],
      outputs.INSTANCE_PRED: npz[f"{setting}/instance_pred"],
      outputs.SEMANTIC_SCORES: npz[f"{setting}/semantic_scores"],
      outputs.INSTANCE_SCORES: npz["both/instance_scores"],
      outputs.SEMANTIC_PRED: npz["both/semantic_pred"],
  }
  _assert_same(result, expected)
  # The fixture is only informative if segments survive the thresholds.
  assert len(np.unique(expected[outputs.PANOPTIC_PRED])) >= 10


def test_forward_fixture_coco_r50(forward_npz):
  npz = forward_npz
  # coco_r50 is the one forward fixture storing both post-processor inputs in
  # full (the other models keep only a sample of the mask logits).
  for key in (outputs.PIXEL_SPACE_MASK_LOGITS, outputs.TRANSFORMER_CLASS_LOGITS):
    assert f"out/{key}" in npz.files
  processor = _coco_processor((257, 257), **SETTINGS["coco"])
  result = processor(_inputs(npz["out/pixel_space_mask_logits"],
                             npz["out/transformer_class_logits"]))
  _assert_same(result, {k: npz[f"out/{k}"] for k in INT_MAPS + SCORE_MAPS})


def _second_image(postproc_npz):
  """A 65x65 input with many confident segments, to stack with the forward one."""
  mask_logits = postproc_npz["input/pixel_space_mask_logits"][:, ::2, ::2][:, 15:80, 15:80]
  return mask_logits, postproc_npz["input/transformer_class_logits"]


def test_batch_equals_single_images_and_dynamic_batch_function(forward_npz, postproc_npz):
  first = (forward_npz["out/pixel_space_mask_logits"], forward_npz["out/transformer_class_logits"])
  second = _second_image(postproc_npz)
  processor = _coco_processor((257, 257), **SETTINGS["coco"])
  singles = [processor(_inputs(*pair)) for pair in (first, second)]
  assert len(np.unique(singles[1][outputs.PANOPTIC_PRED].numpy())) >= 4
  stacked = [np.concatenate([first[i], second[i]]) for i in range(2)]
  batched = processor(_inputs(*stacked))

  @tf.function(input_signature=[tf.TensorSpec([None, None, None, 128], tf.float32),
                                tf.TensorSpec([None, 128, 134], tf.float32)])
  def graph_fn(mask_logits, class_logits):
    return processor(_inputs(mask_logits, class_logits))

  in_graph = graph_fn(*stacked)
  # Integer maps are identical. Scores are probabilities, whose last bit depends
  # on where a row sits in the tensor for some kernels (TensorFlow's own CPU
  # softmax: up to 1.5e-8 measured between the batch and the single image):
  # SCORE_ATOL, as for DeepLab2's scores.
  for key in INT_MAPS + SCORE_MAPS:
    same = (np.testing.assert_array_equal if key in INT_MAPS else
            lambda a, b, k: np.testing.assert_allclose(a, b, rtol=0, atol=SCORE_ATOL, err_msg=k))
    for b in range(2):
      same(batched[key].numpy()[b], singles[b][key].numpy()[0], key)
    same(in_graph[key].numpy(), batched[key].numpy(), key)
    assert in_graph[key].shape == (2, 257, 257)


def test_get_config_round_trip(forward_npz):
  processor = MaskWisePostProcessor(
      thing_class_ids=range(11, 19), label_divisor=1000, ignore_label=255,
      output_size=(257, 257), name="pp", **SETTINGS["cityscapes_thresholds"])
  clone = MaskWisePostProcessor.from_config(processor.get_config())
  assert clone.get_config() == processor.get_config()
  inputs = _inputs(forward_npz["out/pixel_space_mask_logits"],
                   forward_npz["out/transformer_class_logits"][..., -20:])
  a, b = processor(inputs), clone(inputs)
  for key in a:
    np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def _synthetic(slot_maps, slot_classes, num_classes=134, class_logit=10.0):
  """One image: slot s wins (logit 20) on the pixels where slot_maps == s."""
  slot_maps = np.asarray(slot_maps)
  num_slots = len(slot_classes)
  mask_logits = np.where(slot_maps[..., None] == np.arange(num_slots), 20.0, 0.0)
  class_logits = np.zeros([num_slots, num_classes + 1])
  for s, c in enumerate(slot_classes):
    class_logits[s, num_classes if c is None else c] = class_logit
  return (mask_logits[None].astype(np.float32), class_logits[None].astype(np.float32))


def test_stuff_area_is_summed_over_slots_of_one_class():
  # COCO class indices: 0..79 things (ids 1..80), 80.. stuff (ids 81..).
  # Slots 0 and 1 predict stuff index 80 (id 81) with 8 pixels each: together
  # 16 >= limit 10, so both stay. Slot 2 (stuff id 82, 8 pixels) is removed.
  # Slot 3 is a thing (id 1) with 8 pixels: above its limit 6. Slot 4 is a
  # thing (id 2) with 4 pixels: removed. Slot 5 is void-class: never pasted.
  slot_map = np.array([[0, 0, 0, 0, 1, 1, 1, 1],
                       [0, 0, 0, 0, 1, 1, 1, 1],
                       [2, 2, 2, 2, 3, 3, 3, 3],
                       [2, 2, 2, 2, 3, 3, 3, 3],
                       [4, 4, 4, 4, 5, 5, 5, 5]])
  mask_logits, class_logits = _synthetic(slot_map, [80, 80, 81, 0, 1, None])
  processor = _coco_processor((5, 8), thing_area_limit=6, stuff_area_limit=10)
  result = processor(_inputs(mask_logits, class_logits))
  panoptic = result[outputs.PANOPTIC_PRED].numpy()[0]
  instance = result[outputs.INSTANCE_PRED].numpy()[0]
  # Equal scores keep slot order, so slot s is pasted at position s (id s + 1).
  np.testing.assert_array_equal(panoptic[:2, :4], 81 * 256)
  np.testing.assert_array_equal(panoptic[:2, 4:], 81 * 256)
  np.testing.assert_array_equal(panoptic[2:4, :4], 0)
  np.testing.assert_array_equal(panoptic[2:4, 4:], 1 * 256 + 4)
  np.testing.assert_array_equal(panoptic[4], 0)
  np.testing.assert_array_equal(instance[2:4, 4:], 4)
  # instance_pred is not filtered: the removed thing keeps its id, void reads 1.
  np.testing.assert_array_equal(instance[4, :4], 5)
  np.testing.assert_array_equal(instance[4, 4:], 1)
  # semantic_pred ignores thresholds; the void-class slot shows its best
  # non-void class (index 0 -> id 1).
  semantic = result[outputs.SEMANTIC_PRED].numpy()[0]
  np.testing.assert_array_equal(semantic[4], [2, 2, 2, 2, 1, 1, 1, 1])


def test_overlapping_mask_is_dropped():
  # Two slots share column 2 (both probabilities 0.5 > 0.4). Slot 0 is pasted
  # first (6 pixels); slot 1 covers 4 pixels of which 2 are free (50% < 80%),
  # so it is dropped and its free pixels stay void.
  mask_logits = np.full([1, 2, 4, 3], -20.0, np.float32)
  mask_logits[0, :, :3, 0] = 20.0
  mask_logits[0, 0, 2:4, 1] = 20.0
  mask_logits[0, 1, 2:4, 1] = 20.0
  class_logits = np.zeros([1, 3, 135], np.float32)
  class_logits[0, 0, 0] = 12.0
  class_logits[0, 1, 1] = 10.0
  class_logits[0, 2, 134] = 10.0
  processor = _coco_processor((2, 4), thing_area_limit=0, stuff_area_limit=0)
  panoptic = processor(_inputs(mask_logits, class_logits))[outputs.PANOPTIC_PRED].numpy()[0]
  np.testing.assert_array_equal(panoptic, [[257, 257, 257, 0], [257, 257, 257, 0]])


def test_no_confident_slot_gives_empty_result():
  slot_map = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
  mask_logits, class_logits = _synthetic(slot_map, [3, 90], class_logit=0.5)
  processor = _coco_processor((2, 4))
  result = processor(_inputs(mask_logits, class_logits))
  np.testing.assert_array_equal(result[outputs.PANOPTIC_PRED].numpy(), 0)
  np.testing.assert_array_equal(result[outputs.INSTANCE_PRED].numpy(), 1)
  # DeepLab2's empty result zeroes the instance scores too.
  np.testing.assert_array_equal(result[outputs.INSTANCE_SCORES].numpy(), 0.0)
  np.testing.assert_array_equal(result[outputs.SEMANTIC_SCORES].numpy(), 0.0)
  np.testing.assert_array_equal(result[outputs.SEMANTIC_PRED].numpy()[0],
                                [[4, 4, 91, 91], [4, 4, 91, 91]])


def _two_mask_logits(seed, height=24, width=32, num_slots=12):
  """Logits where many pixels sit in two binary masks (two slots near 0.5 each)
  and slots overlap enough to be dropped, at 1/4 of the output resolution."""
  rng = np.random.default_rng(seed)
  h, w = height // 4 + 1, width // 4 + 1
  mask_logits = rng.normal(0.0, 1.0, [1, h, w, num_slots]).astype(np.float32)
  rows, cols = np.mgrid[:h, :w]
  for _ in range(num_slots):
    a, b = rng.integers(num_slots, size=2)
    r0, c0 = rng.integers(h), rng.integers(w)
    region = (abs(rows - r0) <= rng.integers(1, 4)) & (abs(cols - c0) <= rng.integers(1, 5))
    mask_logits[0, region, a] += 12.0
    mask_logits[0, region, b] += 12.0 + rng.normal(0.0, 0.05)
  class_logits = rng.normal(0.0, 1.0, [1, num_slots, 7]).astype(np.float32)
  class_logits[0, np.arange(num_slots), rng.integers(6, size=num_slots)] += 6.0
  return mask_logits, class_logits


def test_two_mask_paste_equals_slot_by_slot_paste(monkeypatch):
  """The slot-count paste (threshold >= 1/3) against the per-slot canvas loop,
  which is the reference the DeepLab2 fixtures above were first matched with."""
  from kmax_tf.post_processing import mask_wise_post_processor as module  # pylint: disable=g-import-not-at-top
  settings = dict(thing_class_ids=[0, 1, 2], label_divisor=256, ignore_label=6,
                  output_size=[24, 32], thing_area_limit=3, stuff_area_limit=6,
                  pixel_confidence_threshold=0.4)
  paired_pixels = dropped = 0
  for seed in range(12):
    mask_logits, class_logits = _two_mask_logits(seed)
    inputs = _inputs(mask_logits, class_logits)
    fast = MaskWisePostProcessor(**settings)(inputs)
    with monkeypatch.context() as patch:
      patch.setattr(module, "TWO_MASK_THRESHOLD", 2.0)
      loop = MaskWisePostProcessor(**settings)(inputs)
    for key in fast:
      np.testing.assert_array_equal(fast[key].numpy(), loop[key].numpy(),
                                    err_msg=f"seed {seed}: {key}")
    logits = tf.compat.v1.image.resize_bilinear(mask_logits, [24, 32], align_corners=True)
    probs = tf.nn.softmax(logits).numpy()
    paired_pixels += int(np.sum(np.sum(probs > 0.4, axis=-1) == 2))
    dropped += int(np.sum(fast[outputs.PASTED_SLOT_PANOPTIC_IDS].numpy() == 6 * 256))
  # The comparison is only informative if pixels in two masks and dropped slots occur.
  assert paired_pixels > 200 and dropped > 12, (paired_pixels, dropped)


def test_confidence_of_permuted_class_logits_is_bit_identical():
  # 64 slots hold the same 134 thing/stuff logits in 64 different orders (void,
  # the last channel, stays last and wins): every slot must get exactly the same
  # confidence, on any kernel, and its own best non-void class.
  rng = np.random.RandomState(7)
  row = rng.randn(135).astype(np.float32) * 4
  row[-1] = row.max() + 1.0
  order = [np.concatenate([rng.permutation(134), [134]]) for _ in range(64)]
  logits = np.stack([row[o] for o in order])[np.newaxis]
  processor = _coco_processor((4, 4))
  class_pred, confidence, _, _, _ = processor._class_predictions(tf.constant(logits))
  confidence = confidence.numpy()[0]
  assert len(set(confidence.tolist())) == 1, sorted(set(confidence.tolist()))
  for slot, o in enumerate(order):
    assert class_pred.numpy()[0, slot] == np.argmax(row[o][:134])
  expected = np.exp(np.sort(row)[-2] - row.max()) / np.exp(row - row.max()).sum()
  np.testing.assert_allclose(confidence[0], expected, rtol=1e-6)
