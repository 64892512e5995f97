"""export.serving_client: requests match the exported signatures; end to end over gRPC and REST.

No TensorFlow Serving binary is installable here, so the end-to-end tests run
the client against small in-process stand-ins on 127.0.0.1 that behave like
the model server where the client can tell: the gRPC one implements
tensorflow_serving's PredictionService (inputs checked against the
SignatureDef, InvalidArgument -> INVALID_ARGUMENT) and the REST one
TF Serving's `/v1/models/<name>:predict` columnar JSON ({"b64": ...} for
string inputs). Both execute the loaded SavedModel's signatures.
"""
import base64
import concurrent.futures
import http.server
import json
import os
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from kmax_tf.export import serving_client
from kmax_tf.testing import deeplab2_fixtures as fx

COCO_DIR = os.path.join(fx.fixtures_dir(), "coco_val2017_16", "val2017")
PHOTOS = [os.path.join(COCO_DIR, n) for n in ("000000037777.jpg", "000000087038.jpg")]
MODEL_NAME = "kmax"
# Shares the session's small export with the other deployment tests: one worker builds it.
pytestmark = pytest.mark.xdist_group("small_export")


# === Fast: request construction ===
def test_rest_payload_base64_and_columnar():
  signature, inputs = serving_client.request_inputs([b"\xff\xd8\xffabc", b"xyz"], pixels=False)
  payload = serving_client.rest_payload(inputs, signature)
  assert payload == {"signature_name": "serve_image_bytes", "inputs": {"image_bytes": [
      {"b64": base64.b64encode(b"\xff\xd8\xffabc").decode()},
      {"b64": base64.b64encode(b"xyz").decode()}]}}
  json.dumps(payload)


def test_grpc_request_bytes():
  signature, inputs = serving_client.request_inputs([b"a", b"bc"], pixels=False)
  request = serving_client.grpc_request(inputs, MODEL_NAME, signature)
  assert request.model_spec.name == MODEL_NAME
  assert request.model_spec.signature_name == "serve_image_bytes"
  proto = request.inputs["image_bytes"]
  assert proto.dtype == tf.string.as_datatype_enum
  assert [d.size for d in proto.tensor_shape.dim] == [2]
  assert list(proto.string_val) == [b"a", b"bc"]


def test_grpc_request_pixels_decodes_like_tf():
  encoded = serving_client.read_images([PHOTOS[0], PHOTOS[0]])
  signature, inputs = serving_client.request_inputs(encoded, pixels=True)
  request = serving_client.grpc_request(inputs, MODEL_NAME, signature)
  assert signature == "serving_default"
  proto = request.inputs["images"]
  assert proto.dtype == tf.uint8.as_datatype_enum
  expected = tf.io.decode_image(encoded[0], channels=3).numpy()
  np.testing.assert_array_equal(tf.make_ndarray(proto), np.stack([expected] * 2))


def test_pixels_rejects_mixed_sizes():
  with pytest.raises(ValueError, match="one size"):
    serving_client.request_inputs(serving_client.read_images(PHOTOS), pixels=True)


def test_parse_rest_outputs_dtypes():
  out = serving_client.parse_rest_outputs({"panoptic_pred": [[[1, 2]]],
                                           "segment_scores": [[0.5]], "num_segments": [1]})
  assert out["panoptic_pred"].dtype == np.int32
  assert out["segment_scores"].dtype == np.float32


def test_model_server_config_example_parses():
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.config import model_server_config_pb2  # pylint: disable=g-import-not-at-top
  with open(os.path.join(fx.repo_root(), "export", "models.config")) as f:
    config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
  (model,) = config.model_config_list.config
  assert model.name == MODEL_NAME and model.model_platform == "tensorflow"


# === Large: against the exported model ===
def _signature_defs(saved_model_dir):
  """SignatureDefs as TF Serving reads them (saved_model.pb, tag 'serve')."""
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  (meta_graph,) = [m for m in proto.meta_graphs if "serve" in m.meta_info_def.tags]
  return meta_graph.signature_def


