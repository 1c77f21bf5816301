"""The bottom layer: errors, the space and task protocols, trial records, the experiment's
dataclasses, objectives with their normalisation and hypervolume, stop rules, recipes,
scores and rankings. Imports nothing of facenas above it, and no TensorFlow."""
