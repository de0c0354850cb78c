"""Analysis (layer: analysis): turns, alignment, metrics, cost and diagnosis, computed from event logs."""
