"""Your own network through the flow: compile (prune, quantize, lower, choose engines) and the
integer network the RTL must match. See docs/networks.md ("Compile and run").

* :mod:`.torchnet`: :class:`GraphNet`, a trainable module rebuilt from a graph (pruning, fine-tuning);
* :mod:`.intnet`: :class:`IntNetwork` / :class:`IntLayer`, the integer network and its golden inference;
* :mod:`.compile`: :func:`compile_network`, :class:`CompileOptions`, :func:`quantize_graph`;
* :mod:`.shrink`: :func:`shrink_channels`, pruned channels removed from the float graph;
* :mod:`.engines`: engine configurations and per-layer costs;
* :mod:`.folder`: the compiled folder (write atomically, load).
"""
