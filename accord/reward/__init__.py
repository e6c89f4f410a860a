"""Reward models trained on accord's soft labels: losses, data path, model, trainer core, tasks, evaluation, scoring.

Reads the cleaned-dataset format (or any Hugging Face preference layout); never imports ``accord.models`` or
``accord.aggregate``, so anyone's soft labels can train it. The trainer core (:class:`RewardTrainer`) runs any
:class:`RewardTask` (the pairwise preference task, :class:`PairwiseTask`, by default; one reward per attribute,
:class:`AttributesTask`) with any loss of the one registry :data:`LOSSES`. The command-line faces are
:func:`train`, :func:`evaluate` and :func:`score` (``accord train`` / ``evaluate`` / ``score``, and ``accord
combine`` for a multi-attribute model) and ``python -m accord.reward`` (``accelerate launch -m accord.reward ...``
for several processes).

Example (a tiny random backbone, so it runs anywhere)::

    >>> import pandas as pd, tempfile
    >>> from accord.reward import RewardConfig, train, evaluate
    >>> from accord.reward.tiny import build_tiny_backbone
    >>> folder = tempfile.mkdtemp()
    >>> pairs = pd.DataFrame({"prompt": ["q"] * 8, "chosen": ["a good answer"] * 8, "rejected": ["bad"] * 8,
    ...                       "p_chosen": [0.9] * 8, "weight": [0.8] * 8})
    >>> backbone = build_tiny_backbone(f"{folder}/tiny", "llama", texts=["a good answer bad q"])
    >>> result = train(RewardConfig(model=str(backbone), output_dir=f"{folder}/rm", batch_size=4, max_steps=2,
    ...                             progress=False), train_data=pairs)
    >>> sorted(evaluate(f"{folder}/rm", pairs))[:3]
    ['accuracy', 'brier', 'ece']
"""

from accord.reward.attributes import AttributesTask
from accord.reward.config import RewardConfig
from accord.reward.data import (
    PairCollator,
    PairEncoder,
    TokenizedPairs,
    TokenizedResponses,
    length_grouped_batches,
    load_pairs,
)
from accord.reward.evaluate import evaluate, pairwise_metrics, score
from accord.reward.losses import (
    LOSSES,
    bradley_terry_loss,
    davidson_loss,
    get_loss,
    label_smoothing_loss,
    margin_loss,
    normalise_weights,
    pair_loss_inputs,
    pairwise_logit,
    register_loss,
    soft_bce_loss,
    weighted_soft_bce_loss,
)
from accord.reward.model import RewardModel, RewardOutput
from accord.reward.pairwise import PairwiseTask
from accord.reward.steps import StepTask
from accord.reward.task import TASKS, RewardTask, get_task, register_task
from accord.reward.trainer import RewardTrainer, TrainingInterrupted, TrainResult, train

__all__ = [
    "LOSSES",
    "TASKS",
    "AttributesTask",
    "PairCollator",
    "PairEncoder",
    "PairwiseTask",
    "RewardConfig",
    "RewardModel",
    "RewardOutput",
    "RewardTask",
    "RewardTrainer",
    "StepTask",
    "TokenizedPairs",
    "TokenizedResponses",
    "TrainResult",
    "TrainingInterrupted",
    "bradley_terry_loss",
    "davidson_loss",
    "evaluate",
    "get_loss",
    "get_task",
    "label_smoothing_loss",
    "length_grouped_batches",
    "load_pairs",
    "margin_loss",
    "normalise_weights",
    "pair_loss_inputs",
    "pairwise_logit",
    "pairwise_metrics",
    "register_loss",
    "register_task",
    "score",
    "soft_bce_loss",
    "train",
    "weighted_soft_bce_loss",
]
