"""Strict loading of experiment config textprotos, with command-line overrides.

Config files use the protobuf text format of kmax_tf.ExperimentOptions
(experiment.proto), which reads DeepLab2's kMaX-DeepLab configs unchanged.
Parsing is strict: an unknown or misspelt field, a repeated singular field or a
malformed value is a ConfigError naming file, line, column and field, because a
silently ignored typo would train a different model than the one intended. For
the same reason a field of DeepLab2's schema that kmax_tf does not implement
(unused_fields.NO_EFFECT) is an error when it is given a non-default value.
"""

import difflib
import os
import re
from typing import Iterable, List, Optional, Sequence, Union

from google.protobuf import descriptor as descriptor_lib
from google.protobuf import descriptor_pb2
from google.protobuf import text_format

from kmax_tf.config import schema
from kmax_tf.config import unused_fields
from kmax_tf.config.config_error import ConfigError

_UNKNOWN_FIELD = re.compile(
    r'Message type "(?P<type>[\w.]+)" has no field named "(?P<field>[^"]+)"')
_COMPONENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:\[(?P<index>\d+)\])?$")
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_TRUE = ("true", "t", "1", "yes", "y", "on")
_FALSE = ("false", "f", "0", "no", "n", "off")
_FieldDescriptor = descriptor_lib.FieldDescriptor


def load_config(path: Union[str, os.PathLike], overrides: Sequence[str] = ()):
  """Reads an ExperimentOptions textproto strictly and applies `overrides`.

  Args:
    path: Text-format file of kmax_tf.ExperimentOptions (local path, or any
      URL tf.io.gfile understands, e.g. gs://...).
    overrides: "dotted.field.path=value" strings applied in order after
      parsing, e.g. "train_dataset_options.batch_size=2",
      "train_dataset_options.crop_size=257,257" (repeated: comma-separated,
      empty value clears), "model_options.max_deeplab.auxiliary_low_level[0]
      .channels_project=48" (index into repeated messages, index == length
      appends), "model_options.kmax_deeplab={num_mask_slots: 64}" (message:
      text format).

  Returns:
    The parsed kmax_tf.ExperimentOptions message.

  Raises:
    ConfigError: unknown/misspelt field, malformed value or bad override.
  """
  path = os.fspath(path)
  return parse_config(_read_text(path), source=path, overrides=overrides)


def parse_config(text: str, source: str = "<string>",
                 overrides: Sequence[str] = ()):
  """Like load_config, for config text; `source` names it in errors."""
  config = schema.ExperimentOptions()
  _parse_into(text, config, source)
  apply_overrides(config, overrides)
  unused_fields.check_fields_have_effect(config, source)
  return config


def apply_overrides(message, overrides: Iterable[str]) -> None:
  """Applies "dotted.field.path=value" overrides to `message` in place."""
  if isinstance(overrides, str):
    raise TypeError("overrides must be a sequence of strings, not one string")
  for override in overrides:
    _apply_override(message, override)


def config_to_text(message) -> str:
  """Formats `message` as a textproto that load_config reads back."""
  return text_format.MessageToString(message)


def unresolved_placeholders(message) -> List[str]:
  """Lists "field.path: value" of string fields still holding ${...}.

  DeepLab2 configs ship placeholders such as "${TRAIN_SET}"; they parse, but a
  run using them should stop early with this list.
  """
  found = []
  _collect_placeholders(message, "", found)
  return found


def _read_text(path: str) -> str:
  if "://" in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.io.gfile.GFile(path, "r") as f:
      return f.read()
  with open(path, "r", encoding="utf-8") as f:
    return f.read()


def _parse_into(text: str, message, source: str) -> None:
  try:
    text_format.Parse(text, message, allow_unknown_extension=False,
                      allow_field_number=False,
                      descriptor_pool=schema.POOL)
  except text_format.ParseError as e:
    raise ConfigError(_describe_parse_error(e, source)) from None


def _describe_parse_error(error: text_format.ParseError, source: str) -> str:
  detail = str(error)
  # ParseError texts start with "line:column : "; we put the location first in
  # the usual file:line:column form instead.
  detail = re.sub(r"^\d+(:\d+)? : ", "", detail)
  line, column = error.GetLine(), error.GetColumn()
  location = source
  if line is not None:
    location += f":{line}"
    if column is not None:
      location += f":{column}"
  match = _UNKNOWN_FIELD.search(detail)
  if match:
    descriptor = schema.POOL.FindMessageTypeByName(match.group("type"))
    field = match.group("field")
    detail = (f"unknown field '{field}' in {descriptor.name}"
              f"{_field_hint(descriptor, field)}")
  return f"{location}: {detail}"


def _reserved_names(descriptor) -> List[str]:
  proto = descriptor_pb2.DescriptorProto()
  descriptor.CopyToProto(proto)
  return list(proto.reserved_name)


def _field_hint(descriptor, name: str) -> str:
  if name in _reserved_names(descriptor):
    return (f" ('{name}' is a DeepLab2 option of a meta-architecture other "
            "than kMaX-DeepLab, which kmax_tf does not implement)")
  names = [f.name for f in descriptor.fields]
  close = difflib.get_close_matches(name, names, n=3, cutoff=0.7)
  if close:
    return "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
  return "; valid fields: " + ", ".join(sorted(names))


