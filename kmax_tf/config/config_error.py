"""Error raised for invalid kmax_tf experiment configurations.

"""


class ConfigError(ValueError):
  """An experiment config (file, override or setting) is invalid.

  A ValueError subclass, so callers that only know "bad value" still catch it.
  Messages name where the problem is (file:line:column, or the override) and
  what is wrong.
  """
