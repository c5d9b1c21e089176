"""library/llama-* on the real SmolLM2-135M-Instruct weights (Llama architecture), pointed at by weights_dir.

The entries are used unchanged: only the weights folder differs (weights_dir/llama is the
converted SmolLM2 folder, see smollm2.py), exactly as a user overrides PACKAGER_WEIGHTS_DIR.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import smollm2
from served import serve

import packager

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
CHAT_ENTRY = ROOT / "library" / "llama-2-7b-chat"
BASE_ENTRY = ROOT / "library" / "llama-7b"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("llama-weights")
    (root / "llama").symlink_to(smollm2.folder(), target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def chat(weights_dir: Path) -> Iterator[packager.ModelHandle]:
    with packager.load(CHAT_ENTRY, device="cpu", weights_dir=weights_dir) as handle:
        yield handle


def test_chat_answers_paris_whole_and_streamed(chat: packager.ModelHandle) -> None:
    answer = chat.predict(messages=QUESTION, temperature=0, max_tokens=20)
    assert "Paris" in answer["text"]
    assert answer["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 20
    chunks = list(chat.predict(messages=QUESTION, temperature=0, max_tokens=20, stream=True))
    assert len(chunks) > 2
    assert "".join(c["text"] for c in chunks) == answer["text"]
    assert chunks[-1]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == usage
    assert all(c["finish_reason"] is None for c in chunks[:-1])


def test_stop_sequence_stops_and_trims(chat: packager.ModelHandle) -> None:
    full = chat.predict(messages=QUESTION, temperature=0, max_tokens=20)["text"]
    cut = chat.predict(messages=QUESTION, temperature=0, max_tokens=20, stop=["Paris"])
    assert cut["text"] == full[: full.index("Paris")]
    assert cut["finish_reason"] == "stop"
    streamed = list(chat.predict(messages=QUESTION, temperature=0, max_tokens=20, stop="Paris", stream=True))
    assert "".join(c["text"] for c in streamed) == cut["text"]


def test_seed_gives_the_same_sampled_text(chat: packager.ModelHandle) -> None:
    story = [{"role": "user", "content": "Write one sentence about a dragon."}]

    def sample(seed: int) -> str:
        return str(
            chat.predict(messages=story, temperature=1.0, top_p=0.95, top_k=50, seed=seed, max_tokens=12)[
                "text"
            ]
        )

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first


def test_length_and_too_many_tokens(chat: packager.ModelHandle) -> None:
    short = chat.predict(messages=QUESTION, temperature=0, max_tokens=2)
    assert (short["finish_reason"], short["usage"]["completion_tokens"]) == ("length", 2)
    with pytest.raises(packager.InputError) as info:
        chat.predict(messages=QUESTION, max_tokens=9000)  # SmolLM2 reads 8192 tokens
    assert str(info.value).startswith("max_tokens:")
    with pytest.raises(packager.InputError):
        chat.predict(messages=[])


def test_base_entry_completes_the_prompt(weights_dir: Path) -> None:
    with packager.load(BASE_ENTRY, device="cpu", weights_dir=weights_dir) as base:
        answer = base.predict(prompt="The capital of France is", temperature=0, max_tokens=8, stop=["\n"])
    assert answer["text"].strip().startswith("Paris")


def _copy_with_adapter(tmp_path: Path) -> Path:
    package = tmp_path / "chat-lora"
    shutil.copytree(CHAT_ENTRY, package)
    spec = (package / "package.yaml").read_text()
    marker = '    ignore_patterns: ["original/*"]\n'
    assert marker in spec
    (package / "package.yaml").write_text(
        spec.replace(marker, marker + "  - source: ./adapter\n    dir: adapter\n", 1)
    )
    return package


def _random_lora(base: Path, out: Path) -> dict[str, Any]:
    """A random (non-zero) LoRA on q/v projections, saved with peft; returns its delta weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    deltas = {}
    for name, module in peft_model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
            deltas[name.split("base_model.model.", 1)[1] + ".weight"] = (
                b @ a * module.scaling["default"]
            ).detach()
    return deltas


def _merged_by_hand(base: Path, deltas: dict[str, Any], out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    state = model.state_dict()
    with torch.no_grad():
        for name, delta in deltas.items():
            state[name].add_(delta)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


def test_lora_adapter_changes_output_and_equals_hand_merge(
    tmp_path: Path, weights_dir: Path, chat: packager.ModelHandle
) -> None:
    base = smollm2.folder()
    package = _copy_with_adapter(tmp_path)
    deltas = _random_lora(base, package / "adapter")
    merged = tmp_path / "merged"
    (merged / "llama").mkdir(parents=True)
    _merged_by_hand(base, deltas, merged / "llama")
    request: dict[str, Any] = {"messages": QUESTION, "temperature": 0, "max_tokens": 12}
    with packager.load(package, device="cpu", weights_dir=weights_dir) as tuned:
        with_adapter = tuned.predict(request)["text"]
    with packager.load(CHAT_ENTRY, device="cpu", weights_dir=merged) as by_hand:
        hand = by_hand.predict(request)["text"]
    assert with_adapter != chat.predict(request)["text"]
    assert with_adapter == hand


# -- through pkg serve: KServe predict and the real openai client -----------------------------


@pytest.fixture(scope="module")
def served(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("llama-serve") / "server.log"
    env = {"PACKAGER_WEIGHTS_DIR": str(weights_dir), "PACKAGER_DEVICE": "cpu"}
    with serve(CHAT_ENTRY, log, env=env, via_cli=True) as url:
        yield url


def test_serve_kserve_and_openai_client(served: str) -> None:
    reply = httpx.post(
        f"{served}/v1/models/llama-2-7b-chat:predict",
        json={"messages": QUESTION, "temperature": 0, "max_tokens": 20},
        timeout=120,
    )
    assert "Paris" in reply.json()["text"]
    client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0, timeout=120)
    answer = client.chat.completions.create(
        model="llama-2-7b-chat", messages=QUESTION, temperature=0, max_tokens=20
    )  # type: ignore[arg-type]
    assert "Paris" in (answer.choices[0].message.content or "")
    assert answer.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(
        model="llama-2-7b-chat",
        messages=QUESTION,
        temperature=0,
        max_tokens=20,
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == answer.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_serve_disconnect_stops_generation(served: str) -> None:
    """predict_concurrency is 1: if a dropped 4000-token stream went on, the next request would wait minutes."""
    client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0, timeout=120)
    story = [{"role": "user", "content": "Tell me a very long story."}]
    stream = client.chat.completions.create(
        model="llama-2-7b-chat",
        messages=story,
        max_tokens=4000,
        stream=True,
        seed=1,  # type: ignore[arg-type]
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    started = time.monotonic()
    quick = client.chat.completions.create(
        model="llama-2-7b-chat", messages=QUESTION, temperature=0, max_tokens=2
    )  # type: ignore[arg-type]
    assert quick.choices[0].finish_reason == "length"
    assert time.monotonic() - started < 60, os.environ.get("CI")
