"""Unit tests of accord.reward: losses against hand-computed values, the data path, the model, evaluation metrics."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from accord import metrics
from accord.datasets import AccordError, write_cleaned
from accord.reward import losses
from accord.reward.data import PairCollator, PairEncoder, length_grouped_batches, load_pairs, truncate_pair
from accord.reward.evaluate import pairwise_metrics
from accord.reward.model import RewardModel, is_decoder_config
from accord.reward.tiny import build_tiny_backbone

torch.set_num_threads(1)

WORDS = "the a good bad helpful answer question cat dog sat on mat water bottles ban economy jobs yes no".split()


def random_pairs(n: int, seed: int = 0, max_words: int = 30, prompt: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def text() -> str:
        return " ".join(rng.choice(WORDS, int(rng.integers(1, max_words))))

    return pd.DataFrame({
        "pair_id": [f"p{i}" for i in range(n)],
        "prompt": [text() if prompt else "" for _ in range(n)],
        "chosen": [text() for _ in range(n)],
        "rejected": [text() for _ in range(n)],
        "p_chosen": rng.uniform(0.5, 1.0, n),
        "p_tie": 0.0,
        "uncertainty": rng.uniform(0.0, 0.25, n),
        "weight": rng.uniform(0.5, 1.0, n),
        "n_judgments": 5,
    })


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: build_tiny_backbone(root / kind, kind, texts=[" ".join(WORDS)], seed=1)
            for kind in ("llama", "qwen2", "bert")}


# ----------------------------------------------------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------------------------------------------------

LOG3 = math.log(3.0)


def test_bradley_terry_matches_hand_values():
    d = torch.tensor([0.0, LOG3])
    # -log sigmoid(0) = log 2; -log sigmoid(log 3) = -log(3/4)
    assert torch.allclose(losses.bradley_terry_loss(d), torch.tensor([math.log(2), -math.log(0.75)]), atol=1e-6)


def test_label_smoothing_matches_hand_values():
    d = torch.tensor([0.0, LOG3])
    expected = [math.log(2), -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))]
    assert torch.allclose(losses.label_smoothing_loss(d, 0.1), torch.tensor(expected), atol=1e-6)
    with pytest.raises(AccordError):
        losses.label_smoothing_loss(d, 0.7)


def test_soft_bce_is_the_label_entropy_at_its_minimum():
    target = torch.tensor([0.75, 0.5, 0.9])
    d = torch.logit(target).requires_grad_(True)
    value = losses.soft_bce_loss(d, target)
    entropy = -(target * target.log() + (1 - target) * (1 - target).log())
    assert torch.allclose(value, entropy, atol=1e-6)
    value.sum().backward()
    assert torch.allclose(d.grad, torch.zeros(3), atol=1e-6)  # minimised at d = logit(y), not at +inf


def test_tie_split_target_gives_ties_half_a_win():
    assert torch.allclose(losses.tie_split_target(torch.tensor([0.6]), torch.tensor([0.2])), torch.tensor([0.7]))


def test_weighted_soft_bce_weights_are_normalised_to_mean_one():
    d = torch.tensor([0.3, -1.2])
    y = torch.tensor([0.8, 0.6])
    base = losses.soft_bce_loss(d, y)
    weighted = losses.weighted_soft_bce_loss(d, y, torch.tensor([1.0, 3.0]))
    assert torch.allclose(weighted, base * torch.tensor([0.5, 1.5]), atol=1e-6)
    # the scale of the weights changes nothing
    assert torch.allclose(losses.weighted_soft_bce_loss(d, y, torch.tensor([7.0, 21.0])), weighted, atol=1e-6)
    # equal weights give the unweighted loss
    assert torch.allclose(losses.weighted_soft_bce_loss(d, y, torch.tensor([0.3, 0.3])), base, atol=1e-6)
    # a given step mean (from other micro-batches) is used instead of this batch's
    assert torch.allclose(losses.weighted_soft_bce_loss(d, y, torch.tensor([1.0, 3.0]), weight_mean=4.0),
                          base * torch.tensor([0.25, 0.75]), atol=1e-6)
    assert torch.equal(losses.normalise_weights(torch.zeros(3)), torch.zeros(3))


def test_davidson_matches_hand_values():
    third = torch.full((1,), 1 / 3)
    # d = 0, nu = 1: every outcome has probability 1/3
    assert torch.allclose(losses.davidson_loss(torch.zeros(1), third, third, 1.0), torch.tensor([LOG3]), atol=1e-6)
    # d = 2 log 2, nu = 1: Z' = 2 + 1/2 + 1 = 7/2, P(c) = 4/7, P(tie) = 2/7, P(r) = 1/7
    d = torch.tensor([2 * math.log(2)] * 3)
    p_c = torch.tensor([1.0, 0.0, 0.0])
    p_t = torch.tensor([0.0, 1.0, 0.0])
    expected = torch.tensor([-math.log(4 / 7), -math.log(2 / 7), -math.log(1 / 7)])
    assert torch.allclose(losses.davidson_loss(d, p_c, p_t, 1.0), expected, atol=1e-6)
    with pytest.raises(AccordError):
        losses.davidson_loss(d, p_c, p_t, 0.0)


def test_margin_loss_shifts_the_difference():
    d = torch.tensor([1.0, 2.0])
    assert torch.allclose(losses.margin_loss(d, torch.tensor([1.0, 2.0 - LOG3])),
                          torch.tensor([math.log(2), -math.log(0.75)]), atol=1e-6)


def test_pairwise_logit_scales_by_the_variance():
    mu_c, mu_r = torch.tensor([3.0]), torch.tensor([1.0])
    assert torch.allclose(losses.pairwise_logit(mu_c, mu_r), torch.tensor([2.0]))
    var = torch.tensor([12.0 / math.pi])  # 1 + (pi / 8) * (2 * 12 / pi) = 4 -> the difference halves
    assert torch.allclose(losses.pairwise_logit(mu_c, mu_r, var, var), torch.tensor([1.0]), atol=1e-6)


def test_loss_registry_dispatch_and_unknown_name():
    d = torch.tensor([0.5])
    inputs = losses.pair_loss_inputs(d, p_chosen=torch.tensor([0.7]), p_tie=torch.tensor([0.2]),
                                     weight=torch.tensor([0.5]), margin=torch.tensor([0.0]))
    for name in losses.LOSSES:
        assert torch.isfinite(losses.get_loss(name)(inputs)).all()
    assert torch.allclose(losses.get_loss("soft_bce")(inputs), losses.soft_bce_loss(d, torch.tensor([0.8])))
    # settings reach a loss by their names; a loss given only some inputs keeps its defaults for the rest
    assert torch.allclose(losses.get_loss("label_smoothing")({**inputs, "label_smoothing": 0.2}),
                          losses.label_smoothing_loss(d, 0.2))
    with pytest.raises(AccordError, match="unknown loss"):
        losses.get_loss("hinge")
    with pytest.raises(AccordError, match="needs"):
        losses.get_loss("davidson")({"d": d})


# ----------------------------------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------------------------------


def test_truncate_pair_cuts_responses_before_prompts():
    prompt, response = list(range(10)), list(range(100, 120))
    assert truncate_pair(prompt, response, 30) == (prompt, response, False, False)
    p, r, cut_p, cut_r = truncate_pair(prompt, response, 25)  # the response gives way first
    assert (p, r, cut_p, cut_r) == (prompt, response[:15], False, True)
    p, r, cut_p, cut_r = truncate_pair(prompt, response, 16)  # response kept at budget // 2, prompt cut from the left
    assert r == response[:8] and p == prompt[2:] and cut_p and cut_r


def test_encoder_counts_truncations_and_respects_max_length(backbones):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["bert"])
    encoder = PairEncoder(tokenizer, max_length=16, is_decoder=False)
    encoded = encoder.encode(["the cat sat", "the " * 30], ["good answer", "bad " * 40])
    assert max(len(ids) for ids in encoded.ids) <= 16
    assert encoded.truncated_responses == 1 and encoded.truncated_prompts == 1
    # [CLS] prompt [SEP] response [SEP], token types 0 then 1
    first = encoded.ids[0]
    assert tokenizer.convert_ids_to_tokens(first) == ["[CLS]", "the", "cat", "sat", "[SEP]", "good", "answer", "[SEP]"]
    assert encoded.type_ids[0] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert encoded.prompt_lengths[0] == 5


@pytest.mark.parametrize("kind, chat", [("bert", None), ("llama", False), ("llama", True)])
def test_both_sides_of_a_truncated_pair_keep_the_same_prompt(backbones, kind, chat):
    # a long chosen response cut the prompt to its last tokens while the short rejected one kept all of it, so the
    # pair's two rewards read different prompts
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones[kind])
    encoder = PairEncoder(tokenizer, max_length=16, is_decoder=kind != "bert", use_chat_template=chat)
    frame = load_pairs({"prompt": ["the cat sat on the mat the dog", "a cat"],
                        "chosen": ["good answer " * 10, "yes"], "rejected": ["bad", "no"]})
    pairs = encoder.encode_pairs(frame)
    for i in range(2):
        n = int(pairs.chosen.prompt_lengths[i])
        assert n == pairs.rejected.prompt_lengths[i]
        assert pairs.chosen.ids[i][:n] == pairs.rejected.ids[i][:n]
        assert max(len(pairs.chosen.ids[i]), len(pairs.rejected.ids[i])) <= 16
    n = int(pairs.rejected.prompt_lengths[0])
    assert "bad" in tokenizer.decode(pairs.rejected.ids[0][n:])  # the short response is whole
    assert pairs.truncation["truncated_prompts"] == 2 and pairs.truncation["truncated_responses"] == 1


# the tiny backbones' template (one end-of-turn token) and one ending each turn in two tokens, as ChatML's
# "<|im_end|>\n" does
TURN_TEMPLATES = [None, "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}[SEP]\n{% endfor %}"
                        "{% if add_generation_prompt %}<|assistant|>{% endif %}"]


@pytest.fixture(scope="module", params=TURN_TEMPLATES, ids=["eos", "sep-newline"])
def chat_tokenizer(backbones, request):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    if request.param is not None:
        tokenizer.chat_template = request.param
    return tokenizer


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(0, 12), st.integers(10, 30))
def test_a_truncated_chat_response_keeps_its_end_of_turn(chat_tokenizer, n_words, n_prompt_words, max_length):
    # was: truncate_pair cut the response with the template's end-of-turn tokens, so a last-token reward was read at
    # a word inside a truncated response and at the end-of-turn marker of a whole one
    encoder = PairEncoder(chat_tokenizer, max_length=max_length, is_decoder=True)
    whole = PairEncoder(chat_tokenizer, max_length=10_000, is_decoder=True)
    suffix = "</s>" if "[SEP]" not in chat_tokenizer.chat_template else "[SEP]\n"
    end = list(chat_tokenizer(suffix, add_special_tokens=False)["input_ids"])
    assert chat_tokenizer.convert_ids_to_tokens(end[0]) == suffix.strip()  # one marker token (then the newline)
    prompt, response = " ".join(WORDS[:n_prompt_words]), " ".join((WORDS * 3)[:n_words])
    cut, full = encoder.encode([prompt], [response]), whole.encode([prompt], [response])
    ids, n = cut.ids[0], int(cut.prompt_lengths[0])
    full_ids, full_n = full.ids[0], int(full.prompt_lengths[0])
    assert len(ids) <= max_length and ids[len(ids) - len(end):] == end and full_ids[len(full_ids) - len(end):] == end
    body, full_body = ids[n:len(ids) - len(end)], full_ids[full_n:len(full_ids) - len(end)]
    assert full_body[:len(body)] == body  # the response keeps its beginning
    assert (len(body) < len(full_body)) == bool(cut.truncated_responses)


_CHAT_TEXTS = st.lists(st.sampled_from([*WORDS[:6], "é", "\n", "  ", ""]), max_size=8).map(" ".join)
_CHAT_SIDES = _CHAT_TEXTS | st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), _CHAT_TEXTS).map(
    lambda m: {"role": m[0], "content": m[1]}), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None)
@given(sides=st.lists(st.tuples(_CHAT_SIDES, _CHAT_SIDES), min_size=1, max_size=6),
       max_length=st.integers(8, 60), room=st.booleans())
def test_chat_encoding_in_one_tokenizer_call_matches_one_call_per_text(chat_tokenizer, sides, max_length, room):
    """The chat layout tokenizes all prompts and all conversations in two batched calls; every sequence, prompt
    length and truncation count is what one tokenizer call per text gives (truncated prompts included)."""
    from unittest import mock

    import accord.reward.data as data

    encoder = PairEncoder(chat_tokenizer, max_length=max_length, is_decoder=True)
    prompts, responses = [p for p, _ in sides], [r for _, r in sides]
    prompt_room = np.array([3 + 2 * i for i in range(len(sides))]) if room else None
    batched = encoder.encode(prompts, responses, prompt_room)
    def one_call_per_text(tokenizer, conversations, add_generation_prompt):
        return [[int(i) for i in tokenizer.apply_chat_template(c, add_generation_prompt=add_generation_prompt,
                                                               tokenize=True, return_dict=False)]
                for c in conversations]

    with mock.patch.object(data, "_template_ids_batch", one_call_per_text):
        one_by_one = encoder.encode(prompts, responses, prompt_room)
    assert batched.ids == one_by_one.ids
    np.testing.assert_array_equal(batched.prompt_lengths, one_by_one.prompt_lengths)
    assert (batched.truncated_prompts, batched.truncated_responses) == (one_by_one.truncated_prompts,
                                                                        one_by_one.truncated_responses)


@pytest.mark.parametrize("bos", [False, True])
@settings(max_examples=20, deadline=None)
@given(n_prompt_words=st.integers(1, 40), n_words=st.integers(1, 30), max_length=st.integers(10, 30))
def test_a_truncated_chat_prompt_keeps_the_template_s_start(backbones, bos, n_prompt_words, n_words, max_length):
    # was: a prompt cut from the left lost the template's start with its first tokens (the BOS token a Llama reads
    # first, the user header), which the plain layouts keep; the cut prompt now keeps that start and the end of its
    # text, in as many tokens as before
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    if bos:
        tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    head = ["<s>", "<|user|>"] if bos else ["<|user|>"]
    prompt, response = " ".join((WORDS * 3)[:n_prompt_words]), " ".join(WORDS[:n_words])
    cut = PairEncoder(tokenizer, max_length=max_length, is_decoder=True).encode([prompt], [response])
    whole = PairEncoder(tokenizer, max_length=10_000, is_decoder=True).encode([prompt], [response])
    n, whole_n = int(cut.prompt_lengths[0]), int(whole.prompt_lengths[0])
    kept, full = cut.ids[0][:n], whole.ids[0][:whole_n]
    assert len(cut.ids[0]) <= max_length
    if n >= len(head):
        assert tokenizer.convert_ids_to_tokens(kept[:len(head)]) == head
        assert full[len(full) - (n - len(head)):] == kept[len(head):]  # then the end of the prompt
    assert (n < whole_n) == bool(cut.truncated_prompts)


def test_decoder_chat_template_puts_the_prompt_first(backbones):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    encoder = PairEncoder(tokenizer, max_length=64, is_decoder=True)
    assert encoder.use_chat_template
    encoded = encoder.encode(["the cat"], ["good answer"])
    prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": "the cat"}], add_generation_prompt=True)
    prompt_ids = list(prompt_ids["input_ids"] if hasattr(prompt_ids, "keys") else prompt_ids)
    assert encoded.ids[0][: len(prompt_ids)] == prompt_ids
    assert encoded.prompt_lengths[0] == len(prompt_ids)
    plain = PairEncoder(tokenizer, max_length=64, is_decoder=True, use_chat_template=False).encode([""], ["good"])
    assert plain.ids[0][0] == tokenizer.bos_token_id and plain.ids[0][-1] == tokenizer.eos_token_id


def test_load_pairs_reads_csv_texts_as_written(tmp_path):
    # pandas' guessing read the id "007" as 7, the response "04" as 4 and the response "None" as a missing text
    path = tmp_path / "pairs.csv"
    path.write_text("pair_id,prompt,chosen,rejected,margin\n007,2+2?,04,None,\n008,,NA,1.50,0.5\n", encoding="utf-8")
    loaded = load_pairs(path)
    assert list(loaded["pair_id"]) == ["007", "008"] and list(loaded["prompt"]) == ["2+2?", ""]
    assert list(loaded["chosen"]) == ["04", "NA"] and list(loaded["rejected"]) == ["None", "1.50"]
    assert np.isnan(loaded["margin"][0]) and loaded["margin"][1] == 0.5
    path.write_text("chosen,rejected\na,\n", encoding="utf-8")  # an empty cell is still a missing text
    with pytest.raises(AccordError, match="column 'rejected', row 0: missing response text"):
        load_pairs(path)


@pytest.mark.parametrize("header", ["", "sep=;\r\n"])
def test_load_pairs_reads_a_semicolon_csv_as_the_judgments_are_read(tmp_path, header):
    # was: accord aggregate reads Excel's ';' export (and its 'sep=;' line), but accord train / evaluate / score /
    # calibrate read it with commas only: "cannot parse as CSV: Error tokenizing data. C error: Expected 2 fields in
    # line 3, saw 3" (a text's commas), or one column 'prompt;chosen;rejected'
    path = tmp_path / "pairs.csv"
    path.write_bytes(f"\ufeff{header}prompt;chosen;rejected;p_chosen\r\nWhy, then?;Because, see;No;0.9\r\n"
                     "007;04;None;1\r\n".encode())
    loaded = load_pairs(path)
    assert list(loaded["prompt"]) == ["Why, then?", "007"] and list(loaded["chosen"]) == ["Because, see", "04"]
    assert list(loaded["rejected"]) == ["No", "None"]


def test_conversations_that_carry_their_prompt_beside_a_prompt_column_read_it_once(backbones):
    # UltraFeedback-binarized's layout: a text prompt and the whole conversation as chosen/rejected; the prompt was
    # read twice, the chat template's user turn and the response's text ("<|assistant|>user: What color ...")
    from transformers import AutoTokenizer

    user = {"role": "user", "content": "what colour is the sky"}
    pairs = load_pairs({"prompt": ["what colour is the sky", "the dog"],
                        "chosen": [[user, {"role": "assistant", "content": "blue"}],
                                   [{"role": "assistant", "content": "runs"}]],
                        "rejected": [[user, {"role": "assistant", "content": "green"}],
                                     [{"role": "assistant", "content": "sat"}]]})
    assert pairs["prompt"][0] == [user] and pairs["chosen"][0] == [{"role": "assistant", "content": "blue"}]
    assert pairs["prompt"][1] == "the dog"  # responses alone: the column is the prompt
    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    encoded = PairEncoder(tokenizer, max_length=64, is_decoder=True).encode_pairs(pairs)
    text = tokenizer.decode(encoded.chosen.ids[0])
    assert text.count("sky") == 1 and text.endswith("<|assistant|>blue</s>")


def test_load_pairs_reads_cleaned_files_and_hf_layouts(tmp_path):
    frame = random_pairs(5)
    write_cleaned(frame, tmp_path / "clean.parquet")
    loaded = load_pairs(tmp_path / "clean.parquet")
    assert np.allclose(loaded["weight"], frame["weight"]) and list(loaded["pair_id"]) == list(frame["pair_id"])
    # a plain HF layout without labels: hard labels, weight 1
    hf = pd.DataFrame({"chosen": ["a", "b"], "rejected": ["c", "d"]})
    hf.to_json(tmp_path / "hf.jsonl", orient="records", lines=True)
    loaded = load_pairs(tmp_path / "hf.jsonl")
    assert list(loaded["p_chosen"]) == [1.0, 1.0] and list(loaded["weight"]) == [1.0, 1.0]
    assert list(loaded["prompt"]) == ["", ""]
    # conversational with an implicit prompt: the shared leading messages
    user = {"role": "user", "content": "hi"}
    conv = load_pairs({"chosen": [[user, {"role": "assistant", "content": "hello"}]],
                       "rejected": [[user, {"role": "assistant", "content": "go away"}]]})
    assert conv["prompt"][0] == [user] and conv["chosen"][0] == [{"role": "assistant", "content": "hello"}]
    with pytest.raises(AccordError, match="column 'p_chosen', row 1"):
        load_pairs({"chosen": ["a", "b"], "rejected": ["c", "d"], "p_chosen": [0.5, 1.5]})
    with pytest.raises(AccordError, match="column 'rejected'"):
        load_pairs({"chosen": ["a"]})


@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.json", "clean.jsonl"])
def test_a_utf8_byte_order_mark_is_skipped(tmp_path, name):
    # Windows tools write one: train/evaluate/score/calibrate said "cannot read: Expected object or value"
    from accord.reward.evaluate import _read_frame

    frame = random_pairs(4)
    path = tmp_path / name
    if name == "clean.jsonl":
        write_cleaned(frame, path)
    else:
        frame[["prompt", "chosen", "rejected"]].to_json(path, orient="records", lines=name.endswith(".jsonl"))
    path.write_bytes("\ufeff".encode() + path.read_bytes())
    assert load_pairs(path)["chosen"].tolist() == frame["chosen"].tolist()
    assert _read_frame(path)["chosen"].tolist() == frame["chosen"].tolist()  # what score and evaluate read


@pytest.mark.parametrize("dtype", ["string", "string[pyarrow]"])
def test_load_pairs_treats_a_nullable_missing_text_as_missing(dtype):
    # pandas' nullable strings hold pd.NA, which was trained on as the text "<NA>"
    with pytest.raises(AccordError, match="column 'chosen', row 1: missing response text"):
        load_pairs(pd.DataFrame({"chosen": pd.array(["a", None], dtype=dtype), "rejected": ["c", "d"]}))
    loaded = load_pairs(pd.DataFrame({"prompt": pd.array(["q", None], dtype=dtype), "chosen": ["a", "b"],
                                      "rejected": ["c", "d"]}))
    assert list(loaded["prompt"]) == ["q", ""]


@pytest.mark.parametrize("votes", [[-3, 2], ["many", 2], [None, 2]])
def test_load_pairs_refuses_vote_counts_that_are_not_counts(votes):
    # a negative count gave vote metrics from nonsense; a text or missing one silently dropped them all
    with pytest.raises(AccordError, match="column 'votes_chosen', row 0: must be a vote count"):
        load_pairs({"chosen": ["a", "b"], "rejected": ["c", "d"], "votes_chosen": votes, "votes_rejected": [1, 1]})


def test_length_grouped_batches_are_seeded_complete_and_grouped():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 500, 1000)
    batches = length_grouped_batches(lengths, 10, seed=3, epoch=1, megabatch=20)
    again = length_grouped_batches(lengths, 10, seed=3, epoch=1, megabatch=20)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    other = length_grouped_batches(lengths, 10, seed=3, epoch=2, megabatch=20)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))
    plain = length_grouped_batches(lengths, 10, seed=3, epoch=1, group_by_length=False)

    def padding(bs):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in bs)

    assert padding(batches) < 0.2 * padding(plain)


def test_packed_collator_layout():
    from accord.reward.data import TokenizedPairs, TokenizedResponses

    chosen = TokenizedResponses([[1, 2, 3, 4], [5, 6]], np.zeros(2, dtype=np.int64), None)
    rejected = TokenizedResponses([[7, 8], [9]], np.zeros(2, dtype=np.int64), None)
    pairs = TokenizedPairs(chosen, rejected, np.array(["a", "b"]), *(np.ones(2, dtype=np.float32),) * 4)
    batch = PairCollator(pad_token_id=0, packing=True, pooling="last")(pairs, [0, 1])
    # 4 sequences (4, 2, 2, 1 tokens) packed first-fit-decreasing into rows of 4 tokens: [4], [2 2], [1 pad pad pad]
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 0, 1], [0, 0, 1, 2]]
    flat = batch["input_ids"].view(-1)
    assert flat[batch["pool_index"]].tolist() == [4, 6, 8, 9]  # last token of chosen 0, 1, rejected 0, 1
    assert batch["n_tokens"] == 9


# ----------------------------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["llama", "qwen2", "bert"])
def test_packed_and_padded_rewards_agree(backbones, kind):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones[kind])
    model = RewardModel.from_backbone(str(backbones[kind]), attn_implementation="sdpa", uncertainty_head=True).eval()
    assert model.is_decoder == (kind != "bert")
    pairs = PairEncoder(tokenizer, 48, model.is_decoder).encode_pairs(load_pairs(random_pairs(8, seed=2)))
    indices = np.arange(8)
    for pooling in ("last", "mean", "cls"):
        model.pooling = pooling
        out = {}
        for packing in (False, True):
            batch = PairCollator(tokenizer.pad_token_id, packing=packing, pooling=pooling)(pairs, indices)
            if packing:
                assert batch["input_ids"].shape[0] < 16  # really packed: fewer rows than sequences
            with torch.no_grad():
                out[packing] = model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)})
        assert torch.allclose(out[True].reward, out[False].reward, atol=1e-4), pooling
        assert torch.allclose(out[True].log_var, out[False].log_var, atol=1e-4), pooling


def test_packing_widens_rows_when_that_costs_less_and_keeps_the_rewards(backbones):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["bert"])
    model = RewardModel.from_backbone(str(backbones["bert"]), attn_implementation="sdpa").eval()
    pairs = PairEncoder(tokenizer, 48, False).encode_pairs(load_pairs(random_pairs(16, seed=3)))
    indices = np.arange(16)
    narrow = PairCollator(tokenizer.pad_token_id, packing=True, pooling="mean")(pairs, indices)
    costed = PairCollator(tokenizer.pad_token_id, packing=True, pooling="mean",
                          hidden_size=model.hidden_size)(pairs, indices)
    padded = PairCollator(tokenizer.pad_token_id, packing=False, pooling="mean")(pairs, indices)
    longest = max(len(ids) for ids in pairs.chosen.ids + pairs.rejected.ids)
    assert narrow["input_ids"].shape[1] == longest and longest < costed["input_ids"].shape[1] <= 2 * longest
    assert costed["input_ids"].numel() < narrow["input_ids"].numel()  # fewer padded positions to compute
    with torch.no_grad():
        rewards = [model(**{k: v for k, v in b.items() if isinstance(v, torch.Tensor)}).reward
                   for b in (costed, padded)]
    assert torch.allclose(rewards[0], rewards[1], atol=1e-4)


@pytest.mark.parametrize("template", [False, True])
def test_shared_prompt_rewards_equal_separate_ones(backbones, template):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    model = RewardModel.from_backbone(str(backbones["llama"]), attn_implementation="sdpa").eval()
    frame = random_pairs(6, seed=7)
    frame.loc[5, "prompt"] = ""  # a pair without a prompt to share (chat template: a prompt with empty content)
    pairs = PairEncoder(tokenizer, 64, True, use_chat_template=template).encode_pairs(load_pairs(frame))
    separate = PairCollator(tokenizer.pad_token_id, packing=False)(pairs, np.arange(6))
    shared = PairCollator(tokenizer.pad_token_id, packing=True, share_prompt=True)(pairs, np.arange(6))
    assert shared["n_tokens"] < separate["n_tokens"]  # prompts encoded once
    with torch.no_grad():
        a = model(**{k: v for k, v in separate.items() if isinstance(v, torch.Tensor)}).reward
        b = model(**{k: v for k, v in shared.items() if isinstance(v, torch.Tensor)}).reward
    assert torch.allclose(a, b, atol=1e-4)


def test_packed_and_padded_gradients_agree(backbones):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["qwen2"])
    model = RewardModel.from_backbone(str(backbones["qwen2"]), attn_implementation="sdpa")
    pairs = PairEncoder(tokenizer, 48, True).encode_pairs(load_pairs(random_pairs(6, seed=4)))
    grads = {}
    for packing in (False, True):
        model.zero_grad()
        batch = PairCollator(tokenizer.pad_token_id, packing=packing)(pairs, np.arange(6))
        reward = model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}).reward
        losses.bradley_terry_loss(reward[:6] - reward[6:]).mean().backward()
        grads[packing] = torch.cat([p.grad.view(-1) for p in model.parameters() if p.grad is not None])
    assert torch.allclose(grads[True], grads[False], atol=1e-5)


def test_compiled_blocks_give_the_eager_rewards_and_gradients(backbones):
    """``torch_compile``: the layers compiled in place give the eager rewards and gradients, names unchanged."""
    from transformers import AutoTokenizer

    from accord.reward.model import compile_repeated_blocks

    tokenizer = AutoTokenizer.from_pretrained(backbones["qwen2"])
    pairs = PairEncoder(tokenizer, 48, True).encode_pairs(load_pairs(random_pairs(6, seed=5)))
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)  # the same head
        model = RewardModel.from_backbone(str(backbones["qwen2"]), attn_implementation="sdpa")
        names = [name for name, _ in model.named_parameters()]
        if compiled:
            assert compile_repeated_blocks(model.backbone) == model.config.num_hidden_layers
            assert [name for name, _ in model.named_parameters()] == names  # checkpoints keep their keys
        for width in (6, 5):  # two batch shapes: the second runs the dynamic-shape graph
            model.zero_grad()
            batch = PairCollator(tokenizer.pad_token_id, packing=True)(pairs, np.arange(width))
            reward = model(**{k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}).reward
            losses.bradley_terry_loss(reward[:width] - reward[width:]).mean().backward()
        grads = torch.cat([p.grad.view(-1) for p in model.parameters() if p.grad is not None])
        results[compiled] = (reward.detach(), grads)
    assert torch.allclose(results[True][0], results[False][0], atol=1e-5)
    assert torch.allclose(results[True][1], results[False][1], atol=1e-5)


def test_compile_needs_repeated_blocks():
    from accord.reward.model import compile_repeated_blocks

    with pytest.raises(AccordError, match="no repeated blocks"):
        compile_repeated_blocks(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flex attention trains on a GPU only (no CPU backward)")
@pytest.mark.parametrize("compiled", [False, True])
def test_flex_packed_batch_row_matches_padded_on_gpu(tmp_path, compiled):
    """The GPU layout: the whole batch in one packed row under flex attention gives the padded sdpa rewards and
    gradients (float32)."""
    from transformers import AutoTokenizer

    from accord.reward.model import compile_repeated_blocks

    # flex attention's GPU kernels need a head dimension of at least 16
    path = build_tiny_backbone(tmp_path / "qwen2", "qwen2", texts=[" ".join(WORDS)], hidden=64, layers=2, heads=4,
                               intermediate=128, seed=1)
    tokenizer = AutoTokenizer.from_pretrained(path)
    pairs = PairEncoder(tokenizer, 48, True).encode_pairs(load_pairs(random_pairs(8, seed=6)))
    results = {}
    for layout, attn in (("padded", "sdpa"), ("flex", "flex_attention")):
        torch.manual_seed(0)
        model = RewardModel.from_backbone(str(path), attn_implementation=attn).cuda()
        if compiled and layout == "flex":
            compile_repeated_blocks(model.backbone)
        collator = PairCollator(tokenizer.pad_token_id, packing=layout == "flex", whole_batch_row=layout == "flex",
                                pad_to_multiple_of=128 if layout == "flex" else None)
        batch = collator(pairs, np.arange(8))
        if layout == "flex":
            assert batch["input_ids"].shape[0] == 1
        reward = model(**{k: v.cuda() for k, v in batch.items() if isinstance(v, torch.Tensor)}).reward
        losses.bradley_terry_loss(reward[:8] - reward[8:]).mean().backward()
        grads = torch.cat([p.grad.view(-1) for p in model.parameters() if p.grad is not None])
        results[layout] = (reward.detach().cpu(), grads.cpu())
    assert torch.allclose(results["flex"][0], results["padded"][0], atol=1e-4)
    assert torch.allclose(results["flex"][1], results["padded"][1], atol=1e-4)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_first_token_pooling_on_a_decoder_is_refused(backbones, kind):
    # was: accepted, and a causal decoder's first token (the BOS token) attends to nothing after it, so every
    # response got one reward and training could learn nothing from the texts
    with pytest.raises(AccordError, match="pooling 'cls' reads a decoder's first token"):
        RewardModel.from_backbone(str(backbones[kind]), pooling="cls")


def test_decoder_detection():
    from transformers import BertConfig, GPT2Config, LlamaConfig, Qwen2Config

    assert is_decoder_config(LlamaConfig()) and is_decoder_config(Qwen2Config()) and is_decoder_config(GPT2Config())
    assert not is_decoder_config(BertConfig())


def test_save_and_load_round_trip(backbones, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    model = RewardModel.from_backbone(str(backbones["llama"]), uncertainty_head=True).eval()
    pairs = PairEncoder(tokenizer, 48, True).encode_pairs(load_pairs(random_pairs(4)))
    batch = PairCollator(tokenizer.pad_token_id, packing=True)(pairs, np.arange(4))
    inputs = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    model.save_pretrained(tmp_path / "rm", tokenizer=tokenizer, stats={"mean": 0.5, "sd": 2.0, "n": 8.0})
    loaded = RewardModel.from_pretrained(tmp_path / "rm")
    with torch.no_grad():
        before, after = model(**inputs), loaded(**inputs)
    assert torch.equal(before.reward, after.reward) and torch.equal(before.log_var, after.log_var)
    assert loaded.stats["sd"] == 2.0 and loaded.uncertainty_head and loaded.pooling == "last"
    with pytest.raises(AccordError, match="not an accord reward model"):
        RewardModel.from_pretrained(backbones["llama"])


@pytest.mark.parametrize("heads", [{}, {"uncertainty_head": True}, {"ensemble_heads": 3}])
def test_loading_a_saved_model_leaves_the_caller_s_random_stream_as_it_was(backbones, tmp_path, heads):
    # the new head's random initialisation, written over by the saved head, drew from torch's global stream: a
    # seeded RL loop that loaded (or scored with) a reward model sampled other numbers than one that did not, where
    # transformers' own AutoModel.from_pretrained draws none
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    RewardModel.from_backbone(str(backbones["llama"]), head_seed=0 if heads.get("ensemble_heads") else None,
                              **heads).save_pretrained(tmp_path / "rm", tokenizer=tokenizer)
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    RewardModel.from_pretrained(tmp_path / "rm")
    assert torch.equal(torch.rand(4), expected)


@pytest.mark.parametrize("lost", ["model.safetensors", "reward_head.safetensors"])
def test_a_saved_model_missing_a_file_is_one_error_naming_the_folder(backbones, tmp_path, lost):
    # was: transformers' "OSError: Error no file named model.safetensors..." or safetensors' FileNotFoundError, a
    # traceback from accord score and evaluate on a folder copied in part
    folder = RewardModel.from_backbone(str(backbones["llama"])).save_pretrained(tmp_path / "rm")
    (folder / lost).unlink()
    with pytest.raises(AccordError, match=f"folder {folder}: an incomplete reward model"):
        RewardModel.from_pretrained(folder)


def test_an_attention_kernel_that_is_not_installed_is_one_error(backbones):
    # was: transformers' ImportError traceback ("FlashAttention2 has been toggled on, but it cannot be used...") from
    # accord train --attn-implementation flash_attention_2 on a machine without flash-attn (any CPU one)
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed")
    with pytest.raises(AccordError, match=f"model {backbones['llama']}: attn_implementation 'flash_attention_2' does "
                                          "not load this backbone .*FlashAttention2"):
        RewardModel.from_backbone(str(backbones["llama"]), attn_implementation="flash_attention_2")


def test_save_without_stats_returns_the_folder(backbones, tmp_path):
    # the ``return`` sat inside ``if stats is not None``: saved without statistics, the documented Path was None
    model = RewardModel.from_backbone(str(backbones["bert"]))
    assert model.save_pretrained(tmp_path / "rm") == tmp_path / "rm"
    assert RewardModel.from_pretrained(tmp_path / "rm").stats is None


def test_score_of_a_model_without_statistics_has_no_normalised_reward(backbones, tmp_path):
    """Was: a model saved without reward_stats.json (save_pretrained without stats) scored a reward_normalised that
    was the reward itself (mean 0 and sd 1 taken for the missing statistics), a column that said normalised where
    nothing was. Now it is left out, as score of a multi-attribute model leaves it out without statistics; with
    statistics it is (reward - mean) / sd."""
    from transformers import AutoTokenizer

    from accord.reward import score

    tokenizer = AutoTokenizer.from_pretrained(backbones["bert"])
    responses = pd.DataFrame({"response": ["good answer", "bad answer", "the cat"]})
    pairs = pd.DataFrame({"chosen": ["good answer"], "rejected": ["bad answer"]})
    for stats in (None, {"mean": 0.5, "sd": 2.0, "n": 8.0}):
        folder = tmp_path / ("with" if stats else "without")
        RewardModel.from_backbone(str(backbones["bert"])).save_pretrained(folder, tokenizer=tokenizer, stats=stats)
        scored, both = score(folder, responses), score(folder, pairs)
        if stats is None:
            assert not [column for column in (*scored.columns, *both.columns) if "normalised" in column]
            continue
        np.testing.assert_allclose(scored["reward_normalised"], (scored["reward"] - 0.5) / 2.0)
        for side in ("chosen", "rejected"):
            np.testing.assert_allclose(both[f"reward_normalised_{side}"], (both[f"reward_{side}"] - 0.5) / 2.0)


def test_saving_over_an_earlier_model_leaves_no_mix_of_the_two(backbones, tmp_path):
    """Was: a save that died half-way over an earlier model (here in the tokenizer's save, after the new backbone
    was written) left the earlier reward_model.json and head beside the new backbone, a folder that loaded as a mix
    of the two; and a model saved without statistics kept the earlier model's reward_stats.json, so scores were
    normalised by another model's rewards. Now the new model's files land together once all are written: the
    earlier model stays whole until then, and no stale statistics stay."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbones["bert"])
    folder = tmp_path / "rm"
    RewardModel.from_backbone(str(backbones["bert"])).save_pretrained(folder, tokenizer=tokenizer,
                                                                      stats={"mean": 0.5, "sd": 2.0, "n": 8.0})
    assert RewardModel.read_meta(folder)["pooling"] == "mean"

    class Dies:
        def save_pretrained(self, directory):
            raise KeyboardInterrupt  # the process stopped mid-save

    with pytest.raises(KeyboardInterrupt):
        RewardModel.from_backbone(str(backbones["bert"]), pooling="cls").save_pretrained(folder, tokenizer=Dies())
    kept = RewardModel.from_pretrained(folder)  # the earlier model, whole
    assert kept.pooling == "mean" and kept.stats == {"mean": 0.5, "sd": 2.0, "n": 8.0}
    RewardModel.from_backbone(str(backbones["bert"]), pooling="cls").save_pretrained(folder)
    loaded = RewardModel.from_pretrained(folder)
    assert loaded.pooling == "cls" and loaded.stats is None


