"""Words every kind uses when the tiny random-weight model stood in for the real one."""

TINY_WARNING = (
    "produced by the tiny random-weight test model (no real weights were available): "
    "the text is noise"
)