def _check_against_signature(request, signature_def):
  assert set(request.inputs) == set(signature_def.inputs)
  for name, tensor in request.inputs.items():
    info = signature_def.inputs[name]
    assert tensor.dtype == info.dtype, name
    sent = [d.size for d in tensor.tensor_shape.dim]
    expected = [d.size for d in info.tensor_shape.dim]
    assert not info.tensor_shape.unknown_rank and len(sent) == len(expected), (sent, expected)
    assert all(e in (-1, s) for s, e in zip(sent, expected)), (sent, expected)


@pytest.mark.parametrize("pixels", [False, True])
def test_requests_match_exported_signature(small_export, pixels):
  signature_defs = _signature_defs(small_export)
  photos = PHOTOS if not pixels else [PHOTOS[0]] * 2
  signature, inputs = serving_client.request_inputs(serving_client.read_images(photos), pixels)
  request = serving_client.grpc_request(inputs, MODEL_NAME, signature)
  _check_against_signature(request, signature_defs[signature])
  payload = serving_client.rest_payload(inputs, signature)
  assert set(payload["inputs"]) == set(signature_defs[signature].inputs)
  expected_outputs = {"panoptic_pred", "semantic_pred", "instance_pred", "instance_scores",
                      "segment_ids", "segment_class_ids", "segment_scores", "segment_areas",
                      "num_segments", "image_sizes"}
  assert set(signature_defs[signature].outputs) == expected_outputs
  float_outputs = {k for k, v in signature_defs[signature].outputs.items()
                   if v.dtype == tf.float32.as_datatype_enum}
  assert float_outputs == set(serving_client.FLOAT_OUTPUTS)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
  """PredictionService.Predict over a loaded SavedModel (the parts the client uses)."""

  def __init__(self, loaded, signature_defs):
    self.loaded = loaded
    self.signature_defs = signature_defs

  def Predict(self, request, context):  # pylint: disable=invalid-name
    if request.model_spec.name != MODEL_NAME:
      context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}")
    name = request.model_spec.signature_name or "serving_default"
    signature_def = self.signature_defs[name]
    kwargs = {}
    for key, tensor in request.inputs.items():
      info = signature_def.inputs.get(key)
      if info is None or tensor.dtype != info.dtype:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {key}: wrong name or dtype")
      kwargs[key] = tf.constant(tf.make_ndarray(tensor), tf.dtypes.as_dtype(info.dtype))
    try:
      outputs = self.loaded.signatures[name](**kwargs)
    except tf.errors.InvalidArgumentError as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key, value in outputs.items():
      response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response


def _rest_handler(loaded, signature_defs):
  class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
      pass

    def do_POST(self):  # pylint: disable=invalid-name
      if self.path != f"/v1/models/{MODEL_NAME}:predict":
        return self._reply(404, {"error": "not found"})
      body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
      name = body.get("signature_name", "serving_default")
      kwargs = {}
      for key, value in body["inputs"].items():
        dtype = tf.dtypes.as_dtype(signature_defs[name].inputs[key].dtype)
        if dtype == tf.string:
          value = [base64.b64decode(v["b64"]) for v in value]
        kwargs[key] = tf.constant(value, dtype)
      try:
        outputs = loaded.signatures[name](**kwargs)
      except tf.errors.InvalidArgumentError as e:
        return self._reply(400, {"error": e.message})
      self._reply(200, {"outputs": {k: v.numpy().tolist() for k, v in outputs.items()}})

    def _reply(self, code, obj):
      data = json.dumps(obj).encode()
      self.send_response(code)
      self.send_header("Content-Type", "application/json")
      self.send_header("Content-Length", str(len(data)))
      self.end_headers()
      self.wfile.write(data)

  return Handler


