"""Adapters that let other tools load ddrsr's models (``ddrsr.integrations.spandrel``)."""
