"""The tutor: prompts (and, later, level estimation and corrections)."""
