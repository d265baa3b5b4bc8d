"""Training: supervised fine-tuning and GRPO with verifiable rewards."""
