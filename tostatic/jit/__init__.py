"""paddle.jit: to_static, save, load."""
from tostatic.frontend.capture.jit_save import save
from tostatic.frontend.capture.static_function import StaticFunction, not_to_static, to_static
from tostatic.frontend.capture.translated_layer import TranslatedLayer, load
from tostatic.frontend.capture.convert_ast.log import set_code_level, set_verbosity

__all__ = ["StaticFunction", "TranslatedLayer", "load", "not_to_static", "save", "set_code_level",
           "set_verbosity", "to_static"]
