"""Named passes over the captured `pd` module, one a file; `pipeline` runs them by name."""
