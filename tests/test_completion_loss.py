"""The CPU-fast SFT loss equals trl's own loss and gradients, on the same batch, with LoRA and full fine-tuning."""

import pytest
from examples_data import FAST, build_examples

from instructerc.config import load_config
from instructerc.train.completion_loss import CompletionLossSFTTrainer
from instructerc.train.configs import SFTTrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return str(build_examples(tmp_path_factory.mktemp("data") / "dialogue", template="emotion_dialogue"))


def _trainer(dataset_dir, tmp_path, use_lora):
    from datasets import load_from_disk
    from trl import SFTTrainer

    from instructerc.models import load_causal_lm, load_tokenizer
    from instructerc.train.sft import peft_config_from

    # float32 throughout (bf16=False): both losses must then agree to rounding, which bf16 autocast would blur.
    settings = {**FAST, "dataset_dir": dataset_dir, "output_dir": str(tmp_path), "use_lora": use_lora, "bf16": False}
    config = load_config(SFTTrainConfig, None, settings | {"per_device_train_batch_size": 3, "eval_strategy": "no"})
    train = load_from_disk(dataset_dir)["train"].select_columns(["prompt", "completion"]).select(range(3))
    model = load_causal_lm("embedded", dtype="float32", threads=1)
    trainer = CompletionLossSFTTrainer(
        model=model,
        args=config,
        train_dataset=train,
        processing_class=load_tokenizer("embedded"),
        peft_config=peft_config_from(config),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, SFTTrainer, batch


@pytest.mark.parametrize("use_lora", [True, False])
def test_fast_loss_and_gradients_equal_trls(dataset_dir, tmp_path, use_lora):
    trainer, base, batch = _trainer(dataset_dir, tmp_path, use_lora)
    assert trainer._fast_loss_applies(False)
    model = trainer.model.eval()  # no dropout: both losses see the same network
    params = [p for p in model.parameters() if p.requires_grad]

    def loss_and_grads(compute):
        model.zero_grad()
        loss = compute(trainer, model, dict(batch))
        loss.backward()
        return loss.detach(), [p.grad.detach().clone() for p in params[:6]]

    fast, fast_grads = loss_and_grads(CompletionLossSFTTrainer.compute_loss)
    reference, reference_grads = loss_and_grads(base.compute_loss)
    assert fast.item() == pytest.approx(reference.item(), rel=1e-4)
    for got, want in zip(fast_grads, reference_grads, strict=True):
        assert float((got - want).norm()) <= 2e-3 * float(want.norm()) + 1e-9
    assert trainer._metrics["eval"]["mean_token_accuracy"]  # the logs trl keeps are still there (eval mode here)
