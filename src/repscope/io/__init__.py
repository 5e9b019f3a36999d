"""Reading and writing: every file repscope opens goes through this package.

Analyses take arrays and never open files; ``repscope.io`` turns paths into validated arrays.
"""

from repscope.io.arrays import load_embedding

__all__ = ["load_embedding"]