# ----------------------------------------------------------------------------------------------------------------------
# evaluation metrics
# ----------------------------------------------------------------------------------------------------------------------


def test_pairwise_metrics_hand_values():
    d = np.array([LOG3, -LOG3, 0.0])  # P(chosen) = 3/4, 1/4, 1/2
    p_chosen = np.array([1.0, 1.0, 0.5])  # the third pair's soft label is a tie
    votes = pd.DataFrame({"votes_chosen": [3, 1, 2], "votes_rejected": [1, 3, 2], "votes_tie": [1, 0, 0]})
    m = pairwise_metrics(d, p_chosen, np.zeros(3), votes=votes)
    assert m["n_ties"] == 1 and m["accuracy"] == 0.5
    assert math.isclose(m["nll"], (-math.log(0.75) - math.log(0.25)) / 2, rel_tol=1e-9)
    assert math.isclose(m["brier"], (0.25**2 + 0.75**2) / 2, rel_tol=1e-9)  # binary: (p - y)^2
    # soft labels y = (1, 1, 1/2)
    assert math.isclose(m["soft_brier"], (0.25**2 + 0.75**2 + 0) / 3, rel_tol=1e-9)
    # votes: 12 non-tie votes, the model agrees with 3 + 3 and is even on 4
    assert m["n_votes"] == 12 and m["n_tie_votes"] == 1
    assert math.isclose(m["votes_accuracy"], (3 + 3 + 0.5 * 4) / 12, rel_tol=1e-9)
    expected_nll = -(3 * math.log(0.75) + math.log(0.25) + math.log(0.25) + 3 * math.log(0.75) + 4 * math.log(0.5))
    assert math.isclose(m["votes_nll"], expected_nll / 12, rel_tol=1e-9)
    expected_brier = (3 * 0.25**2 + 0.75**2 + 0.75**2 + 3 * 0.25**2 + 4 * 0.25) / 12
    assert math.isclose(m["votes_brier"], expected_brier, rel_tol=1e-9)
    # vote shares 3/4, 1/4, 1/2 equal the predictions: perfectly calibrated against the votes
    assert m["votes_ece"] < 1e-12


