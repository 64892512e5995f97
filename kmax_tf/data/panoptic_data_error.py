"""The error kmax_tf's data tools raise for missing, corrupt or invalid data.

A ValueError subclass, so callers that only know "bad value" still catch it.
Messages name the file (and record or segment) at fault and, where there is
one, the command that fixes it.
"""


class PanopticDataError(ValueError):
  """Dataset files, records or annotations are missing, corrupt or invalid."""
