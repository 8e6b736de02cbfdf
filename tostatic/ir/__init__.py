"""What every stage shares: dtypes, attribute kinds and keys, the op base class, names, source
locations, the builder protocol, the verifier and the textual form."""
