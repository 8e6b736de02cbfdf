"""Running programs: an execution plan over `pd` ops, the Predictor and the loaded layer."""