def test_perfectly_calibrated_soft_predictions_have_zero_soft_ece():
    y = np.array([0.15, 0.35, 0.55, 0.85])
    m = pairwise_metrics(np.log(y / (1 - y)), y, np.zeros(4))
    assert m["soft_ece"] < 1e-9 and m["soft_brier"] < 1e-12



def test_pairwise_metrics_find_the_same_ties_in_float32_labels():
    # the trainer evaluates on float32 labels: p_chosen = p_tie = 1/3 left p_rejected 3e-8 off p_chosen, so its
    # eval_* metrics counted no tie where `accord evaluate` (float64 labels) counted one
    p_chosen, p_tie = np.array([1 / 3, 0.9]), np.array([1 / 3, 0.0])
    d = np.array([0.4, 0.7])
    exact = pairwise_metrics(d, p_chosen, p_tie)
    single = pairwise_metrics(d, p_chosen.astype(np.float32), p_tie.astype(np.float32))
    assert exact["n_ties"] == single["n_ties"] == 1 and exact["accuracy"] == single["accuracy"] == 1.0
    assert math.isclose(exact["nll"], single["nll"], rel_tol=1e-9)


def test_pairwise_metrics_of_huge_logits_warn_nothing():
    # 1 / (1 + exp(-d)) overflowed for d < -709 with "RuntimeWarning: overflow encountered in exp"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = pairwise_metrics(np.array([-1000.0, 1000.0]), np.array([1.0, 1.0]), np.zeros(2))
    assert m["accuracy"] == 0.5 and m["brier"] == 0.5


