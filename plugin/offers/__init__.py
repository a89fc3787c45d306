"""Dynamic cart offers: funnel stage, uplift model, guardrailed policy, signed tokens."""
