"""Training state: optimizers, learning-rate schedules, weight decay, gradient clipping."""
