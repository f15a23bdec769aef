"""EIE-like sparse PE array (see docs/eie.md)."""
