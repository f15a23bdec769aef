"""The one exception type that reaches users.

Anything wrong with the user's input (a shape, a value out of range, a corrupt image, a
matrix that breaks 2:4, a design that does not fit its memories) raises
:class:`SparseFlowError` with a one-line message. The ``sparseflow`` command prints it as
``sparseflow: error: <message>`` on stderr and exits with status 2; never a traceback.
"""


class SparseFlowError(ValueError):
    """A user-facing error with a one-line message."""