def _apply_override(root, override: str) -> None:
  if not isinstance(override, str) or "=" not in override:
    raise ConfigError(
        f"override {override!r}: expected 'dotted.field.path=value'")
  path, value = override.split("=", 1)
  path = path.strip()
  components = path.split(".")
  message = root
  walked = root.DESCRIPTOR.name
  for position, component in enumerate(components):
    is_last = position == len(components) - 1
    match = _COMPONENT.match(component)
    if not match:
      raise ConfigError(
          f"override {override!r}: malformed path component {component!r} "
          f"(expected 'field' or 'field[index]')")
    name, index = match.group("name"), match.group("index")
    field = message.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
      where = walked
      if walked != message.DESCRIPTOR.name:
        where += f" ({message.DESCRIPTOR.name})"
      raise ConfigError(
          f"override {override!r}: unknown field '{name}' in {where}"
          f"{_field_hint(message.DESCRIPTOR, name)}")
    repeated = _is_repeated(field)
    is_message = field.type == _FieldDescriptor.TYPE_MESSAGE
    if index is not None and not (repeated and is_message):
      raise ConfigError(
          f"override {override!r}: '{name}' is not a repeated message field, "
          "so it cannot be indexed")
    walked = f"{walked}.{component}"
    if is_last:
      _assign(message, field, index, value, override)
      return
    if not is_message:
      raise ConfigError(
          f"override {override!r}: '{name}' is a scalar field, it has no "
          f"sub-field '{components[position + 1]}'")
    if repeated:
      if index is None:
        raise ConfigError(
            f"override {override!r}: '{name}' is repeated; select an element "
            f"with {name}[index]")
      message = _element(message, name, int(index), override)
    else:
      message = getattr(message, name)


def _is_repeated(field) -> bool:
  # FieldDescriptor.label is deprecated in recent protobuf releases.
  if hasattr(field, "is_repeated"):
    return field.is_repeated
  return field.label == _FieldDescriptor.LABEL_REPEATED


def _element(message, name: str, index: int, override: str):
  container = getattr(message, name)
  if index < len(container):
    return container[index]
  if index == len(container):
    return container.add()
  raise ConfigError(
      f"override {override!r}: index {index} out of range for '{name}' "
      f"({len(container)} element(s); use {len(container)} to append)")


def _assign(message, field, index: Optional[str], value: str,
            override: str) -> None:
  name = field.name
  try:
    if field.type == _FieldDescriptor.TYPE_MESSAGE:
      if _is_repeated(field) and index is None:
        raise ConfigError(
            f"override {override!r}: '{name}' is a repeated message; set one "
            f"element with {name}[index]=... or {name}[index].field=...")
      target = (_element(message, name, int(index), override)
                if index is not None else getattr(message, name))
      target.Clear()
      text = value.strip()
      if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
      _parse_into(text, target, f"override {override!r}")
      # An empty value ("field={}") still marks the message as set.
      target.SetInParent()
    elif _is_repeated(field):
      container = getattr(message, name)
      items = [v.strip() for v in value.split(",")] if value.strip() else []
      converted = [_convert(field, v, override) for v in items]
      del container[:]
      container.extend(converted)
    else:
      setattr(message, name, _convert(field, value.strip(), override))
  except (TypeError, ValueError) as e:
    if isinstance(e, ConfigError):
      raise
    raise ConfigError(
        f"override {override!r}: cannot set '{name}': {e}") from None


def _convert(field, text: str, override: str):
  kind = field.cpp_type
  try:
    if kind == _FieldDescriptor.CPPTYPE_STRING:
      if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
      if field.type == _FieldDescriptor.TYPE_BYTES:
        return text.encode("utf-8")
      return text
    if kind == _FieldDescriptor.CPPTYPE_BOOL:
      lowered = text.lower()
      if lowered in _TRUE:
        return True
      if lowered in _FALSE:
        return False
      raise ValueError(f"{text!r} is not a boolean (true/false)")
    if kind in (_FieldDescriptor.CPPTYPE_FLOAT,
                _FieldDescriptor.CPPTYPE_DOUBLE):
      return float(text)
    if kind == _FieldDescriptor.CPPTYPE_ENUM:
      enum_value = field.enum_type.values_by_name.get(text)
      return enum_value.number if enum_value is not None else int(text)
    return int(text)
  except ValueError as e:
    raise ConfigError(
        f"override {override!r}: cannot set '{field.name}' "
        f"({_type_name(field)}) to {text!r}: {e}") from None


def _type_name(field) -> str:
  names = {
      _FieldDescriptor.CPPTYPE_STRING: "string",
      _FieldDescriptor.CPPTYPE_BOOL: "bool",
      _FieldDescriptor.CPPTYPE_FLOAT: "float",
      _FieldDescriptor.CPPTYPE_DOUBLE: "double",
      _FieldDescriptor.CPPTYPE_ENUM: "enum",
  }
  return names.get(field.cpp_type, "integer")


def _collect_placeholders(message, prefix: str, found: List[str]) -> None:
  for field, value in message.ListFields():
    path = f"{prefix}{field.name}"
    if field.type == _FieldDescriptor.TYPE_MESSAGE:
      items = value if _is_repeated(field) else [value]
      for i, item in enumerate(items):
        suffix = f"[{i}]" if _is_repeated(field) else ""
        _collect_placeholders(item, f"{path}{suffix}.", found)
    elif field.cpp_type == _FieldDescriptor.CPPTYPE_STRING:
      items = value if _is_repeated(field) else [value]
      for item in items:
        if isinstance(item, str) and _PLACEHOLDER.search(item):
          found.append(f"{path}: {item}")
