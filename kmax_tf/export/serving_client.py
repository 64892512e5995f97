r"""Client for a kMaX-DeepLab SavedModel served by TensorFlow Serving.

  kmax-serving-client --server=localhost:8500 --image=photo.jpg
  kmax-serving-client --rest --server=localhost:8501 --image=photo.jpg

(also `python -m export.serving_client ...`).
gRPC mode sends a PredictRequest (tensorflow-serving-api); --rest posts JSON
to TF Serving's REST API (`/v1/models/<model>:predict`, images base64-encoded).
By default the encoded files go to the `serve_image_bytes` signature; with
--pixels the client decodes them and sends uint8 [B, H, W, 3] to
`serving_default` (same-size images only). The result (maps padded to the
largest image, -1 outside each image, and the segment table) is printed and,
with --output, saved as .npz. Pass --metadata=<saved_model>/assets/
kmax_metadata.json to print class names.
"""
import base64
import json
import sys
import urllib.error
import urllib.request
from typing import Dict, Optional, Sequence

from absl import flags
import numpy as np

from kmax_tf import cli

BYTES_SIGNATURE = "serve_image_bytes"
PIXELS_SIGNATURE = "serving_default"
BYTES_INPUT = "image_bytes"
PIXELS_INPUT = "images"
# Output dtypes: the REST API returns JSON numbers.
FLOAT_OUTPUTS = ("instance_scores", "segment_scores")


def read_images(paths):
  """The files' bytes (encoded JPEG/PNG), one entry per path."""
  encoded = []
  for path in paths:
    with open(path, "rb") as f:
      encoded.append(f.read())
  return encoded


def decode_pixels(encoded):
  """Encoded images -> uint8 [B, H, W, 3] (decoded with TF, as the server would).

  Args:
    encoded: B encoded images (bytes) of one size.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images = [tf.io.decode_image(e, channels=3, expand_animations=False).numpy() for e in encoded]
  if len({im.shape for im in images}) != 1:
    raise ValueError("--pixels needs images of one size; send files of different sizes "
                     "without --pixels (serve_image_bytes)")
  return np.stack(images)


def request_inputs(encoded, pixels):
  """(signature name, {input name: numpy array}) for the chosen signature.

  Args:
    encoded: B encoded images (bytes).
    pixels: send decoded uint8 [B, H, W, 3] RGB to serving_default instead of
      the bytes (object [B]) to serve_image_bytes.
  """
  if pixels:
    return PIXELS_SIGNATURE, {PIXELS_INPUT: decode_pixels(encoded)}
  return BYTES_SIGNATURE, {BYTES_INPUT: np.array(encoded, dtype=object)}


def grpc_request(inputs, model_name, signature_name):
  """tensorflow_serving PredictRequest for `inputs` ({name: numpy array}).

  Args:
    inputs: input name -> numpy array (object arrays are sent as strings).
    model_name: the served model's name.
    signature_name: the SavedModel signature to call.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=g-import-not-at-top
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature_name
  for name, value in inputs.items():
    dtype = tf.string if value.dtype == object else tf.as_dtype(value.dtype)
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype, shape=value.shape))
  return request


def grpc_predict(server, request, timeout):
  """Sends `request` over gRPC; returns output name -> numpy array.

  Args:
    server: "host:port" of TF Serving's gRPC endpoint.
    request: a PredictRequest (grpc_request).
    timeout: seconds to wait for the response.
  """
  import grpc  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  options = [("grpc.max_send_message_length", 1 << 30),
             ("grpc.max_receive_message_length", 1 << 30)]
  with grpc.insecure_channel(server, options=options) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.Predict(request, timeout)
  return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def rest_payload(inputs, signature_name):
  """TF Serving REST body (columnar `inputs` format; strings as {"b64": ...}).

  Args:
    inputs: input name -> numpy array (object arrays hold bytes).
    signature_name: the SavedModel signature to call.
  """
  body = {}
  for name, value in inputs.items():
    if value.dtype == object:
      body[name] = [{"b64": base64.b64encode(v).decode("ascii")} for v in value]
    else:
      body[name] = value.tolist()
  return {"signature_name": signature_name, "inputs": body}


def parse_rest_outputs(outputs):
  """REST `outputs` JSON -> numpy arrays with the signature's dtypes.

  Args:
    outputs: the response's "outputs" dict (output name -> nested lists).

  Returns:
    output name -> float32 array for scores, int32 for maps, ids and counts.
  """
  return {name: np.asarray(value, np.float32 if name in FLOAT_OUTPUTS else np.int32)
          for name, value in outputs.items()}


