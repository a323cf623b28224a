"""Low-level helpers every layer may import: device choice, BasicSR option-file reading, atomic file writes,
Ctrl-C/SIGTERM handling, and torch.compile with an eager fallback."""
