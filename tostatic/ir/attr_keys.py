"""Keys of the discardable attributes that travel with ops from capture to lowering.

Capture writes them, passes keep them, lowering and raising read them: they are the IR's
shared vocabulary, so they live here rather than in any one stage.
"""

LOC_ATTR = "pd.loc"  # "file:line" of the user's code that made the op
NAMES_ATTR = "pd.names"  # Paddle variable names of an op's results (and extra outputs)
INPUT_NAME_ATTR = "pd.name"  # func argument / result attribute: the feed or fetch name
# On a pd.if / pd.while built by static mode: the names Paddle's cond / while_loop give the
# variables they create around their sub-blocks (see passes/lower_control_flow.py)
BLOCK_NAMES_ATTR = "pd.block_names"
# On such an op: the slots of its conditional_block / while ops as Paddle filled them when it
# was built (save_inference_model keeps them through pruning, as Paddle does)
BLOCK_SLOTS_ATTR = "pd.block_slots"
# Legacy attributes whose value depends on which Paddle API wrote the op (an initialiser's
# fill_constant writes its value as float text): program-dialect attributes by name
LEGACY_ATTRS_ATTR = "pd.legacy_attrs"
# On an op append-backward added (the backward half of a function, run when backward
# reaches it), and on the function: what each of its gradient results is the gradient of
BACKWARD_ATTR = "pd.backward"
GRADS_ATTR = "pd.grads"
