"""Running things: the search driver, the Ray and serial evaluators, the final training and
its supervisor, the race, nas compare, nas fidelity, and loading an experiment with its
plugins."""
