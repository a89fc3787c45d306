""""Who are you shopping for?": sub-profiles, the prompt, and their recommendations."""
