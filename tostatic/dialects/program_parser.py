"""The `program` dialect as text: xDSL's generic format, printed and parsed back exactly."""
from __future__ import annotations

import io
import struct

from xdsl.context import Context
from xdsl.dialects.builtin import Builtin, DenseArrayBase, Float32Type, Float64Type
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.utils.mlir_lexer import MLIRTokenKind, StringLiteral

from tostatic.dialects.program import Program, ProgramOp


def make_context():
    """An xDSL Context with builtin and program loaded, for parsing program text."""
    ctx = Context()
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Program)
    return ctx


def print_program(program: ProgramOp) -> str:
    """Generic-format text of a program (what xDSL's Printer writes)."""
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=True).print_op(program)
    return buf.getvalue()


class ProgramParser(Parser):
    """xDSL's Parser with two fixes that print -> parse round trips need (xDSL 0.74):

    - Non-ASCII strings: the printer escapes every non-ASCII byte (`"\\C3\\BC"` for "ü"), and
      the lexer turns any escaped non-ASCII literal into a bytes literal, so the string came
      back as a BytesAttr (or was refused where a string is required). Here a bytes literal
      that is valid UTF-8 is a string again.
    - Hex floats in dense arrays: a float without a short exact decimal form (inf, nan,
      123456792.0 in f32) prints as its bit pattern, `array<f32: 0x7F800000>`, which the
      dense-array parser refused. FLOATS attrs hold such values in practice (assign_value with
      -inf in an attention mask). FloatAttr scalars were already fine.
    Everything else is the stock parser.
    """

    def parse_optional_str_literal(self) -> str | None:
        token = self._current_token
        if token.kind == MLIRTokenKind.BYTES_LIT:
            try:
                text = StringLiteral.from_span(token.span).bytes_contents.decode("utf-8")
            except UnicodeDecodeError:
                return None
            self._consume_token()
            return text
        return super().parse_optional_str_literal()

    def _parse_builtin_densearray_attr(self) -> DenseArrayBase | None:
        start = self.pos
        self.parse_characters("<", " in dense array")
        element_type = self.parse_attribute()
        if not isinstance(element_type, (Float32Type, Float64Type)):
            self._resume_from(start)
            return super()._parse_builtin_densearray_attr()
        if self.parse_optional_punctuation(">"):
            return DenseArrayBase.from_list(element_type, [])
        self.parse_characters(":", " in dense array")
        values = self.parse_comma_separated_list(
            self.Delimiter.NONE, lambda: self._parse_float_or_bits(element_type))
        self.parse_characters(">", " in dense array")
        return DenseArrayBase.from_list(element_type, values)

    def _parse_float_or_bits(self, element_type: Float32Type | Float64Type) -> float:
        token = self._current_token
        if token.kind == MLIRTokenKind.INTEGER_LIT and token.text.lower().startswith("0x"):
            bits = self.parse_integer(allow_boolean=False, allow_negative=False)
            if isinstance(element_type, Float32Type):
                return struct.unpack("<f", struct.pack("<I", bits))[0]
            return struct.unpack("<d", struct.pack("<Q", bits))[0]
        return self.parse_number()


def parse_program(text: str) -> ProgramOp:
    """Parse text written by print_program back into a ProgramOp."""
    op = ProgramParser(make_context(), text).parse_op()
    if not isinstance(op, ProgramOp):
        raise ValueError(f"expected a program.program op, got {op.name}")
    return op
