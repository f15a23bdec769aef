"""2:4 structured-sparse datapath: the MAC unit (``mac``) and the matrix-vector engine (``engine``)."""
