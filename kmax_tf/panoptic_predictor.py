"""A model plus DeepLab2's eval-time geometry: photos in, maps at the photo's size out."""
import tensorflow as tf

from kmax_tf import outputs as keys
from kmax_tf.data import eval_geometry


class PanopticPredictor:
  """Model + DeepLab2-style eval preprocessing, returning maps at the image's size."""

  @classmethod
  def for_config(cls, model, config):
    """The predictor with `config`'s eval crop and resize values (unset: the crop).

    Args:
      model: a KMaXDeepLab built for `config`.
      config: ExperimentOptions (reads eval_dataset_options).
    """
    ev = config.eval_dataset_options
    crop = list(ev.crop_size)
    return cls(model, crop, list(ev.min_resize_value) or crop,
               list(ev.max_resize_value) or crop)

  def __init__(self, model, crop_size, min_resize_value, max_resize_value):
    """Creates the predictor.

    Args:
      model: a KMaXDeepLab whose post-processor outputs maps at the eval crop.
      crop_size: [h, w] eval crop in pixels.
      min_resize_value: [h, w], [n] or [] (none), as in the config's
        eval_dataset_options.
      max_resize_value: [h, w], [n] or [] (none).
    """
    self._model = model
    self.crop_size = list(crop_size)
    self.min_resize_value = list(min_resize_value) or None
    self.max_resize_value = list(max_resize_value) or None
    self._forward = tf.function(self._predict, reduce_retracing=True)

  def _predict(self, image):
    size = tf.shape(image)[:2]
    resized = eval_geometry.fitted_size(size, self.min_resize_value, self.max_resize_value)
    out = self._model(eval_geometry.to_crop(image[tf.newaxis], resized, self.crop_size),
                      training=False, output_keys=(keys.PANOPTIC_PRED, keys.INSTANCE_SCORES))
    panoptic = eval_geometry.crop_and_resize_nearest(out[keys.PANOPTIC_PRED], resized, size)
    scores = eval_geometry.crop_and_resize_nearest(out[keys.INSTANCE_SCORES], resized, size)
    return tf.cast(panoptic[0], tf.int32), scores[0]

  def __call__(self, image):
    """Predicts one image.

    Args:
      image: uint8 (or any numeric) [H, W, 3] RGB in 0..255.

    Returns:
      (panoptic int32 [H, W] numpy panoptic ids, instance scores float32
      [H, W] numpy), at the image's size.
    """
    panoptic, scores = self._forward(image)
    return panoptic.numpy(), scores.numpy()