def rest_predict(server, model_name, payload, timeout):
  """Posts `payload` to TF Serving's REST API; returns output name -> numpy array.

  Args:
    server: "host:port" of the REST endpoint.
    model_name: the served model's name.
    payload: the request body (rest_payload).
    timeout: seconds to wait for the response.
  """
  url = f"http://{server}/v1/models/{model_name}:predict"
  data = json.dumps(payload).encode("utf-8")
  request = urllib.request.Request(url, data=data,
                                   headers={"Content-Type": "application/json"})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      result = json.loads(response.read())
  except urllib.error.HTTPError as e:
    detail = e.read().decode("utf-8", "replace")
    raise RuntimeError(f"REST request failed ({e.code}): {detail}") from None
  return parse_rest_outputs(result["outputs"])


def describe(result, paths, metadata=None):
  """Human-readable lines: per image its size and segments.

  Args:
    result: the served outputs: image_sizes [B, 2], num_segments [B] and the
      segment_* tables [B, N].
    paths: the B image paths, in request order.
    metadata: kmax_metadata.json contents for class names, or None.
  """
  names = (metadata or {}).get("class_names")
  lines = []
  for i, path in enumerate(paths):
    height, width = result["image_sizes"][i]
    count = int(result["num_segments"][i])
    lines.append(f"{path}: {height}x{width}, {count} segments")
    for j in range(count):
      class_id = int(result["segment_class_ids"][i, j])
      label = names[class_id] if names and 0 <= class_id < len(names) else f"class {class_id}"
      lines.append(f"  id {int(result['segment_ids'][i, j]):7d}  {label:24s} "
                   f"score {float(result['segment_scores'][i, j]):.3f}  "
                   f"area {int(result['segment_areas'][i, j])}")
  return lines


def request(server: str, image_paths: Sequence[str], model_name: str = "kmax",
            rest: bool = False, pixels: bool = False, timeout: float = 120.0
            ) -> Dict[str, np.ndarray]:
  """Sends the images to the served model; returns its outputs as numpy arrays.

  Args:
    server: "host:port" (gRPC, usually port 8500; REST 8501).
    image_paths: JPEG/PNG files sent as one batch.
    model_name: the served model's name.
    rest: use the REST API instead of gRPC.
    pixels: send decoded pixels to serving_default (same-size images only).
    timeout: seconds per request.
  """
  signature, inputs = request_inputs(read_images(image_paths), pixels)
  if rest:
    return rest_predict(server, model_name, rest_payload(inputs, signature), timeout)
  return grpc_predict(server, grpc_request(inputs, model_name, signature), timeout)


_FLAGS = flags.FlagValues()
flags.DEFINE_string("server", None, "host:port (gRPC, default port 8500; REST 8501).",
                    required=True, flag_values=_FLAGS)
flags.DEFINE_multi_string("image", None, "JPEG/PNG file (repeat for a batch).", required=True,
                          flag_values=_FLAGS)
flags.DEFINE_string("model_name", "kmax", "Served model name.", flag_values=_FLAGS)
flags.DEFINE_bool("rest", False, "Use the REST API instead of gRPC.", flag_values=_FLAGS)
flags.DEFINE_bool("pixels", False, "Send decoded uint8 pixels to serving_default.",
                  flag_values=_FLAGS)
flags.DEFINE_string("metadata", None, "kmax_metadata.json for class names.", flag_values=_FLAGS)
flags.DEFINE_string("output", None, "Save all outputs to this .npz.", flag_values=_FLAGS)
flags.DEFINE_float("timeout", 120.0, "Seconds per request.", flag_values=_FLAGS)


def _client_command(f: flags.FlagValues) -> int:
  result = request(f.server, f.image, f.model_name, f.rest, f.pixels, f.timeout)
  metadata = None
  if f.metadata:
    with open(f.metadata) as meta:
      metadata = json.load(meta)
  print("\n".join(describe(result, f.image, metadata)))
  if f.output:
    np.savez_compressed(f.output, **result)
    print(f"outputs saved to {f.output}")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """`kmax-serving-client`; see kmax_tf.cli for argv and the exit status.

  Args:
    argv: command line including the program name; None reads sys.argv.
  """
  import grpc  # pylint: disable=g-import-not-at-top
  return cli.run(argv, _FLAGS, _client_command, doc=__doc__,
                 input_errors=(ValueError, OSError, RuntimeError, grpc.RpcError))


if __name__ == "__main__":
  sys.exit(main())
