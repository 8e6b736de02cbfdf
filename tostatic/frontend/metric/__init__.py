"""Evaluation metrics (paddle.metric)."""
