"""Board self-test tops: an engine, its stored input and expected output in ROM, pass/fail LEDs and a UART report."""