@pytest.fixture(scope="module")
def servers(small_export):
  loaded = tf.saved_model.load(small_export)
  signature_defs = _signature_defs(small_export)
  grpc_server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2), options=[
      ("grpc.max_receive_message_length", 1 << 30), ("grpc.max_send_message_length", 1 << 30)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      _PredictionService(loaded, signature_defs), grpc_server)
  grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
  grpc_server.start()
  rest_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                _rest_handler(loaded, signature_defs))
  thread = threading.Thread(target=rest_server.serve_forever, daemon=True)
  thread.start()
  yield {"loaded": loaded, "grpc": f"127.0.0.1:{grpc_port}",
         "rest": f"127.0.0.1:{rest_server.server_address[1]}"}
  rest_server.shutdown()
  rest_server.server_close()
  grpc_server.stop(None)


def _direct(loaded):
  encoded = serving_client.read_images(PHOTOS)
  out = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant(encoded))
  return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("mode", ["grpc", "rest"])
def test_client_end_to_end(servers, small_export, mode, tmp_path, capsys):
  metadata = os.path.join(small_export, "assets", "kmax_metadata.json")
  argv = [f"--server={servers[mode]}", f"--metadata={metadata}",
          f"--output={tmp_path / 'out.npz'}"] + [f"--image={p}" for p in PHOTOS]
  assert serving_client.main(argv + (["--rest"] if mode == "rest" else [])) == 0
  with np.load(tmp_path / "out.npz") as saved:
    result = {k: saved[k] for k in saved.files}
  expected = _direct(servers["loaded"])
  assert set(result) == set(expected)
  for key, value in expected.items():
    assert result[key].dtype == value.dtype, key
    np.testing.assert_allclose(result[key], value, rtol=0, atol=1e-6 if mode == "rest" else 0)
  printed = capsys.readouterr().out
  assert f"{PHOTOS[1]}: 480x640" in printed


def test_client_pixels_and_bad_request_over_grpc(servers):
  result = serving_client.request(servers["grpc"], [PHOTOS[0]], pixels=True)
  expected = servers["loaded"].signatures["serving_default"](
      images=tf.io.decode_image(tf.io.read_file(PHOTOS[0]), channels=3)[tf.newaxis])
  np.testing.assert_array_equal(result["panoptic_pred"], expected["panoptic_pred"].numpy())
  request = serving_client.grpc_request({"image_bytes": np.array([b"junk"], object)}, MODEL_NAME,
                                        "serve_image_bytes")
  with pytest.raises(grpc.RpcError) as error:
    serving_client.grpc_predict(servers["grpc"], request, 60)
  assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "not a JPEG or PNG" in error.value.details()
  # Still serving.
  again = serving_client.request(servers["grpc"], [PHOTOS[0]], pixels=True)
  np.testing.assert_array_equal(again["panoptic_pred"], result["panoptic_pred"])


def test_client_module_entry_point_rest(servers):
  proc = subprocess.run(
      [sys.executable, "-m", "export.serving_client", f"--server={servers['rest']}", "--rest",
       f"--image={PHOTOS[0]}"], cwd=fx.repo_root(), capture_output=True, text=True, timeout=600,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"{PHOTOS[0]}: 230x352" in proc.stdout


def test_warmup_requests_match_signatures(small_export, servers):
  """assets.extra/tf_serving_warmup_requests: one valid request per signature."""
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=g-import-not-at-top
  signature_defs = _signature_defs(small_export)
  path = os.path.join(small_export, "assets.extra", "tf_serving_warmup_requests")
  seen = []
  for record in tf.data.TFRecordDataset(path):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    request = log.predict_log.request
    _check_against_signature(request, signature_defs[request.model_spec.signature_name])
    kwargs = {k: tf.constant(tf.make_ndarray(v), tf.dtypes.as_dtype(v.dtype))
              for k, v in request.inputs.items()}
    servers["loaded"].signatures[request.model_spec.signature_name](**kwargs)
    seen.append(request.model_spec.signature_name)
  assert sorted(seen) == sorted(k for k in signature_defs if not k.startswith("__"))
