"""ConfigError is what callers catch for any invalid configuration."""
import pytest

from kmax_tf import config as kconfig
from kmax_tf.config.config_error import ConfigError


def test_config_error_is_a_value_error_exported_by_the_package():
  assert kconfig.ConfigError is ConfigError
  assert issubclass(ConfigError, ValueError)


def test_every_config_failure_raises_it():
  with pytest.raises(ConfigError):
    kconfig.parse_config("no_such_field: 1")
  with pytest.raises(ConfigError):
    kconfig.parse_config("", overrides=["no_such_field=1"])
  with pytest.raises(ConfigError):
    kconfig.resolve_kmax_settings(kconfig.parse_config(""))
