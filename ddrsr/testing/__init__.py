"""Test inputs that users can also run their own deployment on (``ddrsr.testing.bad_inputs``)."""
