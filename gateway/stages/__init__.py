"""The pipeline: one module per stage, each saying what it decides; the order in `pipeline`.

`context` holds the item the stages annotate, `base` what a stage is and what the stages
share; `pipeline` declares the stages in order. `gateway.process` runs them over batches.
"""
