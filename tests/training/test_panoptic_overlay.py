"""Tests of kmax_tf.training.panoptic_overlay (TensorBoard overlays of kMaX-DeepLab outputs)."""
import numpy as np

from kmax_tf.training import panoptic_overlay

COLORS = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]


def test_colorize_uses_class_colours_and_separates_instances():
  panoptic = np.array([[[2000, 2000, 1001, 1002]]], np.int32)
  colors = panoptic_overlay.colorize(panoptic, COLORS, 1000).numpy()
  np.testing.assert_array_equal(colors[0, 0, 0], [0, 255, 0])
  assert colors[0, 0, 2, 0] != colors[0, 0, 3, 0]  # two instances of class 1
  assert colors.min() >= 0 and colors.max() <= 255


def test_overlay_grid_layout_and_borders():
  images = np.full([2, 4, 6, 3], 100, np.float32)
  predicted = np.zeros([2, 4, 6], np.int32)
  predicted[:, :, 3:] = 1001
  grid = panoptic_overlay.overlay_grid(images, predicted, COLORS, 1000, predicted).numpy()
  assert grid.shape == (2, 4, 18, 3)
  np.testing.assert_allclose(grid[:, :, :6], 100 / 255.0)
  np.testing.assert_allclose(grid[0, 0, 6 + 2], 1.0)  # border pixel is white
  assert grid.min() >= 0.0 and grid.max() <= 1.0
  np.testing.assert_allclose(grid[:, :, 6:12], grid[:, :, 12:])


def test_overlay_resizes_predictions_to_the_image():
  images = np.zeros([1, 8, 8, 3], np.float32)
  predicted = np.full([1, 4, 4], 2000, np.int32)
  out = panoptic_overlay.overlay(images, predicted, COLORS, 1000).numpy()
  assert out.shape == (1, 8, 8, 3)
  np.testing.assert_allclose(out[0, 3, 3], np.array([0, 255, 0]) * 0.55 / 255, rtol=1e-6)
