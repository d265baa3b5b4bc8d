"""A CPU-fast SFT loss: project only the completion positions through the LM head, in one matmul.

trl's SFTTrainer computes the loss with a fused, chunked LM head built for GPUs: fp32 tiles over the 49k-word
vocabulary, recomputed in the backward pass, plus entropy for the logs. On a CPU that head took ~27% of a
training step (py-spy, SmolLM2-135M, MELD dialogue batches) and `train sft` ran at half the tokens/s of a plain
PyTorch loop. Here the backbone runs once, the hidden states of the positions that predict a completion token
(a few dozen of several hundred) are gathered, and only they meet the LM head, in float32 (the backbone runs under
the trainer's bf16 autocast).
The loss is the same token-mean cross-entropy (tests/test_completion_loss.py checks it against trl's).

Used where it is exact and faster: one process (DDP needs the forward to pass through its wrapper), the plain
`nll` loss, no label smoothing, no custom loss function, no MoE auxiliary loss, a plain Linear head (no LoRA on
it) and no logit soft-capping or scaling in the model config, batches with an attention mask (not
padding-free). Anything else, and every GPU run, goes to trl's own `compute_loss`.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer


def completion_logits(model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) at the positions whose next token is a label (not -100), for a causal LM or a peft model."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = causal.base_model  # LlamaModel & co: peft's LoRA layers are inside it, so they still apply
    passed = {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}
    hidden = backbone(**passed, use_cache=False).last_hidden_state[:, :-1]
    targets = inputs["labels"][:, 1:]
    mask = targets != -100
    head = causal.get_output_embeddings()
    # The head in float32, outside autocast: bf16 logits (~3 significant digits at |z| ~ 30) skew the softmax and
    # its gradients by several percent; these few dozen rows cost little in float32.
    with torch.autocast(hidden.device.type, enabled=False):
        weight = head.weight.float()
        bias = head.bias.float() if head.bias is not None else None
        logits = torch.nn.functional.linear(hidden[mask].float(), weight, bias)
    return logits, targets[mask]


# Config fields with which a model transforms its logits after the head (trl's fused head reads the same ones).
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def _plain_head(model: Any) -> bool:
    """The LM head is a plain Linear (no LoRA on it) and the config neither soft-caps nor scales the logits: the
    one-matmul loss is then exactly the model's."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = causal.config.get_text_config()
    scaled = any(getattr(config, name, None) not in (None, 1.0) for name in _LOGIT_TRANSFORMS)
    return type(causal.get_output_embeddings()) is torch.nn.Linear and not scaled


class CompletionLossSFTTrainer(SFTTrainer):
    """trl's SFTTrainer with the CPU-fast completion loss (see the module docstring); everything else is trl's."""

    def _fast_loss_applies(self, return_outputs: bool) -> bool:
        return (
            not return_outputs
            and self.accelerator.num_processes == 1
            and self.args.loss_type == "nll"
            and self.label_smoother is None
            and self.compute_loss_func is None
            and not self.aux_loss_enabled
            and not torch.cuda.is_available()
            and _plain_head(self.model)
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self._fast_loss_applies(return_outputs) or "attention_mask" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        with self.accelerator.autocast():
            logits, targets = completion_logits(self.accelerator.unwrap_model(model), inputs)
        logits = logits.float()
        n_targets = targets.numel() if num_items_in_batch is None else num_items_in_batch
        loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum") / torch.as_tensor(n_targets).clamp(
            min=1
        )
        with torch.no_grad():  # the logs trl keeps, on the completion positions only (cheap here)
            if targets.numel():
                logp = torch.log_softmax(logits, dim=-1)
                entropy = -(logp.exp() * logp).sum(-1).mean().item()
                accuracy = (logits.argmax(-1) == targets).float().mean().item()
                self._metrics[mode]["entropy"].append(entropy)
                self._metrics[mode]["mean_token_accuracy"].append(accuracy)
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss
