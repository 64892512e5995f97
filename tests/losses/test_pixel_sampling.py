"""Size-balanced Gumbel-top-k pixel sampling."""
import numpy as np
import tensorflow as tf

from kmax_tf.losses.pixel_sampling import gumbel_top_k, size_balanced_logits


def test_void_pixels_come_last_and_indices_are_distinct():
  non_void = np.ones((2, 100), np.float32)
  non_void[:, 60:] = 0
  inverse_area = np.full((2, 100), 2.0, np.float32)
  logits = size_balanced_logits(tf.constant(inverse_area), tf.constant(non_void), 1.5)
  few = gumbel_top_k(logits, 50).numpy()
  assert np.all(few < 60)
  many = gumbel_top_k(logits, 80).numpy()
  for row in many:
    assert len(set(row)) == 80 and set(range(60)) <= set(row)


def test_temperature_favours_small_masks():
  # Pixels 0..9 form a small mask (inverse area 10), pixels 10..99 a large one.
  inverse_area = np.concatenate([np.full(10, 10.0), np.full(90, 100 / 90)]).astype(np.float32)
  logits = size_balanced_logits(tf.constant(inverse_area[None].repeat(400, 0)),
                                tf.ones([400, 100]), 1.0)
  tf.random.set_seed(0)
  picks = gumbel_top_k(logits, 10).numpy()
  # T = 1: pixel weight = inverse area, 10 per small pixel vs 1.11 per large one, so both
  # masks carry equal total weight and about half of the draws are small-mask pixels.
  share = (picks < 10).mean()
  assert 0.35 < share < 0.65
  uniform = gumbel_top_k(size_balanced_logits(tf.constant(inverse_area[None].repeat(400, 0)),
                                              tf.ones([400, 100]), 0.0), 10).numpy()
  assert (uniform < 10).mean() < 0.2