def test_pairwise_nll_of_a_confidently_wrong_model_is_its_log_loss_not_a_cap():
    # the NLLs read log(sigmoid(d)) clipped at 1e-12: every pair the model got wrong by more than d = 27.6 cost
    # 27.6, so a model wrong by d = -300 scored the NLL of one wrong by -28, and the held-out soft_nll was not the
    # soft_bce loss the model trains on, for the same pairs
    d = np.array([-40.0, -300.0, 35.0, 2.0, 0.0])
    p_chosen, p_tie = np.array([1.0, 0.9, 0.2, 0.6, 0.5]), np.array([0.0, 0.0, 0.1, 0.0, 0.0])
    votes = pd.DataFrame({"votes_chosen": [2, 3, 0, 1, 1], "votes_rejected": [0, 1, 2, 1, 1]})
    m = pairwise_metrics(d, p_chosen, p_tie, votes=votes)
    minus_log_p = np.logaddexp(0.0, -d)  # -log sigmoid(d), exactly
    minus_log_q = np.logaddexp(0.0, d)  # -log sigmoid(-d)
    y = p_chosen + p_tie / 2
    hard = [minus_log_p[0], minus_log_p[1], minus_log_q[2], minus_log_p[3]]  # the fifth is a tie
    assert m["nll"] == pytest.approx(np.mean(hard), rel=1e-12)
    assert m["soft_nll"] == pytest.approx(np.mean(y * minus_log_p + (1 - y) * minus_log_q), rel=1e-12)
    n_c, n_r = votes["votes_chosen"].to_numpy(), votes["votes_rejected"].to_numpy()
    assert m["votes_nll"] == pytest.approx((n_c * minus_log_p + n_r * minus_log_q).sum() / (n_c + n_r).sum(),
                                           rel=1e-12)
    soft_bce = losses.soft_bce_loss(torch.as_tensor(d), torch.as_tensor(y)).double().mean().item()
    assert m["soft_nll"] == pytest.approx(soft_bce, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-30, 30), st.booleans()), min_size=1, max_size=12))
