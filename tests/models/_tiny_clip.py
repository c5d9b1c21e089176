"""A tiny random-init CLIP with CLIP's real BPE tokenizer, saved as a Hugging Face folder.

The vocabulary is rebuilt from ``bpe_simple_vocab_16e6.txt.gz``, which open_clip_torch ships
(installed ``--no-deps`` by scripts/venv; never imported: its ``__init__`` needs torchvision).
The folder is cached under ~/.cache/packager-tests/, keyed by the transformers and torch versions.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
from pathlib import Path

BOS, EOS = 49406, 49407
CACHE = Path(os.environ.get("PACKAGER_TEST_CACHE", Path.home() / ".cache" / "packager-tests"))


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values, in CLIP's vocabulary order."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\u00a1"), ord("\u00ac") + 1),
        *range(ord("\u00ae"), ord("\u00ff") + 1),
    ]
    others = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + n) for n in range(len(others))]


def write_tokenizer_files(folder: Path) -> None:
    """vocab.json and merges.txt exactly as CLIP's SimpleTokenizer builds them (49,408 tokens)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is not installed; scripts/venv installs it --no-deps")
    bpe = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(bpe.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    base = _bytes_to_unicode()
    vocab = [
        *base,
        *(c + "</w>" for c in base),
        *("".join(m) for m in merges),
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8"
    )


def tiny_clip_folder() -> Path:
    """The cached tiny CLIP folder (model, processor, tokenizer), built on first use."""
    import torch
    import transformers

    target = CACHE / f"tiny-clip-tf{transformers.__version__}-torch{torch.__version__}"
    if (target / ".complete").is_file():
        return target
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _build(staging)
    (staging / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _build(folder: Path) -> None:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    write_tokenizer_files(folder / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder / "_tok"), model_max_length=77)
    layers = {"intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {"vocab_size": 49408, "hidden_size": 32, "max_position_embeddings": 77, **layers}
    text |= {"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": EOS}
    vision = {"hidden_size": 32, "image_size": 32, "patch_size": 8, **layers}
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(str(folder))
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(str(folder))
    for name in ("vocab.json", "merges.txt"):  # for transformers 4.x's slow tokenizer too
        shutil.copy(folder / "_tok" / name, folder / name)
    shutil.rmtree(folder / "_tok")
