"""Training a model: the shared training core, the candidate's brief evaluation (one task
or several), weight inheritance, model statistics and zero-cost proxies. Imports
TensorFlow."""
