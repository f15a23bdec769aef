"""The block-sparse (BSR) engine."""