def test_pairwise_hard_brier_is_the_binary_brier_score(pairs):
    """``brier`` against the hard labels was ``metrics.brier`` of the two columns (chosen, rejected), twice the
    binary Brier score ``(p - y)^2`` that ``soft_brier`` and ``votes_brier`` report: on soft labels that are already
    hard the two disagreed by a factor of two. Now they are equal, and the score is the field's binary one."""
    d = np.array([logit for logit, _ in pairs])
    p_chosen = np.array([float(won) for _, won in pairs])  # 1: chosen won outright, 0: rejected did
    m = pairwise_metrics(d, p_chosen, np.zeros(len(d)))
    by_hand = float(np.mean((1.0 / (1.0 + np.exp(-d)) - p_chosen) ** 2))
    assert m["brier"] == pytest.approx(by_hand, abs=1e-12)
    assert m["brier"] == pytest.approx(m["soft_brier"], abs=1e-12)
    assert 0.0 <= m["brier"] <= 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.0, 0.5, -0.5, 2.0, -3.0]), st.sampled_from([0.0, 0.2, 0.8, 1.0])),
                min_size=1, max_size=20), st.integers(1, 12))
def test_hard_ece_counts_an_even_pair_as_half_right_like_the_accuracy(rows, n_bins):
    # was: at d = 0 the top label was "chosen" by column order, so the hard ECE changed when the two sides of a pair
    # were shown the other way round, and disagreed with the accuracy's half credit
    d, p_chosen = (np.array(column) for column in zip(*rows))
    m = pairwise_metrics(d, p_chosen, n_bins=n_bins)
    swapped = pairwise_metrics(-d, 1.0 - p_chosen, n_bins=n_bins)
    for key in ("accuracy", "nll", "brier", "ece"):
        assert (key in m) == (key in swapped) and m.get(key) == pytest.approx(swapped.get(key))
    if "ece" in m:  # the reference: top-label confidence against the accuracy's hits, bin by bin
        keep = p_chosen != 0.5
        prob = 1.0 / (1.0 + np.exp(-d[keep]))
        hit = np.where(p_chosen[keep] > 0.5, d[keep] > 0, d[keep] < 0) + 0.5 * (d[keep] == 0)
        confidence = np.maximum(prob, 1.0 - prob)
        assert m["accuracy"] == pytest.approx(hit.mean())
        assert m["ece"] == pytest.approx(metrics.calibration_error(confidence, hit, n_bins))


def test_votes_accuracy_reads_the_sign_of_d_as_the_hard_accuracy_does():
    # was: votes_accuracy compared sigmoid(d) with 1/2, which a |d| below 1e-16 rounds to exactly, so a pair the
    # hard accuracy counted right (d > 0) was half right against its votes
    d = np.array([1e-17, -1e-17])
    votes = pd.DataFrame({"votes_chosen": [1, 0], "votes_rejected": [0, 1]})
    m = pairwise_metrics(d, np.array([1.0, 0.0]), votes=votes)
    assert m["accuracy"] == m["votes_accuracy"] == 1.0


@pytest.mark.parametrize("name", ["d", "p_chosen", "p_tie"])
def test_pairwise_metrics_name_a_nan_input(name):
    # was: NaN metrics, or an error about "probabilities" (id 0, column 'chosen') the caller never passed
    arrays = {"d": np.array([0.3, -1.0, 2.0]), "p_chosen": np.array([1.0, 0.0, 0.7]), "p_tie": np.zeros(3)}
    arrays[name][1] = np.nan
    with pytest.raises(AccordError, match=f"{name}: 1 of 3 pairs are NaN \\(the first at position 1\\)"):
        pairwise_metrics(arrays["d"], arrays["p_chosen"], arrays["p_tie"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(0.0, 1.0), st.floats(0.0, 1e-6)), min_size=1, max_size=10))
def test_pairwise_metrics_take_every_soft_label_load_pairs_accepts(rows):
    """A soft label whose p_chosen + p_tie passes 1 by float rounding (load_pairs accepts up to 1 + 1e-6) made the
    soft target ``p_chosen + p_tie / 2`` pass 1, and the soft ECE failed with a bare ValueError ('outcome: 1 values are
    not probabilities'): `accord evaluate` and `accord calibrate` stopped with a traceback on such a file. Now the
    target is taken at 1, and the metrics agree with those of the label without the rounding."""
    d = np.array([row[0] for row in rows])
    p_tie = np.array([row[2] for row in rows])
    p_chosen = np.array([row[1] for row in rows]) * (1.0 - p_tie)
    p_chosen[0] = 1.0  # over 1 by p_tie
    loaded = load_pairs(pd.DataFrame({"chosen": ["a"] * len(d), "rejected": ["b"] * len(d), "p_chosen": p_chosen,
                                      "p_tie": p_tie}))
    m = pairwise_metrics(d, loaded["p_chosen"].to_numpy(), loaded["p_tie"].to_numpy())
    exact = pairwise_metrics(d, p_chosen, np.where(np.arange(len(d)) == 0, 0.0, p_tie))
    for key, value in exact.items():
        assert m[key] == pytest.approx(value, abs=1e-5), key


@pytest.mark.parametrize("p_chosen, p_tie, name", [(1.5, 0.0, "p_chosen"), (0.5, -0.1, "p_tie"),
                                                   (0.8, 0.3, "p_chosen \\+ p_tie")])
