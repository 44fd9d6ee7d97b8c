"""Writes the fuzz targets' seed corpora under corpus/<target>/: small valid files of each format
and slightly broken ones, so every fuzzer starts inside the parser's interesting paths. The files
are committed; rerun this (python3 tests/fuzz/make_corpus.py, standard library only) after
changing it. Two small PyTorch-written fixtures from tests/fixtures join the safetensors seeds."""
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
ITEM = {"F32": ("<f", 4), "F64": ("<d", 8), "I32": ("<i", 4), "I64": ("<q", 8), "BOOL": ("<?", 1)}


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(name, dtype, shape, values)], values flat; returns the file's bytes as spool
    and the Python writers lay them out (header padded with spaces to 8 bytes)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, values in tensors:
        fmt, size = ITEM[dtype]
        data = b"".join(struct.pack(fmt, v) for v in values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def raw_header(text, data=b""):
    text = text.encode()
    return struct.pack("<Q", len(text)) + text + data


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors_seeds():
    t = "safetensors"
    write(t, "f32_matrix", safetensors([("w", "F32", [2, 3], [0.5, -1, 2, 3, 4, 1e-3])],
                                       {"note": "seed"}))
    write(t, "every_dtype", safetensors([
        ("a", "F64", [2], [1.0, -2.0]), ("b", "I32", [3], [1, -2, 3]),
        ("c", "I64", [1, 2], [7, 2**40]), ("d", "BOOL", [4], [True, False, True, True]),
        ("scalar", "F32", [], [3.0]), ("empty", "F32", [0, 4], [])]))
    write(t, "unpadded_header", safetensors([("x", "I64", [2], [1, 2])], pad=False))
    write(t, "nan_inf", safetensors([("x", "F32", [3], [float("nan"), float("inf"), 1.0])]))
    good = safetensors([("w", "F32", [2, 2], [1, 2, 3, 4])])
    write(t, "truncated_data", good[:-3])
    write(t, "header_longer_than_file", struct.pack("<Q", 1 << 40) + good[8:])
    write(t, "shape_overflows", raw_header(
        '{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
    write(t, "bytes_wrap", raw_header(
        '{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}'))
    write(t, "offsets_reversed", raw_header(
        '{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', b"\0" * 8))
    write(t, "offsets_overlap", raw_header(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12))
    write(t, "negative_dim", raw_header(
        '{"x":{"dtype":"I32","shape":[-1,4],"data_offsets":[0,16]}}', b"\0" * 16))
    write(t, "unknown_dtype", raw_header(
        '{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4))
    write(t, "metadata_not_strings", raw_header(
        '{"__metadata__":{"a":1,"b":[1]},"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}',
        b"\0" * 4))
    write(t, "duplicate_name", raw_header(
        '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
        '"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8))
    for name in ("cross_entropy.safetensors", "gpt_small_batch.safetensors"):
        shutil.copy(os.path.join(FIXTURES, name), os.path.join(HERE, "corpus", t, name))


def checkpoint(meta=None, drop=(), changes=None):
    """A checkpoint as tools/train.cpp's save_checkpoint writes it, for the fuzz target's model
    (Linear 4 -> 3 under AdamW: parameter 0 the weight [3, 4], parameter 1 the bias [3])."""
    m = {"format": "spool-checkpoint-1", "model": "mlp", "step": "5", "seed": "1",
         "batch": "32", "lr": '{"lr":0.001}', "rng_seed": "1", "rng_offset": "640"}
    m.update(meta or {})
    w = [0.1 * i for i in range(12)]
    b = [0.5, -0.5, 0.25]
    tensors = [("model.weight", "F32", [3, 4], w), ("model.bias", "F32", [3], b),
               ("optimizer.0.exp_avg", "F32", [3, 4], w), ("optimizer.1.exp_avg", "F32", [3], b),
               ("optimizer.0.exp_avg_sq", "F32", [3, 4], [x * x for x in w]),
               ("optimizer.1.exp_avg_sq", "F32", [3], [x * x for x in b]),
               ("optimizer.step", "I64", [], [5])]
    tensors = [x for x in tensors if x[0] not in drop]
    for name, new in (changes or {}).items():
        tensors = [new if x[0] == name else x for x in tensors]
    return safetensors(tensors, {k: v for k, v in m.items() if v is not None})


def checkpoint_seeds():
    t = "checkpoint"
    write(t, "valid", checkpoint())
    write(t, "negative_step", checkpoint({"step": "-1"}))
    write(t, "step_not_a_number", checkpoint({"step": "5e3"}))
    write(t, "seed_too_big", checkpoint({"rng_seed": "18446744073709551616"}))
    write(t, "no_format", checkpoint({"format": None}))
    write(t, "optimizer_index_not_a_number",
          checkpoint(changes={"optimizer.1.exp_avg": ("optimizer.x.exp_avg", "F32", [3], [0] * 3)}))
    write(t, "optimizer_index_out_of_range",
          checkpoint(changes={"optimizer.1.exp_avg": ("optimizer.7.exp_avg", "F32", [3], [0] * 3)}))
    write(t, "optimizer_wrong_shape",
          checkpoint(changes={"optimizer.0.exp_avg": ("optimizer.0.exp_avg", "F32", [4, 3],
                                                      [0] * 12)}))
    write(t, "optimizer_step_negative",
          checkpoint(changes={"optimizer.step": ("optimizer.step", "I64", [], [-3])}))
    write(t, "optimizer_step_float",
          checkpoint(changes={"optimizer.step": ("optimizer.step", "F64", [], [float("nan")])}))
    write(t, "no_optimizer_step", checkpoint(drop=("optimizer.step",)))


def preference_seeds():
    t = "preferences"
    pairs = [{"prompt": f"Question {i}: the capital of France is", "chosen": " Paris.",
              "rejected": " Pairs."} for i in range(11)]
    write(t, "valid", "".join(json.dumps(p) + "\n" for p in pairs))
    write(t, "unicode_and_escapes", json.dumps(
        {"prompt": "caf\u00e9 \\ \"quoted\" \U0001F600", "chosen": "\u00e9\t\n",
         "rejected": "e", "extra": [1, {"x": None}]}) + "\n\n" + json.dumps(
        {"prompt": "a", "chosen": "b", "rejected": "c"}, ensure_ascii=False) + "\r\n")
    write(t, "missing_field", '{"prompt": "a", "chosen": "b"}\n')
    write(t, "not_a_string", '{"prompt": "a", "chosen": 1, "rejected": "c"}\n')
    write(t, "not_an_object", '["prompt", "chosen", "rejected"]\n')
    write(t, "malformed_json", '{"prompt": "a", "chosen": "b", "rejected": "c"\n')
    write(t, "empty_completion", '{"prompt": "a", "chosen": "", "rejected": "c"}\n')
    write(t, "prompt_fills_context", json.dumps({"prompt": "x" * 128, "chosen": "b",
                                                 "rejected": "c"}) + "\n")
    write(t, "bad_utf8", b'{"prompt": "a\xff\xfe", "chosen": "b", "rejected": "c"}\n')
    write(t, "lone_surrogate", '{"prompt": "a\\ud800", "chosen": "b", "rejected": "c"}\n')


def text_seeds():
    t = "text"
    write(t, "fortunes", "A fortune.\n%\nAnother one,\n  on two lines.\n%\n%\nThe last.\n")
    write(t, "one_document", "Plain text without separators.\n")
    write(t, "utf8", "na\u00efve caf\u00e9 \U0001F600\n%\n\u00bd\n")
    write(t, "not_utf8", b"ok\n%\n\xc3\x28 \xed\xa0\x80 \xf8\x88\x80\x80\x80\n")
    write(t, "only_separators", "%\n%\n%\n")
    write(t, "crlf", "one\r\n%\r\ntwo\r\n")


def digits_seeds():
    t = "digits"
    row = ",".join(str((i * 7) % 17) for i in range(64))
    good = "".join(f"{row},{label}\n" for label in (0, 3, 9))
    write(t, "valid", good)
    write(t, "valid_gzip", gzip.compress(good.encode(), mtime=0))
    write(t, "floats", ",".join(["0.0"] * 64) + ",1.0\n" + ",".join(["16"] * 64) + ",2\n")
    write(t, "short_line", ",".join(["1"] * 63) + ",4\n")
    write(t, "pixel_out_of_range", ",".join(["17"] * 64) + ",4\n")
    write(t, "label_out_of_range", ",".join(["0"] * 64) + ",10\n")
    write(t, "not_numbers", ",".join(["nan"] * 64) + ",1e400\n")
    write(t, "gzip_truncated", gzip.compress(good.encode(), mtime=0)[:-6])


def video_list_seeds():
    t = "video_list"
    write(t, "path_label", "clip_a 0\nclip_b 4\n")
    write(t, "path_frames_label", "clip_a 16 0\nclip_b 8 3\r\n")
    write(t, "existing", ". 0\n/ 10 1\n")
    write(t, "bad_numbers", "a -1\nb 12x 3\nc 9223372036854775808\n")
    write(t, "huge_label", ". 4611686018427387904\n")
    write(t, "wrong_field_count", "a\nb 1 2 3\n")
    write(t, "blank_lines", "\n   \n\t\n")


if __name__ == "__main__":
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    safetensors_seeds()
    checkpoint_seeds()
    preference_seeds()
    text_seeds()
    digits_seeds()
    video_list_seeds()
