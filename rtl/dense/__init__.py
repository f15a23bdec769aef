"""Dense baseline engine with as many multipliers as the 2:4 engine (``engine``)."""