def test_pairwise_metrics_name_a_label_that_is_no_probability(p_chosen, p_tie, name):
    # was: ValueError "outcome: 1 values are not probabilities" (the soft ECE's argument, not the caller's)
    with pytest.raises(AccordError, match=f"^{name}: 1 of 2 pairs are not probabilities in \\[0, 1\\] \\(the first "
                                          "at position 1"):
        pairwise_metrics(np.array([0.3, -1.0]), np.array([1.0, p_chosen]), np.array([0.0, p_tie]))


@pytest.mark.parametrize("column, value", [("margin", "big"), ("margin", float("inf")), ("uncertainty", "high")])
def test_load_pairs_refuses_a_margin_or_uncertainty_that_is_not_a_number(column, value):
    # such a value was read as NaN, i.e. as "no margin" / "no uncertainty", without a word
    with pytest.raises(AccordError, match=f"column '{column}', row 1: must be a finite number"):
        load_pairs({"chosen": ["a", "b"], "rejected": ["c", "d"], column: [0.5, value]})


USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize("chosen, column, fragment", [
    # a message list on one row and plain text on another: dict()'s ValueError from the implicit-prompt split
    ([[USER, {"role": "assistant", "content": "a"}], "plain"], "chosen", "row 1"),
    ([[{"content": "a"}], [{"content": "b"}]], "chosen", "row 0"),  # no role: KeyError
    ([[USER, {"role": "assistant", "content": None}], [USER]], "chosen", "row 0"),  # trained on the text "None"
    ([[], ["x"]], "chosen", "row 0"),  # trained on the texts "[]" and "['x']"
])
def test_load_pairs_refuses_what_is_neither_a_text_nor_chat_messages(chosen, column, fragment):
    rejected = [[USER, {"role": "assistant", "content": "b"}], [USER, {"role": "assistant", "content": "c"}]]
    with pytest.raises(AccordError, match=f"column '{column}', {fragment}"):
        load_pairs({"chosen": chosen, "rejected": rejected})


def test_load_pairs_refuses_a_prompt_of_malformed_messages():
    with pytest.raises(AccordError, match="column 'prompt', row 0"):  # was KeyError: 'role'
        load_pairs({"prompt": [[{"content": "q"}]], "chosen": ["a"], "rejected": ["b"]})
    assert list(load_pairs({"prompt": [[]], "chosen": ["a"], "rejected": ["b"]})["prompt"]) == [""]  # not "[]"


