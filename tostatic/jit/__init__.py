"""paddle.jit: to_static, save, load."""
from tostatic.frontend.capture.jit_save import save
from tostatic.frontend.capture.static_function import StaticFunction, not_to_static, to_static
from tostatic.frontend.capture.translated_layer import TranslatedLayer, load

__all__ = ["StaticFunction", "TranslatedLayer", "load", "not_to_static", "save", "to_static"]
