"""What Paddle 3.3.1 stamps on every saved program, so our files read like its own."""

PADDLE_VERSION = 3003001  # major*1e6 + minor*1e3 + patch of the Paddle we are compatible with

# Paddle writes its whole op-version registry (hash order) into every ProgramDesc.
OP_VERSION_MAP = (
    ("distribute_fpn_proposals", 2), ("elementwise_add", 1), ("elementwise_sub", 1),
    ("moving_average_abs_max_scale", 2), ("not_equal", 1), ("linspace", 1), ("less_than", 1),
    ("less_equal", 1), ("matrix_nms", 1), ("kldiv_loss", 1), ("truncated_gaussian_random", 1),
    ("assign_value", 1), ("depthwise_conv2d_transpose", 1), ("lstsq", 1), ("quantize", 2),
    ("global_scatter", 1), ("grid_sampler", 1), ("generate_proposals_v2", 1), ("flip", 1),
    ("global_gather", 1), ("dequantize", 1), ("greater_equal", 1), ("depthwise_conv2d", 1),
    ("instance_norm", 1), ("coalesce_tensor", 2), ("thresholded_relu", 1), ("greater_than", 1),
    ("cumprod", 1), ("weight_quantize", 1), ("matmul", 1), ("for_pybind_test__", 4),
    ("hard_shrink", 1), ("gather", 1), ("max_pool3d_with_index", 1), ("conv2d", 1),
    ("histogram", 1), ("yolo_box", 1), ("affine_grid", 1), ("allclose", 2), ("conv3d_transpose",
    1), ("argsort", 1), ("fake_channel_wise_quantize_abs_max", 1), ("conv2d_transpose", 2),
    ("conv3d", 1), ("clip", 1), ("fill_constant", 2), ("cumsum", 1), ("collect_fpn_proposals",
    1), ("momentum", 1), ("lamb", 1), ("p_norm", 1), ("round", 1), ("partial_allgather", 1),
    ("pixel_shuffle", 1), ("auc", 1), ("roi_align", 3), ("lookup_table", 1), ("roi_pool", 2),
    ("roll", 2), ("elementwise_div", 1), ("max_pool2d_with_index", 1), ("leaky_relu", 1),
    ("trace", 1), ("weight_dequantize", 1), ("softplus", 1), ("print", 1),
    ("unique_consecutive", 1), ("weight_only_linear", 1), ("equal", 1), ("elementwise_mul", 1),
    ("set_value", 4), ("seed", 1), ("requantize", 1), ("generate_proposals", 2),
    ("elementwise_pow", 1), ("lookup_table_v2", 1)
)