def test_build_tiny_backbone_writes_without_library_bars(tmp_path, capfd):
    """Writing a tiny random backbone prints nothing: transformers' 'Writing model shards' bar stays hidden (it
    leaked into every benchmark that builds one), and transformers' bars are left enabled afterwards."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.enable_progress_bar()  # as a fresh process has them (an earlier test may have turned them off)
    try:
        build_tiny_backbone(tmp_path / "llama", "llama", texts=[" ".join(WORDS)], seed=1)
        captured = capfd.readouterr()
        assert "Writing model shards" not in captured.err + captured.out
        assert transformers_logging.is_progress_bar_enabled()
    finally:
        if not was_enabled:
            transformers_logging.disable_progress_bar()


def test_evaluate_and_score_without_progress_print_no_loading_bar(backbones, tmp_path, capfd):
    """evaluate and score with progress=False (their default) print no bar: transformers' 'Loading weights' bar of
    the saved model was drawn all the same (it leaked into benchmarks/reward_quality.py once per loss)."""
    from transformers import AutoTokenizer

    from accord.reward import score
    from accord.reward.evaluate import evaluate

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    RewardModel.from_backbone(str(backbones["llama"])).save_pretrained(tmp_path / "rm", tokenizer=tokenizer)
    capfd.readouterr()
    metrics = evaluate(tmp_path / "rm", random_pairs(4), device="cpu")
    scores = score(tmp_path / "rm", random_pairs(4), device="cpu")
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
    assert np.isfinite(metrics["accuracy"]) and len(scores) == 4


WRITERS = {
    "csv": lambda frame, path: frame.to_csv(path, index=False),
    "tsv": lambda frame, path: frame.to_csv(path, index=False, sep="\t"),
    "jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True),
    "json": lambda frame, path: frame.to_json(path, orient="records"),
}


@pytest.mark.parametrize("compression", [".gz", ".bz2", ".xz"])
@pytest.mark.parametrize("fmt", list(WRITERS))
def test_the_reward_readers_take_the_compressed_files_the_pipeline_takes(tmp_path, fmt, compression):
    """``accord aggregate`` reads ``judgments.csv.gz``; train, evaluate and score refused every compressed file
    ("unknown suffix '.gz'"). The pairs, a multi-attribute table and a stepwise table are each read as from the
    uncompressed file (texts and ids as written)."""
    from accord.reward.attributes import read_attribute_table
    from accord.reward.evaluate import _read_frame
    from accord.reward.steps import load_steps

    pairs = random_pairs(5).assign(pair_id=["007", "8", "9", "10", "11"], chosen=["04", "NA", "None", "a", "b"])
    attributes = pairs[["prompt", "chosen", "rejected"]].assign(p_chosen_helpful=[0.9, 0.2, 0.5, 0.7, 1.0])
    tables = [(pairs, load_pairs), (pairs, _read_frame), (attributes, lambda path: read_attribute_table(path)[0])]
    if fmt in ("jsonl", "json"):  # a list of steps per solution needs JSON
        steps = pd.DataFrame({"prompt": ["q", "r"], "completions": [["a", "b", "c"], ["d"]],
                              "labels": [[1, 1, 0], [1]]})
        tables.append((steps, load_steps))
    for number, (frame, read) in enumerate(tables):
        plain, packed = tmp_path / f"t{number}.{fmt}", tmp_path / f"t{number}.{fmt}{compression}"
        WRITERS[fmt](frame, plain)
        WRITERS[fmt](frame, packed)  # pandas compresses by the suffix
        expected = read(plain)
        pd.testing.assert_frame_equal(read(packed), expected)
    assert list(load_pairs(tmp_path / f"t0.{fmt}{compression}")["chosen"]) == ["04", "NA", "None", "a", "b"]


def test_a_compressed_cleaned_dataset_is_checked_as_a_cleaned_one(tmp_path):
    """A cleaned dataset the user compressed is read as a table and checked as a cleaned dataset (the cleaned
    reader itself reads uncompressed files with their provenance)."""
    frame = random_pairs(5)
    write_cleaned(frame, tmp_path / "clean.jsonl")
    packed = tmp_path / "clean.jsonl.gz"
    packed.write_bytes(gzip.compress((tmp_path / "clean.jsonl").read_bytes()))
    pd.testing.assert_frame_equal(load_pairs(packed), load_pairs(tmp_path / "clean.jsonl"))
    broken = pd.read_json(tmp_path / "clean.jsonl", lines=True).assign(weight=-1.0)
    broken.to_json(tmp_path / "broken.jsonl.gz", orient="records", lines=True)
    with pytest.raises(AccordError, match="broken.jsonl.gz.*column 'weight'"):
        load_pairs(tmp_path / "broken.jsonl.gz")


def test_a_chat_prompt_the_chat_template_refuses_is_one_error_naming_its_row_on_every_pairwise_path(backbones,
                                                                                                      tmp_path, capsys):
    """A chat template that refuses a conversation (many raise on a system turn: "System role not supported")
    stopped `accord train`, `evaluate`, `score` and `calibrate` on pairs with jinja's TemplateError traceback. Now,
    as on the step path, one line naming the column and the row of the first prompt the template refuses, and why
    (exit status 2; nothing written), and the file that holds it (evaluate, score and calibrate named no file)."""
    import json
    import shutil

    from transformers import AutoTokenizer

    from accord.cli import main as accord_main
    from accord.reward.model import META_FILE
    from accord.reward.tiny import CHAT_TEMPLATE

    refusing = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                "{% endif %}" + CHAT_TEMPLATE)
    backbone = tmp_path / "no-system"
    shutil.copytree(backbones["llama"], backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.chat_template = refusing
    tokenizer.save_pretrained(backbone)
    system = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the cat sat"}]
    data = tmp_path / "pairs.jsonl"
    pd.DataFrame({"prompt": ["a question", "water bottles", system], "chosen": ["good answer", "yes", "the mat"],
                  "rejected": ["bad", "no", "dog"], "p_chosen": [0.9, 0.7, 0.8]}).to_json(data, orient="records",
                                                                                          lines=True)

    def refused(args: list[str], source: object = data) -> None:
        code = accord_main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, (args[0], err)
        # the file too (was: evaluate, score and calibrate named the column and row alone)
        assert f"file {source}, column 'prompt', row 2: the tokenizer's chat template cannot write" in err[0], err[0]
        assert "System role not supported" in err[0], err[0]

    out = tmp_path / "rm"
    refused(["train", "--model", str(backbone), "--train-path", str(data), "--output-dir", str(out),
             "--max-steps", "1", "--no-progress"])
    assert not out.exists()
    # a model trained through a template that takes a system turn, then given one that does not
    plain = tmp_path / "plain.jsonl"
    pd.DataFrame({"prompt": ["a question", "water bottles"], "chosen": ["good answer", "yes"],
                  "rejected": ["bad", "no"], "p_chosen": [0.9, 0.7]}).to_json(plain, orient="records", lines=True)
    assert accord_main(["train", "--model", str(backbones["llama"]), "--train-path", str(plain), "--output-dir",
                        str(out), "--max-steps", "1", "--no-progress"]) == 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = refusing
    tokenizer.save_pretrained(out)
    meta = (out / META_FILE).read_text()
    capsys.readouterr()
    refused(["evaluate", str(out), str(data), "--out", str(tmp_path / "metrics.json"), "--quiet"])
    refused(["score", str(out), str(data), "--out", str(tmp_path / "scores.csv"), "--quiet"])
    responses = tmp_path / "responses.jsonl"
    pd.DataFrame({"prompt": ["a question", "water bottles", system],
                  "response": ["good", "yes", "the mat"]}).to_json(responses, orient="records", lines=True)
    refused(["score", str(out), str(responses), "--out", str(tmp_path / "scores.csv"), "--quiet"], responses)
    shutil.copytree(out, tmp_path / "rm2")  # an ensemble of two members
    refused(["score", f"{out},{tmp_path / 'rm2'}", str(responses), "--out", str(tmp_path / "scores.csv"), "--quiet"],
            responses)
    refused(["calibrate", str(out), str(data)])
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "scores.csv").exists()
    assert json.loads((out / META_FILE).read_text()) == json.loads(meta)


def test_a_response_the_chat_template_refuses_is_one_error_naming_its_column_and_row(backbones):
    """A template that takes every prompt but refuses a conversation with its response (a role order, a content it
    raises on) was jinja's traceback from the pairwise encoder; now one error naming the side's column and the row."""
    from transformers import AutoTokenizer

    from accord.datasets import ValidationError
    from accord.reward.tiny import CHAT_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    tokenizer.chat_template = ("{% for m in messages %}{% if m['role'] == 'assistant' and m['content'] == 'bad' %}"
                               "{{ raise_exception('no bad answers') }}{% endif %}{% endfor %}" + CHAT_TEMPLATE)
    frame = load_pairs(pd.DataFrame({"prompt": ["a question", "water bottles", "the cat"],
                                     "chosen": ["good", "yes", "the mat"], "rejected": ["no", "dog", "bad"]}))
    encoder = PairEncoder(tokenizer, 64, True, use_chat_template=True)
    with pytest.raises(ValidationError, match=r"column 'rejected', row 2: .*\(no bad answers\)"):
        encoder.encode_pairs(frame)


def test_text_parts_reach_a_chat_template_as_their_text(backbones):
    """A text-only chat template prints a message's content as it is: given the list of parts it printed their
    Python repr ("[{'type': 'text', ...}]"), and the reward model trained on that. The parts reach it as their text,
    on the pairwise path and the step path alike."""
    from transformers import AutoTokenizer

    from accord.datasets.cleaned import render_prompts

    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    assert tokenizer.chat_template
    parts = [{"role": "user", "content": [{"type": "text", "text": "what is"}, {"type": "text", "text": "the cat"}]}]
    text = [{"role": "user", "content": "what is\nthe cat"}]
    frame = pd.DataFrame({"prompt": [parts], "chosen": ["good"], "rejected": ["bad"]})
    encoder = PairEncoder(tokenizer, 64, True, use_chat_template=True)
    read = encoder.encode_pairs(load_pairs(frame))
    expected = encoder.encode_pairs(load_pairs(frame.assign(prompt=[text])))
    assert read.chosen.ids == expected.chosen.ids and read.rejected.ids == expected.rejected.ids
    assert "'type'" not in tokenizer.decode(read.chosen.ids[0])
    rendered = render_prompts([parts], tokenizer)
    assert rendered == render_prompts([text], tokenizer) and "'type'" not in rendered[0]


def test_pairs_whose_message_content_is_a_list_of_text_parts_read_as_their_text(backbones):
    """Chat messages whose content is a list of parts (the OpenAI / Hugging Face multimodal layout, ``[{"type":
    "text", "text": ...}]``) were refused in a preference dataset ("must be a text or a list of chat messages").
    Now their text parts are read, in order, one line each, as the same text given as one content (without a chat
    template or with one); a part that is not text is one error naming the column and the row (accord reads text
    only)."""
    from transformers import AutoTokenizer

    from accord.datasets import ValidationError

    def conversation(*texts: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]},
                {"role": "assistant", "content": [{"type": "text", "text": "the answer"}]}]

    parts = pd.DataFrame({"prompt": [[{"role": "user", "content": [{"type": "text", "text": "what is"},
                                                                    {"type": "text", "text": "the cat"}]}], "plain"],
                          "chosen": ["good", "yes"], "rejected": ["bad", "no"]})
    texts = parts.assign(prompt=[[{"role": "user", "content": "what is\nthe cat"}], "plain"])
    tokenizer = AutoTokenizer.from_pretrained(backbones["llama"])
    encoder = PairEncoder(tokenizer, 64, True, use_chat_template=False)
    read, expected = encoder.encode_pairs(load_pairs(parts)), encoder.encode_pairs(load_pairs(texts))
    assert read.chosen.ids == expected.chosen.ids
    assert read.rejected.ids == expected.rejected.ids
    assert load_pairs(pd.DataFrame({"chosen": [conversation("a", "b")], "rejected": [conversation("a", "b")[:1] + [
        {"role": "assistant", "content": "no"}]]}))["prompt"].tolist() == [conversation("a", "b")[:1]]
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/cat.png"}}]}]
    with pytest.raises(ValidationError, match=r"column 'rejected', row 1: .*'image_url'.*text only"):
        load_pairs(pd.DataFrame({"chosen": ["a", "b"], "rejected": ["c", image]}))
    with pytest.raises(ValidationError, match=r"column 'prompt', row 0: .*'image_url'.*text only"):
        load_pairs(pd.DataFrame({"prompt": [image], "chosen": ["a"], "rejected": ["c"]}))


@pytest.mark.parametrize("prompt", ["", None, []])
def test_conversations_without_a_prompt_render_alike_given_an_empty_prompt_or_none(prompt, tmp_path):
    """Pairs of chat messages with no prompt (the cleaned dataset writes ``[]`` for it, a table may hold ``""`` or
    nothing) were rendered after an empty user turn ("<|user|></s>"), where the same pairs without a prompt column,
    the same messages scored as responses and a step prompt ``[]`` have no prompt tokens: a model trained on one
    read another text than it scored. Every path now renders the conversation alone."""
    from accord.reward.data import response_texts
    from accord.reward.tiny import word_tokenizer

    encoder = PairEncoder(word_tokenizer(), 64, is_decoder=True)
    turn = [{"role": "assistant", "content": "the cat sat"}]
    other = [{"role": "assistant", "content": "the dog runs"}]
    alone = encoder.encode_pairs(load_pairs(pd.DataFrame({"chosen": [turn], "rejected": [other]})))
    given = pd.DataFrame({"pair_id": ["p0"], "prompt": [prompt], "chosen": [turn], "rejected": [other],
                          "p_chosen": [0.8], "p_tie": [0.0], "uncertainty": [np.nan], "weight": [1.0],
                          "n_judgments": [3]})
    sources = [given, write_cleaned(given.assign(prompt=[[]]), tmp_path / "clean.parquet"),
               write_cleaned(given.assign(prompt=[[]]), tmp_path / "clean.jsonl")]
    for source in sources:
        pairs = encoder.encode_pairs(load_pairs(source))
        assert pairs.chosen.ids == alone.chosen.ids and pairs.rejected.ids == alone.rejected.ids, source
    scored = encoder.encode(*response_texts(pd.DataFrame({"prompt": [prompt], "response": [turn]})))
    assert scored.ids == alone.chosen.ids


def test_conversations_in_parquet_share_their_prompt_as_in_json_lines(tmp_path):
    """A Parquet file of whole conversations (TRL's implicit-prompt layout) fills each message with the keys of every
    other message of its column: one 'name' in a chosen reply gave every chosen user turn 'name': None, which no
    rejected one had, so no pair shared a prompt and the conversations were whole responses (prompt []), where JSON
    Lines and the frame itself split off the shared user turn."""
    user = {"role": "user", "content": "the cat sat"}
    frame = pd.DataFrame({"chosen": [[user, {"role": "assistant", "content": "yes", "name": "bot"}],
                                     [user, {"role": "assistant", "content": "good"}]],
                          "rejected": [[user, {"role": "assistant", "content": "no"}],
                                       [user, {"role": "assistant", "content": "bad"}]]})
    frame.to_parquet(tmp_path / "pairs.parquet")
    frame.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    expected = load_pairs(frame)
    assert expected["prompt"].tolist() == [[user]] * 2
    for name in ("pairs.parquet", "pairs.jsonl"):
        pd.testing.assert_frame_equal(load_pairs(tmp_path / name), expected, obj=name)


def test_a_message_s_other_keys_reach_the_chat_template_on_the_pairwise_step_and_score_paths(backbones, tmp_path,
                                                                                            monkeypatch, capsys):
    """Was: the pairwise path (training, evaluation, `accord score`) kept only a message's ``role`` and ``content``
    while the step path kept every key, so the same conversation with a ``name`` (or ``tool_calls``,
    ``tool_call_id``) was another text on the two tasks, and a template that writes the name never saw it on pairs.
    Now both read a cell's messages through one function, as Hugging Face's ``apply_chat_template`` takes them: as
    written, every key (what a template does with a key is the template's business)."""
    import shutil

    from transformers import AutoTokenizer

    from accord.cli import main as accord_main
    from accord.datasets.cleaned import render_prompts
    from accord.reward import data as reward_data
    from accord.reward.data import response_texts
    from accord.reward.steps import StepEncoder, load_steps, separator_token

    backbone = tmp_path / "named"
    shutil.copytree(backbones["llama"], backbone)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{% if m.name is defined %}{{ m.name }} "
                               "{% endif %}{{ m['content'] }}</s>{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    tokenizer.save_pretrained(backbone)
    prompt = [{"role": "system", "content": "be brief", "name": "dog"}, {"role": "user", "content": "the cat sat"}]
    chosen = [{"role": "assistant", "content": "on the mat", "name": "cat"}]
    pairs = pd.DataFrame({"prompt": [prompt], "chosen": [chosen],
                          "rejected": [[{"role": "assistant", "content": "no"}]], "p_chosen": [0.9]})
    encoder = PairEncoder(tokenizer, 128, True)
    encoded = encoder.encode_pairs(load_pairs(pairs))
    n = int(encoded.chosen.prompt_lengths[0])

    def templated(messages: list, generation: bool) -> list[int]:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    as_written = templated(prompt, True)
    assert encoded.chosen.ids[0][:n] == as_written
    assert encoded.chosen.ids[0] == templated(prompt + chosen, False)
    # the step path: the same prompt, the same tokens (no start token of the tokenizer's before the template's)
    _, sep = separator_token(tokenizer, None)
    steps = StepEncoder(tokenizer, 128, True, sep).encode(
        load_steps(pd.DataFrame({"prompt": [prompt], "completions": [["on the mat"]], "labels": [[1]]})))
    assert steps.ids[0][:n] == as_written
    assert render_prompts([prompt], tokenizer) == [tokenizer.apply_chat_template(prompt, tokenize=False,
                                                                                 add_generation_prompt=True)]
    # responses scored: the same tokens as the pair's chosen side
    scored = encoder.encode(*response_texts(pd.DataFrame({"prompt": [prompt], "response": [chosen]})))
    assert scored.ids == [encoded.chosen.ids[0]]
    # the command line: what accord train and accord score give the template
    seen: list[list] = []
    real = reward_data._template_ids_batch

    def spy(tokenizer, conversations, add_generation_prompt):
        seen.extend(conversations)
        return real(tokenizer, conversations, add_generation_prompt)

    monkeypatch.setattr(reward_data, "_template_ids_batch", spy)
    data, responses = tmp_path / "pairs.jsonl", tmp_path / "responses.parquet"
    pairs.to_json(data, orient="records", lines=True)
    pd.DataFrame({"prompt": [prompt, [{"role": "user", "content": "why"}]],
                  "response": [chosen, [{"role": "assistant", "content": "yes"}]]}).to_parquet(responses)
    model = tmp_path / "rm"
    for argv in (["train", "--model", str(backbone), "--train-path", str(data), "--output-dir", str(model),
                  "--max-steps", "1", "--no-progress"],
                 ["score", str(model), str(responses), "--out", str(tmp_path / "scores.csv"), "--quiet"]):
        seen.clear()
        assert accord_main(argv) == 0, capsys.readouterr().err
        assert prompt in seen and prompt + chosen in seen, (argv[0], seen)
        # (Parquet's None for a key another message has is no key, as written)
        assert not [m for c in seen for m in c if None in m.values()], (argv[0], seen)


@pytest.mark.parametrize("content", [[], [{"type": "text", "text": None}], [{"type": "text"}],
                                     [{"type": "text", "text": 4}], 4, None])
def test_a_message_content_one_task_refuses_is_refused_by_the_other(content):
    """Was: a step prompt whose message content was an empty list of parts or a text part without a text (null, or
    a number) was read as an empty text ("") or the number's text, while the same prompt of a pair was refused ("must
    be a text or a list of chat messages"): one conversation, accepted by one task and refused by the other. Now
    both refuse it, one error naming the column and the row; a message without a content (None) alike."""
    from accord.datasets import ValidationError
    from accord.reward.steps import load_steps

    messages = [{"role": "user", "content": "the cat"}, {"role": "user", "content": content}]
    with pytest.raises(ValidationError, match=r"column 'prompt', row 1: .*chat messages"):
        load_pairs(pd.DataFrame({"prompt": ["a question", messages], "chosen": ["a", "b"], "rejected": ["c", "d"]}))
    with pytest.raises(ValidationError, match=r"column 'prompt', row 1: .*chat messages"):
        load_steps(pd.DataFrame({"prompt": ["a question", messages], "completions": [["a"], ["b"]],
                                 "labels": [[1], [0]]}))


def test_a_step_prompt_ending_with_the_assistant_s_turn_is_continued_by_the_steps():
    """A step prompt whose last message is the assistant's (a solution's opening written by the assistant, the steps
    its continuation) was rendered with the generation prompt after it, as a closed turn and a new empty one
    ("<|assistant|>let us see</s><|assistant|>" before the steps). Now, as TRL renders a prompt (its last turn the
    assistant's: continue_final_message; a user's or a tool's: the generation prompt), the steps continue that turn."""
    from accord.datasets.cleaned import render_prompts
    from accord.reward.steps import StepEncoder, load_steps, separator_token
    from accord.reward.tiny import word_tokenizer

    tokenizer = word_tokenizer()
    opened = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "let us see"}]
    asked = opened[:1]
    rendered = render_prompts([opened, asked, opened], tokenizer)
    assert rendered[0] == rendered[2] == tokenizer.apply_chat_template(opened, tokenize=False,
                                                                       continue_final_message=True)
    assert rendered[0].endswith("let us see") and rendered[0].count("<|assistant|>") == 1
    assert rendered[1] == tokenizer.apply_chat_template(asked, tokenize=False, add_generation_prompt=True)
    _, sep = separator_token(tokenizer, None)
    steps = StepEncoder(tokenizer, 128, True, sep).encode(
        load_steps(pd.DataFrame({"prompt": [opened], "completions": [["so it sat"]], "labels": [[1]]})))
    assert tokenizer.decode(steps.ids[0]).count("<|assistant|>") == 1


