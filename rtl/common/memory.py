"""Block RAMs whose read ports never depend on a same-address write in the same cycle."""
from amaranth.lib.memory import Memory

# RTLIL attribute on such a memory. ``verif.synth.mark_collision_free`` turns it into Yosys'
# ``COLLISION_X_MASK`` (the read data is undefined when a write hits the same address in the
# same cycle): an iCE40 / ECP5 block RAM port pair gives exactly that, so Yosys needs no soft
# logic to emulate Amaranth's read-old-data rule. Simulation keeps reading the old data.
COLLISION_FREE = "sparseflow_collision_free"


def collision_free_memory(**kwargs) -> Memory:
    """A :class:`Memory` whose reads never use the data of a write to the same address in the
    same cycle, by design of its user (it is never read then, or the value read is discarded:
    say why where it is built)."""
    return Memory(attrs={COLLISION_FREE: 1}, **kwargs)
