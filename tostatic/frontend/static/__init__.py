"""Static-graph mode: Programs of `pd` ops, their views, the Executor, saving and loading."""
from tostatic.frontend.capture.static_function import ConcreteProgram
from tostatic.frontend.static.main_program import main_program

ConcreteProgram.program_view = main_program  # `concrete_program.main_program`