def test_a_tool_call_without_content_reaches_the_chat_template_on_both_tasks():
    """An assistant message that calls a tool has no content in the OpenAI / Hugging Face layout (``"content":
    null``, ``"tool_calls": [...]``), which ``apply_chat_template`` takes; accord refused such a conversation on
    both tasks ("must be a text or a list of chat messages"). Now a message without a content that carries
    ``tool_calls`` is read as written on the pairwise and step paths alike (without a chat template its line is
    the role and the calls' JSON text); a message without a content and without tool calls is still refused."""
    from accord.datasets import ValidationError
    from accord.datasets.cleaned import render_prompts
    from accord.reward.steps import load_steps
    from accord.reward.tiny import word_tokenizer

    tokenizer = word_tokenizer()
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{% if m.tool_calls is defined %}"
                               "{% for c in m.tool_calls %}call {{ c.function.name }}{% endfor %}{% endif %}"
                               "{% if m.content %}{{ m['content'] }}{% endif %}</s>{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    call = {"role": "assistant", "content": None,
            "tool_calls": [{"type": "function", "function": {"name": "water", "arguments": {"cat": "yes"}}}]}
    prompt = [{"role": "user", "content": "the cat"}, call, {"role": "tool", "content": "4", "tool_call_id": "c"}]
    written = [{k: v for k, v in m.items() if v is not None} for m in prompt]
    expected = tokenizer.apply_chat_template(written, tokenize=False, add_generation_prompt=True)
    assert "call water" in expected
    pairs = load_pairs(pd.DataFrame({"prompt": [prompt], "chosen": ["good"], "rejected": ["bad"]}))
    encoded = PairEncoder(tokenizer, 128, True).encode_pairs(pairs)
    n = int(encoded.chosen.prompt_lengths[0])
    assert encoded.chosen.ids[0][:n] == list(tokenizer(expected, add_special_tokens=False)["input_ids"])
    steps = load_steps(pd.DataFrame({"prompt": [prompt], "completions": [["so it sat"]], "labels": [[1]]}))
    assert render_prompts(steps["prompt"], tokenizer) == [expected]
    plain = render_prompts(steps["prompt"])[0]
    assert "water" in plain and "None" not in plain
    # a prompt that ends with the call: the generation prompt after it (no content to continue)
    assert render_prompts([prompt[:2]], tokenizer) == [tokenizer.apply_chat_template(
        written[:2], tokenize=False, add_generation_prompt=True)]
    # as a side of a pair: the whole conversation, its calls included
    sides = load_pairs(pd.DataFrame({"chosen": [[prompt[0], call, {"role": "assistant", "content": "yes"}]],
                                     "rejected": [[prompt[0], {"role": "assistant", "content": "no"}]]}))
    assert sides["chosen"].iloc[0][0] == written[1]
    silent = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": None}]
    with pytest.raises(ValidationError, match=r"column 'prompt', row 0"):
        load_pairs(pd.DataFrame({"prompt": [silent], "chosen": ["good"], "rejected": ["bad"]}))
    with pytest.raises(ValidationError, match=r"column 'prompt', row 0"):
        load_steps(pd.DataFrame({"prompt": [silent], "completions": [["a"]], "labels": [[1]]}))


def test_the_id_columns_of_a_csv_to_score_are_read_as_written(tmp_path):
    # accord score read only pair_id and the texts as written: a cleaned dataset's chosen_id / rejected_id and a
    # table's prompt_id or response_id were guessed as numbers, and the scored table came back with '007' as 7.0,
    # '1e3' as 1000.0 and the id 'NA' as an empty cell
    from accord.reward.evaluate import _read_frame

    path = tmp_path / "responses.csv"
    path.write_text("id,prompt_id,response_id,prompt,response,n\n007,1e3,NA,q,a,1\n8,0012,None,q,b,2\n",
                    encoding="utf-8")
    read = _read_frame(path)
    assert list(read["id"]) == ["007", "8"] and list(read["prompt_id"]) == ["1e3", "0012"]
    assert list(read["response_id"]) == ["NA", "None"] and read["n"].tolist() == [1, 2]  # other columns as before
    path.write_text("pair_id,chosen_id,rejected_id,prompt,chosen,rejected,p_chosen\n1,007,NA,q,a,b,0.9\n",
                    encoding="utf-8")
    pairs = _read_frame(path)
    assert [pairs.loc[0, c] for c in ("chosen_id", "rejected_id")] == ["007", "NA"] and pairs.loc[0, "p_chosen"] == 0.9


def test_a_local_base_model_is_recorded_by_its_absolute_path(backbones, tmp_path, monkeypatch):
    # reward_model.json kept base_model as typed: trained with --model ./bert, the saved model named './bert', which
    # was no folder (or another one) once the model was used from another working directory; a hub name stays a name
    from accord.reward.model import load_tokenizer

    monkeypatch.chdir(backbones["bert"].parent)
    model = RewardModel.from_backbone("./bert", attn_implementation="sdpa")
    saved = model.save_pretrained(tmp_path / "rm")
    monkeypatch.chdir(tmp_path)
    base = RewardModel.read_meta(saved)["base_model"]
    assert Path(base).is_absolute() and Path(base) == backbones["bert"].resolve()
    assert load_tokenizer(base, base) is not None  # the tokenizer a retraining of the model object loads
    from accord.reward.model import recorded_model_name

    assert recorded_model_name("someorg/tiny-bert") == "someorg/tiny-bert"
