"""AST conversion of the functions to_static captures: tensor-dependent if / while / for /
break / continue / return, boolean operators, conditional expressions and assert become
pd.if / pd.while (see flow.py, control.py for the rewriting, runtime.py / loops.py for what
the converted code calls)."""
