"""Selection without torch: the rule registry, the one selection planner, sweeps and export."""
