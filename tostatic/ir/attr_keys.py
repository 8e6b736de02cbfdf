"""Keys of the discardable attributes that travel with ops from capture to lowering.

Capture writes them, passes keep them, lowering and raising read them: they are the IR's
shared vocabulary, so they live here rather than in any one stage.
"""

LOC_ATTR = "pd.loc"  # "file:line" of the user's code that made the op
NAMES_ATTR = "pd.names"  # Paddle variable names of an op's results (and extra outputs)
INPUT_NAME_ATTR = "pd.name"  # func argument / result attribute: the feed or fetch name
