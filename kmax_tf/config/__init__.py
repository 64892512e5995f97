"""kmax_tf.config: experiment config schema, strict loading, kMaX settings.

kMaX-DeepLab: Qihang Yu et al., "k-means Mask Transformer", ECCV 2022 (arXiv:2207.04044).
"""

from kmax_tf.config.config_error import ConfigError
from kmax_tf.config.kmax_settings import KMAX_DATASET_DEFAULTS
from kmax_tf.config.kmax_settings import KMaXSettings
from kmax_tf.config.kmax_settings import pixel_encoder_name
from kmax_tf.config.kmax_settings import resolve_kmax_settings
from kmax_tf.config.loader import apply_overrides
from kmax_tf.config.loader import config_to_text
from kmax_tf.config.loader import load_config
from kmax_tf.config.loader import parse_config
from kmax_tf.config.loader import unresolved_placeholders
from kmax_tf.config.schema import ExperimentOptions
from kmax_tf.config.schema import get_message_class
