"""Tiny random backbones for tests, smoke runs and CPU benchmarks (no download: built from a config).

``build_tiny_backbone(path, "llama")`` writes a randomly initialised ``LlamaModel`` (or ``qwen2``, ``bert``) with its
tokenizer to ``path``; :class:`accord.reward.RewardConfig` then takes ``model=path`` like any other backbone. The
tokenizer is a whitespace word-level one over the words of ``texts`` (plus a chat template for decoders), or a
copy of an existing tokenizer (``tokenizer_from``: a folder).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from accord.datasets.errors import AccordError

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "[CLS]", "[SEP]"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
OTHER_DECODERS = ("gpt2", "opt", "bloom", "mpt")  # tiny_config's decoders besides llama and qwen2
DEFAULT_WORDS = (
    "the a an is was be good bad better worse helpful harmful answer question because so and or not yes no this that "
    "it he she they we you i cat dog sat on mat runs fast slow water bottles ban economy people jobs health argument"
).split()


def word_tokenizer(texts: Iterable[str] = (), *, decoder: bool = True, max_words: int = 4000) -> Any:
    """A small fast tokenizer trained on ``texts`` (and a few default words).

    Decoders get a byte-level BPE (so that model-specific tokenizer classes, e.g. Qwen2's, rebuild it from its vocab
    and merges) with ``<s>``/``</s>`` and a chat template; encoders a lower-cased word-level one with BERT's
    ``[CLS] A [SEP] B [SEP]`` layout.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [" ".join(DEFAULT_WORDS)] + [str(t) for t in texts]
    if decoder:
        backend = Tokenizer(models.BPE(unk_token=None))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=max_words, special_tokens=SPECIAL_TOKENS,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        backend.train_from_iterator(corpus, trainer)
        bos = backend.token_to_id("<s>")
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                               special_tokens=[("<s>", bos)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                            pad_token="<pad>", unk_token="<unk>")
        tokenizer.chat_template = CHAT_TEMPLATE
        return tokenizer
    counts: dict[str, int] = {}
    for text in corpus:
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            counts[word] = counts.get(word, 0) + 1
    vocab: dict[str, int] = {}
    for token in SPECIAL_TOKENS + [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]:
        if token not in vocab and len(vocab) < max_words:
            vocab[token] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    backend.add_special_tokens(SPECIAL_TOKENS)
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=backend, cls_token="[CLS]", sep_token="[SEP]", pad_token="<pad>",
                                   unk_token="<unk>")


def tiny_config(kind: str, vocab_size: int, hidden: int = 32, layers: int = 2, heads: int = 4,
                intermediate: int | None = None, max_positions: int = 2048, **overrides: Any) -> Any:
    """The config of a tiny random ``llama``, ``qwen2`` or ``bert`` backbone (float32, dropout 0), or of one of the
    decoders whose attention differs from Llama's (``gpt2``: learned positions; ``opt``, ``bloom``, ``mpt``: a causal
    mask built without the position ids; BLOOM and MPT: no sdpa kernel)."""
    from transformers import AutoConfig, BertConfig, LlamaConfig, Qwen2Config

    intermediate = intermediate or 2 * hidden
    if kind == "llama":
        config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                             num_hidden_layers=layers, num_attention_heads=heads,
                             num_key_value_heads=max(1, heads // 2),
                             max_position_embeddings=max_positions, tie_word_embeddings=False)
    elif kind == "qwen2":
        config = Qwen2Config(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                             num_hidden_layers=layers, num_attention_heads=heads,
                             num_key_value_heads=max(1, heads // 2),
                             max_position_embeddings=max_positions, tie_word_embeddings=False)
    elif kind == "bert":
        config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate,
                            num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=max_positions,
                            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    elif kind in OTHER_DECODERS:
        sizes = {"gpt2": dict(n_embd=hidden, n_layer=layers, n_head=heads, n_inner=intermediate,
                              n_positions=max_positions, bos_token_id=None, eos_token_id=None),  # 50256: no row
                 "opt": dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                             ffn_dim=intermediate, word_embed_proj_dim=hidden, max_position_embeddings=max_positions),
                 "bloom": dict(hidden_size=hidden, n_layer=layers, n_head=heads),
                 "mpt": dict(d_model=hidden, n_layers=layers, n_heads=heads, max_seq_len=max_positions)}[kind]
        config = AutoConfig.for_model(kind, vocab_size=vocab_size, **sizes)
        for key, value in list(vars(config).items()):  # GPT-2's resid_pdrop, OPT's dropout, ... (0.1 by default)
            if ("dropout" in key or key.endswith("pdrop")) and isinstance(value, float):
                setattr(config, key, 0.0)
    else:
        raise AccordError(f"unknown tiny model kind '{kind}' (use llama, qwen2, bert, {', '.join(OTHER_DECODERS)})")
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def build_tiny_backbone(path: str | Path, kind: str = "llama", *, texts: Iterable[str] = (), seed: int = 0,
                        tokenizer_from: str | Path | None = None, **config_kwargs: Any) -> Path:
    """Write a random tiny backbone and its tokenizer to ``path`` and return the path."""
    from transformers import AutoModel, AutoTokenizer

    from accord._session import seeded

    path = Path(path)
    if tokenizer_from is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
        if kind != "bert":
            tokenizer.bos_token = tokenizer.bos_token or tokenizer.cls_token
            tokenizer.eos_token = tokenizer.eos_token or tokenizer.sep_token
            tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    else:
        tokenizer = word_tokenizer(texts, decoder=kind != "bert")
    config = tiny_config(kind, vocab_size=len(tokenizer), **config_kwargs)
    config.pad_token_id = tokenizer.pad_token_id
    if kind != "bert":
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
    with seeded(seed):  # the caller's random streams are left as they were (a bare manual_seed reseeded them)
        model = AutoModel.from_config(config)
    from accord.reward.trainer import library_bars

    with library_bars(False):  # transformers' 'Writing model shards' bar, for a model written in milliseconds
        model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
