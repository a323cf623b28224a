"""Training: BasicSR's train pipeline with CPU resume (pipeline.py), torchrun on the CPU or GPUs (distributed.py),
and the option-file checker (options.py, option_values.py)."""
